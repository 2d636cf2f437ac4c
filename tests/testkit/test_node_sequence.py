"""``assert_node_sequence`` and ``get_recorded_events`` (spec/testkit-viz.md)."""

from __future__ import annotations

from typing import Any

import pytest

from penguiflow import FlowErrorCode, FlowEvent, Headers, Message, Node, NodePolicy, create
from penguiflow.testkit import (
    assert_node_sequence,
    get_recorded_events,
    run_one,
    simulate_error,
)
from penguiflow.testkit._recorder import FlowRecorder


def event(kind: str, node_name: str | None, node_id: str | None = None, trace: str = "t") -> Any:
    return FlowEvent(kind, 0.0, node_name, node_id, trace, 0, 0.0, 0, 0, 0, 64, 0, 0, False)


async def record(*events: Any, trace: str = "t") -> None:
    recorder = FlowRecorder()
    recorder.begin_session(trace)
    for item in events:
        await recorder(item)


def none_policy() -> NodePolicy:
    return NodePolicy(validate="none")


async def passthrough(message: Any, _ctx: Any) -> Any:
    return message


@pytest.fixture
def message() -> Message:
    return Message(payload="hello", headers=Headers(tenant="acme"))


def test_unknown_trace_has_no_events() -> None:
    assert get_recorded_events("nobody") == ()


def test_unknown_trace_fails_the_sequence_assertion() -> None:
    with pytest.raises(AssertionError) as info:
        assert_node_sequence("nobody", ["a"])
    assert str(info.value) == (
        "No recorded events for trace_id='nobody'; run a flow with run_one first."
    )


async def test_registered_but_empty_trace_fails_like_an_unknown_one() -> None:
    await record()
    with pytest.raises(AssertionError, match="No recorded events"):
        assert_node_sequence("t", [])


async def test_sequence_of_a_linear_flow_matches(message: Message) -> None:
    a = Node(passthrough, name="a", policy=none_policy())
    b = Node(passthrough, name="b", policy=none_policy())
    c = Node(passthrough, name="c", policy=none_policy())
    await run_one(create(a.to(b), b.to(c), c.to()), message)
    assert_node_sequence(message.trace_id, ["a", "b", "c"])


async def test_retries_of_one_node_count_once(message: Message) -> None:
    flaky = Node(
        simulate_error("flaky", FlowErrorCode.NODE_EXCEPTION, fail_times=1),
        name="flaky",
        policy=NodePolicy(validate="none", max_retries=1, backoff_base=0.0),
    )
    after = Node(passthrough, name="after", policy=none_policy())
    await run_one(create(flaky.to(after), after.to()), message)
    assert_node_sequence(message.trace_id, ("flaky", "after"))


async def test_only_consecutive_repeats_collapse() -> None:
    await record(
        event("node_start", "A"),
        event("node_start", "A"),
        event("node_success", "A"),
        event("node_start", "B"),
        event("node_start", "A"),
    )
    assert_node_sequence("t", ["A", "B", "A"])


async def test_names_fall_back_to_node_id_then_anonymous() -> None:
    await record(event("node_start", None, "id-1"), event("node_start", None, None))
    assert_node_sequence("t", ["id-1", "<anonymous>"])


async def test_mismatch_reports_both_lists() -> None:
    await record(event("node_start", "a"), event("node_start", "b"))
    with pytest.raises(AssertionError) as info:
        assert_node_sequence("t", ["b", "a"])
    assert str(info.value) == (
        "Node sequence mismatch:\n  expected: ['b', 'a']\n  actual:   ['a', 'b']"
    )


async def test_events_ignore_trace_less_events() -> None:
    recorder = FlowRecorder()
    recorder.begin_session("t")
    await recorder(event("node_cancelled", "a", trace=None))  # type: ignore[arg-type]
    await recorder(event("node_start", "a"))
    assert [e.event_type for e in get_recorded_events("t")] == ["node_start"]


async def test_recorded_events_are_a_snapshot() -> None:
    recorder = FlowRecorder()
    recorder.begin_session("t")
    await recorder(event("node_start", "a"))
    snapshot = get_recorded_events("t")
    await recorder(event("node_success", "a"))
    assert isinstance(snapshot, tuple)
    assert len(snapshot) == 1
    assert len(get_recorded_events("t")) == 2


async def test_failure_events_carry_the_flow_error_payload(message: Message) -> None:
    bad = Node(
        simulate_error("bad", "E_BAD", fail_times=5, exception_type=ValueError),
        name="bad",
        policy=NodePolicy(validate="none", max_retries=1, backoff_base=0.0),
    )
    flow = create(bad.to(), emit_errors_to_rookery=True)
    await run_one(flow, message)
    kinds = [e.event_type for e in get_recorded_events(message.trace_id)]
    assert kinds[:6] == [
        "node_start",
        "node_error",
        "node_retry",
        "node_start",
        "node_error",
        "node_failed",
    ]
    failed = next(e for e in get_recorded_events(message.trace_id) if e.event_type == "node_failed")
    assert failed.error_payload is not None
    assert failed.error_payload["code"] == "NODE_EXCEPTION"
    assert failed.error_payload["node_name"] == "bad"
    assert failed.error_payload["exception_type"] == "ValueError"
