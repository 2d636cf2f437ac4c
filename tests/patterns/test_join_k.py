"""``join_k`` invoked directly: batching per trace, envelopes, partial-group cleanup."""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from patterns_support import HookRuntime, RecordingContext

from penguiflow.node import NodePolicy
from penguiflow.patterns import join_k
from penguiflow.types import Headers, Message


def _message(payload: Any, trace_id: str = "t1") -> Message:
    return Message(payload=payload, headers=Headers(tenant="acme"), trace_id=trace_id)


def _pending(node: Any) -> dict[str, list[Any]]:
    state = node.func.join_state
    return {trace_id: list(bucket.items) for trace_id, bucket in state.buckets.items()}


@pytest.mark.parametrize("k", [0, -1])
def test_join_k_rejects_non_positive_k(k: int) -> None:
    with pytest.raises(ValueError) as info:
        join_k("join", k)
    assert str(info.value) == "k must be positive"


def test_join_k_is_a_plain_node_without_validation() -> None:
    node = join_k("join", 2)
    assert node.name == "join"
    assert node.policy == NodePolicy(validate="none")


@pytest.mark.parametrize(
    "item", [object(), SimpleNamespace(trace_id=None), "text"], ids=["object", "none", "str"]
)
async def test_join_k_requires_a_trace_id(item: Any) -> None:
    node = join_k("join", 2)
    with pytest.raises(ValueError) as info:
        await node.invoke(item, RecordingContext(), registry=None)
    assert str(info.value) == "join_k requires messages with trace_id"


async def test_join_k_returns_none_until_k_items_arrived() -> None:
    node = join_k("join", 3)
    ctx = RecordingContext()
    assert await node.invoke(_message("a"), ctx, registry=None) is None
    assert await node.invoke(_message("b"), ctx, registry=None) is None
    assert [item.payload for item in _pending(node)["t1"]] == ["a", "b"]


async def test_join_k_aggregate_keeps_the_first_envelope_and_payloads_in_arrival_order() -> None:
    node = join_k("join", 3)
    ctx = RecordingContext()
    first = _message("a")
    first.meta["origin"] = "first"
    first.deadline_s = 123.0
    second = Message(payload="b", headers=Headers(tenant="other"), trace_id="t1")
    third = _message("c")
    await node.invoke(first, ctx, registry=None)
    await node.invoke(second, ctx, registry=None)
    result = await node.invoke(third, ctx, registry=None)
    assert isinstance(result, Message)
    assert result.payload == ["a", "b", "c"]
    assert result.headers is first.headers
    assert result.trace_id == "t1"
    assert result.deadline_s == 123.0
    assert result.ts == first.ts
    assert result.meta is first.meta  # shallow model_copy, as in 2.2.5
    assert result is not first
    assert first.payload == "a"


async def test_join_k_returns_raw_items_when_the_first_is_not_a_message() -> None:
    node = join_k("join", 2)
    one, two = SimpleNamespace(trace_id="t"), SimpleNamespace(trace_id="t")
    await node.invoke(one, RecordingContext(), registry=None)
    result = await node.invoke(two, RecordingContext(), registry=None)
    assert result == [one, two]
    assert result[0] is one


async def test_join_k_with_k_one_emits_every_item() -> None:
    node = join_k("join", 1)
    result = await node.invoke(_message("only"), RecordingContext(), registry=None)
    assert result.payload == ["only"]


async def test_join_k_keeps_traces_apart() -> None:
    node = join_k("join", 2)
    ctx = RecordingContext()
    assert await node.invoke(_message("a1", "A"), ctx, registry=None) is None
    assert await node.invoke(_message("b1", "B"), ctx, registry=None) is None
    result_a = await node.invoke(_message("a2", "A"), ctx, registry=None)
    assert result_a.payload == ["a1", "a2"]
    assert result_a.trace_id == "A"
    assert set(_pending(node)) == {"B"}


async def test_join_k_starts_a_fresh_bucket_after_each_aggregate() -> None:
    node = join_k("join", 2)
    ctx = RecordingContext()
    outputs = [await node.invoke(_message(n), ctx, registry=None) for n in range(5)]
    assert [out.payload if out else None for out in outputs] == [None, [0, 1], None, [2, 3], None]
    assert [item.payload for item in _pending(node)["t1"]] == [4]


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(min_value=1, max_value=4),
    arrivals=st.lists(st.sampled_from(["A", "B", "C"]), max_size=40),
)
def test_property_one_aggregate_per_k_arrivals_per_trace(k: int, arrivals: list[str]) -> None:
    """Each trace's arrivals are cut into consecutive batches of k; the rest waits."""
    node = join_k("join", k)

    async def main() -> list[Message]:
        out: list[Message] = []
        for index, trace_id in enumerate(arrivals):
            result = await node.invoke(_message(index, trace_id), RecordingContext(), registry=None)
            if result is not None:
                out.append(result)
        return out

    outputs = asyncio.run(main())
    for trace_id in "ABC":
        indices = [i for i, t in enumerate(arrivals) if t == trace_id]
        full = len(indices) // k * k
        expected = [indices[i : i + k] for i in range(0, full, k)]
        assert [out.payload for out in outputs if out.trace_id == trace_id] == expected
        leftover = indices[full:]
        assert [m.payload for m in _pending(node).get(trace_id, [])] == leftover


# --- partial groups: cancel and stop ---------------------------------------------


@pytest.fixture
async def runtime() -> Any:
    hooks = HookRuntime()
    yield hooks
    await hooks.stop()  # teardown: no watcher outlives the test


async def _feed(node: Any, runtime: HookRuntime, *messages: Message) -> list[Any]:
    ctx = RecordingContext(runtime=runtime)
    return [await node.invoke(message, ctx, registry=None) for message in messages]


async def test_join_k_registers_no_external_task(runtime: HookRuntime) -> None:
    node = join_k("join", 3)
    await _feed(node, runtime, _message(1, "A"), _message(2, "B"), _message(3, "A"))
    assert runtime.external == set()


async def test_join_k_with_k_one_never_holds_a_group(runtime: HookRuntime) -> None:
    node = join_k("join", 1)
    results = await _feed(node, runtime, _message(1, "A"))
    assert results[0].payload == [1]
    assert _pending(node) == {}
    assert runtime.external == set()


async def test_join_k_never_completes_the_group_of_a_cancelled_trace(
    runtime: HookRuntime,
) -> None:
    node = join_k("join", 2)
    await _feed(node, runtime, _message("stale", "A"))
    await runtime.cancel("A")
    runtime.trace_finished("A")
    results = await _feed(node, runtime, _message("fresh-1", "A"), _message("fresh-2", "A"))
    assert results[0] is None
    assert results[1].payload == ["fresh-1", "fresh-2"]


async def test_join_k_keeps_other_traces_when_one_is_cancelled(runtime: HookRuntime) -> None:
    node = join_k("join", 2)
    await _feed(node, runtime, _message("a1", "A"), _message("b1", "B"))
    await runtime.cancel("A")
    results = await _feed(node, runtime, _message("b2", "B"))
    assert results[0].payload == ["b1", "b2"]


async def test_join_k_sweeps_cancelled_groups_as_the_table_grows(runtime: HookRuntime) -> None:
    node = join_k("join", 2)
    await _feed(node, runtime, *(_message(i, f"T{i}") for i in range(64)))
    for i in range(0, 64, 2):
        await runtime.cancel(f"T{i}")
    assert len(_pending(node)) == 64
    await _feed(node, runtime, _message("new", "NEW"))
    assert set(_pending(node)) == {f"T{i}" for i in range(1, 64, 2)} | {"NEW"}


async def test_join_k_keeps_partial_groups_when_its_flow_stops(runtime: HookRuntime) -> None:
    # spec/patterns-routing.md: the buckets persist across runs of the same node object.
    node = join_k("join", 3)
    await _feed(node, runtime, _message(1, "A"), _message(2, "B"))
    await runtime.stop()
    assert set(_pending(node)) == {"A", "B"}


async def test_join_k_completes_a_partial_group_after_a_restart(runtime: HookRuntime) -> None:
    node = join_k("join", 2)
    await _feed(node, runtime, _message(1, "A"))
    await runtime.stop()
    results = await _feed(node, runtime, _message(2, "A"))
    assert results[0].payload == [1, 2]
    assert _pending(node) == {}


async def test_join_k_stop_of_one_flow_keeps_groups_of_another(runtime: HookRuntime) -> None:
    node = join_k("join", 2)
    other = HookRuntime()
    await _feed(node, runtime, _message(1, "A"))
    await _feed(node, other, _message(2, "B"))
    await other.stop()
    assert set(_pending(node)) == {"A", "B"}


async def test_join_k_logs_each_dropped_group(
    runtime: HookRuntime, caplog: pytest.LogCaptureFixture
) -> None:
    node = join_k("join", 3)
    await _feed(node, runtime, _message(1, "A"), _message(2, "A"), _message(3, "B"))
    with caplog.at_level(logging.DEBUG, logger="penguiflow.patterns"):
        await runtime.cancel("A")
        await _feed(node, runtime, _message(4, "A"))
        await runtime.stop()
    records = [r for r in caplog.records if r.getMessage() == "join_k_partial_dropped"]
    assert [(r.node_name, r.trace_id, r.size, r.reason) for r in records] == [
        ("join", "A", 2, "trace_cancelled"),
    ]
    assert [m.payload for m in _pending(node)["A"]] == [4]


async def test_join_k_follows_the_new_flag_of_a_quiet_trace_that_resumed(
    runtime: HookRuntime,
) -> None:
    node = join_k("join", 3)
    await _feed(node, runtime, _message(1, "A"))
    runtime.trace_finished("A")  # the trace went quiet: its old flag is discarded
    await _feed(node, runtime, _message(2, "A"))
    assert [m.payload for m in _pending(node)["A"]] == [1, 2]  # kept, as in 2.2.5
    await runtime.cancel("A")  # sets the new flag
    runtime.trace_finished("A")
    await _feed(node, runtime, _message(3, "A"))
    assert [m.payload for m in _pending(node)["A"]] == [3]


async def test_join_k_items_of_another_flow_join_the_group(runtime: HookRuntime) -> None:
    node = join_k("join", 3)
    other = HookRuntime()
    await _feed(node, runtime, _message(1, "A"))
    await _feed(node, other, _message(2, "A"))
    results = await _feed(node, runtime, _message(3, "A"))
    assert results[0].payload == [1, 2, 3]


async def test_join_k_on_a_detached_context_keeps_groups_without_watchers() -> None:
    node = join_k("join", 2)
    detached = SimpleNamespace(runtime=None)
    await node.invoke(_message(1), detached, registry=None)
    result = await node.invoke(_message(2), detached, registry=None)
    assert result.payload == [1, 2]


async def test_join_k_tolerates_runtimes_without_the_hooks() -> None:
    node = join_k("join", 2)
    ctx = RecordingContext(runtime=SimpleNamespace())
    await node.invoke(_message(1), ctx, registry=None)
    result = await node.invoke(_message(2), ctx, registry=None)
    assert result.payload == [1, 2]
