"""``join_k`` invoked directly: batching per trace, envelopes, partial-group cleanup."""

from __future__ import annotations

import gc
import weakref
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from patterns_support import MiddlewareRuntime, RecordingContext, flow_event

from penguiflow.node import NodePolicy
from penguiflow.patterns import join_k
from penguiflow.types import Headers, Message


def _message(payload: Any, trace_id: str = "t1") -> Message:
    return Message(payload=payload, headers=Headers(tenant="acme"), trace_id=trace_id)


def _pending(node: Any) -> dict[str, list[Any]]:
    state = node.func._join_state
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
    import asyncio

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


async def test_join_k_registers_one_cleanup_middleware_per_flow() -> None:
    node = join_k("join", 3)
    runtime = MiddlewareRuntime()
    ctx = RecordingContext(runtime=runtime)
    await node.invoke(_message(1, "A"), ctx, registry=None)
    await node.invoke(_message(2, "B"), ctx, registry=None)
    await node.invoke(_message(3, "A"), ctx, registry=None)
    assert len(runtime._middlewares) == 1


async def test_join_k_drops_the_partial_group_of_a_cancelled_trace() -> None:
    node = join_k("join", 3)
    runtime = MiddlewareRuntime()
    ctx = RecordingContext(runtime=runtime)
    await node.invoke(_message(1, "A"), ctx, registry=None)
    await node.invoke(_message(2, "B"), ctx, registry=None)
    await runtime.publish(flow_event("trace_cancel_start", trace_id="A"))
    assert set(_pending(node)) == {"B"}


async def test_join_k_restarts_a_cancelled_trace_from_an_empty_bucket() -> None:
    node = join_k("join", 2)
    runtime = MiddlewareRuntime()
    ctx = RecordingContext(runtime=runtime)
    await node.invoke(_message("stale", "A"), ctx, registry=None)
    await runtime.publish(flow_event("trace_cancel_start", trace_id="A"))
    assert await node.invoke(_message("fresh-1", "A"), ctx, registry=None) is None
    result = await node.invoke(_message("fresh-2", "A"), ctx, registry=None)
    assert result.payload == ["fresh-1", "fresh-2"]


async def test_join_k_drops_every_partial_group_when_its_flow_stops() -> None:
    node = join_k("join", 3)
    runtime = MiddlewareRuntime()
    ctx = RecordingContext(runtime=runtime)
    await node.invoke(_message(1, "A"), ctx, registry=None)
    await node.invoke(_message(2, "B"), ctx, registry=None)
    await runtime.publish(flow_event("node_cancelled", node_id=node.node_id))
    assert _pending(node) == {}


async def test_join_k_ignores_other_nodes_stopping() -> None:
    node = join_k("join", 3)
    runtime = MiddlewareRuntime()
    await node.invoke(_message(1, "A"), RecordingContext(runtime=runtime), registry=None)
    await runtime.publish(flow_event("node_cancelled", node_id="someone-else"))
    await runtime.publish(flow_event("node_success", trace_id="A"))
    assert set(_pending(node)) == {"A"}


async def test_join_k_cleanup_only_touches_groups_of_the_flow_that_reported() -> None:
    node = join_k("join", 3)
    flow_one, flow_two = MiddlewareRuntime(), MiddlewareRuntime()
    await node.invoke(_message(1, "A"), RecordingContext(runtime=flow_one), registry=None)
    await node.invoke(_message(2, "B"), RecordingContext(runtime=flow_two), registry=None)
    await flow_two.publish(flow_event("trace_cancel_start", trace_id="A"))
    await flow_two.publish(flow_event("node_cancelled", node_id=node.node_id))
    assert set(_pending(node)) == {"A"}


async def test_join_k_on_a_detached_context_keeps_groups_without_a_runtime() -> None:
    node = join_k("join", 2)
    detached = SimpleNamespace(runtime=None)
    await node.invoke(_message(1), detached, registry=None)
    result = await node.invoke(_message(2), detached, registry=None)
    assert result.payload == [1, 2]


async def test_join_k_tolerates_runtimes_without_middleware_support() -> None:
    node = join_k("join", 2)
    ctx = RecordingContext(runtime=SimpleNamespace())
    await node.invoke(_message(1), ctx, registry=None)
    result = await node.invoke(_message(2), ctx, registry=None)
    assert result.payload == [1, 2]


async def test_join_k_cleanup_middleware_does_not_keep_the_node_alive() -> None:
    runtime = MiddlewareRuntime()
    node = join_k("join", 2)
    await node.invoke(_message(1), RecordingContext(runtime=runtime), registry=None)
    state_ref = weakref.ref(node.func._join_state)
    del node
    gc.collect()
    assert state_ref() is None
    await runtime.publish(flow_event("trace_cancel_start", trace_id="t1"))  # no error
