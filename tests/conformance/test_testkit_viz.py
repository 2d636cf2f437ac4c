"""Conformance: spec/testkit-viz.md (penguiflow.testkit, flow_to_mermaid, flow_to_dot)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conformance_support import msg

from penguiflow import (
    FlowError,
    FlowErrorCode,
    Headers,
    Message,
    ModelRegistry,
    Node,
    NodePolicy,
    create,
    flow_to_dot,
    flow_to_mermaid,
    testkit,
)

NONE = NodePolicy(validate="none")


async def echo(item: Any, ctx: Any) -> Any:
    return item


def node(name: str, fn: Any = echo, **kwargs: Any) -> Node:
    return Node(fn, name=name, policy=kwargs.pop("policy", NONE), **kwargs)


# --- run_one -----


async def test_run_one_returns_first_rookery_item_and_stops() -> None:
    a, b = node("a"), node("b")
    flow = create(a.to(b))
    m = msg()
    result = await testkit.run_one(flow, m)
    assert result is m
    assert flow._running is False
    testkit.assert_node_sequence(m.trace_id, ["a", "b"])


async def test_run_one_rejects_non_message() -> None:
    flow = create(node("a").to())
    with pytest.raises(TypeError) as info:
        await testkit.run_one(flow, {"not": "a message"})  # type: ignore[arg-type]
    assert str(info.value) == "run_one expects a penguiflow.types.Message instance"


async def test_run_one_timeout_stops_flow() -> None:
    async def silent(item: Any, ctx: Any) -> None:
        return None

    flow = create(node("s", silent).to())
    with pytest.raises(asyncio.TimeoutError):
        await testkit.run_one(flow, msg(), timeout_s=0.01)
    assert flow._running is False


async def test_run_one_registry_error_propagates_without_running() -> None:
    flow = create(Node(echo, name="needs").to())
    with pytest.raises(RuntimeError, match="missing entries"):
        await testkit.run_one(flow, msg(), registry=ModelRegistry())
    assert flow._running is False


async def test_run_one_returns_flow_error() -> None:
    async def bad(item: Any, ctx: Any) -> None:
        raise ValueError("nope")

    flow = create(node("bad", bad).to(), emit_errors_to_rookery=True)
    m = msg()
    result = await testkit.run_one(flow, m)
    assert isinstance(result, FlowError)
    events = testkit.get_recorded_events(m.trace_id)
    assert isinstance(events, tuple)
    failed = next(e for e in events if e.event_type == "node_failed")
    assert failed.error_payload is not None
    assert failed.error_payload["code"] == "NODE_EXCEPTION"
    assert failed.error_payload["node_name"] == "bad"
    assert failed.error_payload["exception_type"] == "ValueError"


async def test_recorder_attached_once() -> None:
    flow = create(node("a").to())
    before = len(flow._middlewares)
    await testkit.run_one(flow, msg())
    await testkit.run_one(flow, msg())
    assert len(flow._middlewares) == before + 1


async def test_rerun_same_message_replaces_history() -> None:
    flow = create(node("a").to())
    m = msg()
    await testkit.run_one(flow, m)
    first = len(testkit.get_recorded_events(m.trace_id))
    await testkit.run_one(flow, m)
    assert len(testkit.get_recorded_events(m.trace_id)) == first


def test_get_recorded_events_unknown_trace() -> None:
    assert testkit.get_recorded_events("never-seen-trace") == ()


async def test_recorder_keeps_recording_after_run_one() -> None:
    flow = create(node("a").to())
    await testkit.run_one(flow, msg())
    flow.run()
    try:
        later = msg()
        await flow.emit(later)
        async with asyncio.timeout(5):
            await flow.fetch()
    finally:
        await flow.stop()
    kinds = [e.event_type for e in testkit.get_recorded_events(later.trace_id)]
    assert kinds[:2] == ["node_start", "node_success"]


async def test_history_is_bounded_to_64_traces() -> None:
    flow = create(node("a").to())
    first = msg()
    await testkit.run_one(flow, first)
    for _ in range(64):
        await testkit.run_one(flow, msg())
    assert testkit.get_recorded_events(first.trace_id) == ()


# --- assert_node_sequence -----


def test_assert_node_sequence_unknown_trace() -> None:
    with pytest.raises(AssertionError) as info:
        testkit.assert_node_sequence("nope-trace", ["a"])
    assert str(info.value) == (
        "No recorded events for trace_id='nope-trace'; run a flow with run_one first."
    )


async def test_assert_node_sequence_mismatch_text() -> None:
    flow = create(node("a").to(node("b")))
    m = msg()
    await testkit.run_one(flow, m)
    with pytest.raises(AssertionError) as info:
        testkit.assert_node_sequence(m.trace_id, ("b", "a"))
    assert str(info.value) == (
        "Node sequence mismatch:\n  expected: ['b', 'a']\n  actual:   ['a', 'b']"
    )


async def test_assert_node_sequence_collapses_retries() -> None:
    fn = testkit.simulate_error("flaky", FlowErrorCode.NODE_EXCEPTION, fail_times=2)
    flaky = Node(
        fn, name="flaky", policy=NodePolicy(validate="none", max_retries=2, backoff_base=0.001)
    )
    flow = create(flaky.to(node("after")))
    m = msg()
    assert await testkit.run_one(flow, m) is m
    testkit.assert_node_sequence(m.trace_id, ["flaky", "after"])
    assert fn.simulation.failures == 2  # type: ignore[attr-defined]
    assert fn.simulation.attempts == 3  # type: ignore[attr-defined]
    kinds = [e.event_type for e in testkit.get_recorded_events(m.trace_id)]
    assert kinds.count("node_retry") == 2


# --- simulate_error -----


def test_simulate_error_argument_checks() -> None:
    with pytest.raises(ValueError) as info:
        testkit.simulate_error("n", "X", fail_times=0)
    assert str(info.value) == "fail_times must be >= 1"
    with pytest.raises(ValueError) as both:
        testkit.simulate_error("n", "X", result=1, result_factory=lambda m: 2)
    assert str(both.value) == "Specify only one of result or result_factory"


async def test_simulate_error_messages_and_results() -> None:
    fn = testkit.simulate_error(
        "svc", FlowErrorCode.NODE_TIMEOUT, fail_times=2, exception_type=KeyError
    )
    assert asyncio.iscoroutinefunction(fn)
    for n in (1, 2):
        with pytest.raises(KeyError) as info:
            await fn("m", None)
        assert info.value.args[0] == f"[NODE_TIMEOUT] simulated failure in svc (attempt {n})"
    assert await fn("m", None) == "m"
    assert fn.simulation.attempts == 3  # type: ignore[attr-defined]
    assert fn.simulation.failures == 2  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        fn.simulation.attempts = 0  # type: ignore[attr-defined,misc]


async def test_simulate_error_result_and_factory() -> None:
    fixed = testkit.simulate_error("a", "CODE", result="ok")
    with pytest.raises(RuntimeError, match=r"^\[CODE\] simulated failure in a \(attempt 1\)$"):
        await fixed(1, None)
    assert await fixed(1, None) == "ok"

    async def make(m: Any) -> Any:
        return ("made", m)

    factory = testkit.simulate_error("b", "CODE", result_factory=make)
    with pytest.raises(RuntimeError):
        await factory(1, None)
    assert await factory(1, None) == ("made", 1)
    sync_factory = testkit.simulate_error("c", "CODE", result_factory=lambda m: m * 2)
    with pytest.raises(RuntimeError):
        await sync_factory(2, None)
    assert await sync_factory(2, None) == 4


# --- assert_preserves_message_envelope -----


async def test_envelope_check_passes_and_returns_result() -> None:
    async def mutate(item: Message, ctx: Any) -> Message:
        return item.model_copy(update={"payload": {"changed": True}, "meta": {"x": 1}})

    result = await testkit.assert_preserves_message_envelope(Node(mutate))
    assert result.payload == {"changed": True}


async def test_envelope_check_default_message_and_ctx() -> None:
    seen: list[Any] = []

    async def spy(item: Message, ctx: Any) -> Message:
        seen.append(item)
        await ctx.emit(item)
        ctx.emit_nowait(item)
        with pytest.raises(RuntimeError) as info:
            await ctx.emit_chunk(parent=item, text="x")
        assert str(info.value) == (
            "FlowTestKit stub context does not support emit_chunk; provide a custom "
            "context via the 'ctx' parameter"
        )
        return item

    await testkit.assert_preserves_message_envelope(spy)
    assert seen[0].payload == {}
    assert seen[0].headers == Headers(tenant="test")


async def test_envelope_check_non_message_result() -> None:
    async def lossy(item: Message, ctx: Any) -> Any:
        return item.payload

    with pytest.raises(AssertionError) as info:
        await testkit.assert_preserves_message_envelope(Node(lossy, name="lossy"))
    assert str(info.value) == "Node 'lossy' must return a Message but produced dict"


@pytest.mark.parametrize(
    ("update", "fields"),
    [
        ({"headers": Headers(tenant="other")}, "headers"),
        ({"trace_id": "other"}, "trace_id"),
        ({"headers": Headers(tenant="other"), "trace_id": "other"}, "headers, trace_id"),
    ],
    ids=["headers", "trace_id", "both"],
)
async def test_envelope_check_altered_fields(update: dict[str, Any], fields: str) -> None:
    async def alter(item: Message, ctx: Any) -> Message:
        return item.model_copy(update=update)

    with pytest.raises(AssertionError) as info:
        await testkit.assert_preserves_message_envelope(alter, message=msg())
    assert str(info.value) == f"Node 'alter' altered Message {fields}; preserve the envelope"


async def test_envelope_check_rejects_sync() -> None:
    def sync(item: Any, ctx: Any) -> Any:
        return item

    with pytest.raises(TypeError) as info:
        await testkit.assert_preserves_message_envelope(sync)  # type: ignore[arg-type]
    assert str(info.value) == "assert_preserves_message_envelope expects an async node"


async def test_envelope_check_custom_ctx() -> None:
    marker = object()
    got: list[Any] = []

    async def spy(item: Message, ctx: Any) -> Message:
        got.append(ctx)
        return item

    await testkit.assert_preserves_message_envelope(spy, ctx=marker)
    assert got == [marker]


# --- visualisation -----


def controller_flow() -> Any:
    controller = node("controller", allow_cycle=True)
    worker = node("worker-1")
    return create(controller.to(controller, worker), worker.to())


def test_mermaid_spec_example_lines() -> None:
    out = flow_to_mermaid(controller_flow())
    lines = out.split("\n")
    assert lines[0] == "graph TD"
    assert not out.endswith("\n")
    expected = {
        '    controller["controller"]',
        '    worker_1["worker-1"]',
        '    OpenSea["OpenSea"]',
        '    Rookery["Rookery"]',
        "    classDef controller_loop fill:#fef3c7,stroke:#b45309,stroke-width:1px",
        "    classDef endpoint fill:#e0f2fe,stroke:#0369a1,stroke-width:1px",
        "    class controller controller_loop",
        "    class OpenSea endpoint",
        "    class Rookery endpoint",
        "    controller --> worker_1",
        "    OpenSea -->|ingress| controller",
        "    worker_1 -->|egress| Rookery",
        "    controller -->|loop| controller",
    }
    assert set(lines[1:]) == expected
    assert len(lines) == 14
    # classDefs are sorted by name and come before the class lines.
    assert lines.index(
        "    classDef controller_loop fill:#fef3c7,stroke:#b45309,stroke-width:1px"
    ) < lines.index("    classDef endpoint fill:#e0f2fe,stroke:#0369a1,stroke-width:1px")


def test_mermaid_direction_and_label_escaping() -> None:
    out = flow_to_mermaid(create(node('say "hi"').to()), direction="LR")
    lines = out.split("\n")
    assert lines[0] == "graph LR"
    assert '    say__hi_["say \\"hi\\""]' in lines


def test_identifier_collisions_get_suffixes() -> None:
    c, d = node("a-b"), node("a_b")
    out = flow_to_mermaid(create(c.to(d)))
    ids = {line.split("[")[0].strip() for line in out.split("\n") if '["' in line}
    assert ids == {"a_b", "a_b_2", "OpenSea", "Rookery"}
    labels = {line.split("[", 1)[1] for line in out.split("\n") if '["' in line}
    assert labels == {'"a-b"]', '"a_b"]', '"OpenSea"]', '"Rookery"]'}


def test_mermaid_no_classes_for_plain_nodes() -> None:
    out = flow_to_mermaid(create(node("a").to()))
    assert "class a " not in out
    assert "    classDef controller_loop" not in out


def test_dot_spec_shape() -> None:
    out = flow_to_dot(controller_flow())
    lines = out.split("\n")
    assert lines[:3] == [
        "digraph PenguiFlow {",
        "    rankdir=TB",
        "    node [shape=box, style=rounded]",
    ]
    assert lines[-1] == "}"
    body = set(lines[3:-1])
    assert body == {
        '    controller [label="controller", style="rounded,filled", fillcolor="#fef3c7"]',
        '    worker_1 [label="worker-1"]',
        '    OpenSea [label="OpenSea", shape=oval, style="filled", fillcolor="#e0f2fe"]',
        '    Rookery [label="Rookery", shape=oval, style="filled", fillcolor="#e0f2fe"]',
        "    controller -> worker_1",
        '    OpenSea -> controller [label="ingress"]',
        '    worker_1 -> Rookery [label="egress"]',
        '    controller -> controller [label="loop"]',
    }


def test_dot_rankdir() -> None:
    assert "    rankdir=LR" in flow_to_dot(create(node("a").to()), rankdir="LR").split("\n")


def test_allow_cycle_without_self_edge_is_controller_class() -> None:
    looped = node("looped", allow_cycle=True)
    out = flow_to_mermaid(create(looped.to()))
    assert "    class looped controller_loop" in out.split("\n")


def test_self_edge_without_allow_cycle_is_controller_class() -> None:
    c = node("c")
    out = flow_to_dot(create(c.to(c), allow_cycles=True))
    assert '    c [label="c", style="rounded,filled", fillcolor="#fef3c7"]' in out.split("\n")


async def test_run_one_on_running_flow_propagates_without_stop() -> None:
    flow = create(node("a").to())
    flow.run()
    try:
        with pytest.raises(RuntimeError, match="PenguiFlow already running"):
            await testkit.run_one(flow, msg())
        assert flow._running is True
    finally:
        await flow.stop()


async def test_other_trace_history_restarts_per_session() -> None:
    child_trace = "conformance-child-trace"

    async def spawn(item: Message, ctx: Any) -> None:
        await ctx.emit(Message(payload="child", headers=item.headers, trace_id=child_trace))

    flow = create(node("a", spawn).to(node("b")))
    for _ in range(2):
        out = await testkit.run_one(flow, msg())
        assert out.trace_id == child_trace
    starts = [e for e in testkit.get_recorded_events(child_trace) if e.event_type == "node_start"]
    assert len(starts) == 1


def test_pure_cycle_has_no_endpoints_in_diagram() -> None:
    a, b = node("a"), node("b")
    out = flow_to_mermaid(create(a.to(b), b.to(a), allow_cycles=True))
    assert "OpenSea" not in out
    assert "Rookery" not in out
    assert "    a --> b" in out.split("\n")


async def test_registered_trace_without_events_has_no_recorded_events() -> None:
    a, b = node("a"), node("b")
    flow = create(a.to(b), b.to(a), allow_cycles=True)  # no egress: fetch cannot work
    m = msg()
    with pytest.raises(RuntimeError, match="no incoming floes"):
        await testkit.run_one(flow, m)
    assert flow._running is False
    assert testkit.get_recorded_events(m.trace_id) == ()
    with pytest.raises(AssertionError, match="No recorded events"):
        testkit.assert_node_sequence(m.trace_id, [])
