"""Conformance: runtime.md §5, §6, §8, §9a (emit/fetch, contexts, routing, scheduling)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conformance_support import EventLog, emit, fetch, msg

from penguiflow import FinalAnswer, Message, Node, NodePolicy, StreamChunk
from penguiflow.core import OPEN_SEA, ROOKERY

NONE = NodePolicy(validate="none")


async def echo(item: Any, ctx: Any) -> Any:
    return item


def node(name: str, fn: Any = echo, **kwargs: Any) -> Node:
    return Node(fn, name=name, policy=NONE, **kwargs)


# --- emit / fetch -----


async def test_fetch_returns_the_same_object(make_flow: Any) -> None:
    flow = make_flow(node("a").to())
    flow.run()
    m = msg()
    await emit(flow, m)
    assert await fetch(flow) is m


async def test_bare_payload_passes_unwrapped(make_flow: Any) -> None:
    async def bare(item: Message, ctx: Any) -> str:
        return f"{item.payload}!"

    flow = make_flow(node("a", bare).to())
    flow.run()
    await emit(flow, msg("hi"))
    assert await fetch(flow) == "hi!"


async def test_none_result_emits_nothing_but_succeeds(make_flow: Any) -> None:
    log = EventLog()

    async def drop(item: Any, ctx: Any) -> None:
        return None

    flow = make_flow(node("a", drop).to(), middlewares=[log])
    flow.run()
    await emit(flow, msg())
    await log.wait_for("node_success")
    with pytest.raises(asyncio.QueueEmpty):
        flow._contexts[ROOKERY].fetch_nowait()


async def test_emit_to_non_ingress_raises_key_error(make_flow: Any) -> None:
    a, b = node("a"), node("b")
    flow = make_flow(a.to(b))
    with pytest.raises(KeyError) as info:
        await flow.emit(msg(), to=b)
    assert info.value.args[0] == "Unknown target b for OpenSea"


async def test_emit_to_selects_ingress_nodes(make_flow: Any) -> None:
    a, b = node("a"), node("b")
    flow = make_flow(a.to(), b.to())
    await flow.emit(msg(), to=a)
    await flow.emit(msg(), to=[b])
    assert flow._contexts[a].queue_depth_in() == 1
    assert flow._contexts[b].queue_depth_in() == 1


async def test_emit_without_to_feeds_every_ingress(make_flow: Any) -> None:
    a, b = node("a"), node("b")
    flow = make_flow(a.to(), b.to())
    m = msg()
    await flow.emit(m)
    flow.run()
    got = [await fetch(flow), await fetch(flow)]
    assert got[0] is m
    assert got[1] is m


async def test_fetch_from_unknown_source(make_flow: Any) -> None:
    a, b = node("a"), node("b")
    flow = make_flow(a.to(b))
    with pytest.raises(KeyError) as info:
        await flow.fetch(from_=a)
    assert info.value.args[0] == "Unknown target a for Rookery"


async def test_fetch_from_selected_egress(make_flow: Any) -> None:
    async def tag(name: str) -> Any:
        async def fn(item: Any, ctx: Any) -> Any:
            return name

        return fn

    a = node("a", await tag("A"))
    b = node("b", await tag("B"))
    flow = make_flow(a.to(), b.to())
    flow.run()
    await emit(flow, msg(), to=a)
    await emit(flow, msg(), to=b)
    assert await fetch(flow, from_=b) == "B"
    assert await fetch(flow, from_=[a]) == "A"


async def test_fetch_any_returns_items_from_all_egress(make_flow: Any) -> None:
    a, b = node("a"), node("b")
    flow = make_flow(a.to(), b.to())
    flow.run()
    m = msg()
    await emit(flow, m)
    async with asyncio.timeout(5):
        got = [await flow.fetch_any(), await flow.fetch_any()]
    assert got == [m, m]


async def test_fetch_without_rookery_edges_raises(make_flow: Any) -> None:
    a, b = node("a"), node("b")
    flow = make_flow(a.to(b), b.to(a), allow_cycles=True)
    with pytest.raises(RuntimeError) as info:
        await flow.fetch()
    assert str(info.value) == "context has no incoming floes to fetch from"


async def test_rookery_fetch_nowait_raises_queue_empty(make_flow: Any) -> None:
    flow = make_flow(node("a").to())
    with pytest.raises(asyncio.QueueEmpty):
        flow._contexts[ROOKERY].fetch_nowait()


async def test_rookery_fetch_nowait_returns_waiting_item(make_flow: Any) -> None:
    log = EventLog()
    flow = make_flow(node("a").to(), middlewares=[log])
    flow.run()
    m = msg()
    await emit(flow, m)
    await log.wait_for("node_success")
    assert flow._contexts[ROOKERY].fetch_nowait() is m


async def test_emit_nowait_and_queue_full(make_flow: Any) -> None:
    flow = make_flow(node("a").to(), queue_maxsize=1)
    flow.emit_nowait(msg())
    with pytest.raises(asyncio.QueueFull):
        flow.emit_nowait(msg())


async def test_emit_nowait_unknown_target(make_flow: Any) -> None:
    a, b = node("a"), node("b")
    flow = make_flow(a.to(b))
    with pytest.raises(KeyError):
        flow.emit_nowait(msg(), to=b)


async def test_unbounded_queue(make_flow: Any) -> None:
    flow = make_flow(node("a").to(), queue_maxsize=0)
    for _ in range(200):
        flow.emit_nowait(msg())
    assert flow._contexts[OPEN_SEA].queue_depth_out() == 200


async def test_fifo_per_edge(make_flow: Any) -> None:
    flow = make_flow(node("a").to(), queue_maxsize=0)
    sent = [msg(i) for i in range(20)]
    for m in sent:
        await emit(flow, m)
    flow.run()
    assert [await fetch(flow) for _ in sent] == sent


async def test_fan_out_delivers_same_object(make_flow: Any) -> None:
    seen: list[Any] = []

    async def record(item: Any, ctx: Any) -> Any:
        seen.append(item)
        return item

    a, b, c = node("a"), node("b", record), node("c", record)
    flow = make_flow(a.to(b, c), b.to(), c.to())
    flow.run()
    m = msg()
    await emit(flow, m)
    await fetch(flow)
    await fetch(flow)
    assert seen[0] is m
    assert seen[1] is m


async def test_in_place_meta_mutation_visible_downstream(make_flow: Any) -> None:
    async def stamp(item: Message, ctx: Any) -> Message:
        item.meta["a"] = 1
        return item

    flow = make_flow(node("a", stamp).to(node("b")))
    flow.run()
    m = msg()
    await emit(flow, m)
    out = await fetch(flow)
    assert out is m
    assert m.meta == {"a": 1}


async def test_fan_in_edges_have_separate_capacity(make_flow: Any) -> None:
    a, b, c = node("a"), node("b"), node("c")
    flow = make_flow(a.to(c), b.to(c), c.to(), queue_maxsize=1)
    ctx_a, ctx_b = flow._contexts[a], flow._contexts[b]
    ctx_a.emit_nowait(msg())
    ctx_b.emit_nowait(msg())
    assert flow._contexts[c].queue_depth_in() == 2


async def test_final_answer_message_goes_to_rookery_bypassing_successors(
    make_flow: Any,
) -> None:
    seen: list[Any] = []

    async def finish(item: Message, ctx: Any) -> Message:
        return item.model_copy(update={"payload": FinalAnswer(text="done")})

    async def never(item: Any, ctx: Any) -> Any:
        seen.append(item)
        return item

    log = EventLog()
    a = node("a", finish)
    flow = make_flow(a.to(node("b", never)), middlewares=[log])
    flow.run()
    m = msg()
    await emit(flow, m)
    out = await fetch(flow)
    assert out.payload == FinalAnswer(text="done")
    assert out.trace_id == m.trace_id
    await log.wait_for("node_success")
    assert seen == []


async def test_ctx_emit_and_return_both_happen_in_order(make_flow: Any) -> None:
    async def both(item: Any, ctx: Any) -> Any:
        await ctx.emit("explicit")
        return "returned"

    flow = make_flow(node("a", both).to())
    flow.run()
    await emit(flow, msg())
    assert [await fetch(flow), await fetch(flow)] == ["explicit", "returned"]


async def test_ctx_emit_unknown_target_is_node_error(make_flow: Any) -> None:
    log = EventLog()
    stranger = node("stranger")

    async def misroute(item: Any, ctx: Any) -> None:
        await ctx.emit(item, to=stranger)

    flow = make_flow(node("a", misroute).to(node("b")), middlewares=[log])
    flow.run()
    await emit(flow, msg())
    (error,) = await log.wait_for("node_error")
    assert error.extra["exception"] == repr(KeyError("Unknown target stranger for a"))


async def test_ctx_emit_to_rookery_from_egress(make_flow: Any) -> None:
    async def push(item: Any, ctx: Any) -> None:
        await ctx.emit("direct", to=ROOKERY)

    flow = make_flow(node("a", push).to())
    flow.run()
    await emit(flow, msg())
    assert await fetch(flow) == "direct"


async def test_stream_chunk_return_is_forwarded_as_is(make_flow: Any) -> None:
    chunk = StreamChunk(stream_id="s", seq=0, text="t")

    async def give(item: Any, ctx: Any) -> Any:
        return chunk

    flow = make_flow(node("a", give).to())
    flow.run()
    await emit(flow, msg())
    assert await fetch(flow) is chunk


async def test_node_exceptions_do_not_escape_to_caller(make_flow: Any) -> None:
    log = EventLog()

    async def boom(item: Any, ctx: Any) -> None:
        raise ValueError("boom")

    flow = make_flow(node("a", boom).to(), middlewares=[log])
    flow.run()
    await emit(flow, msg())
    await log.wait_for("node_failed")
    with pytest.raises(asyncio.QueueEmpty):
        flow._contexts[ROOKERY].fetch_nowait()


async def test_emit_to_rookery_compat_helper(make_flow: Any) -> None:
    flow = make_flow(node("a").to())
    flow.run()
    status = {"status": "working"}
    async with asyncio.timeout(5):
        await flow._emit_to_rookery(status)
    assert await fetch(flow) is status


async def test_emit_to_rookery_without_egress_uses_buffer(make_flow: Any) -> None:
    a, b = node("a"), node("b")
    flow = make_flow(a.to(b), b.to(a), allow_cycles=True)
    flow.run()
    async with asyncio.timeout(5):
        await flow._emit_to_rookery("x")
    assert await fetch(flow) == "x"


# --- node contexts: fetch / fetch_any / fetch_nowait -----


async def test_node_context_fetch_nowait_scans_incoming(make_flow: Any) -> None:
    a, b = node("a"), node("b")
    flow = make_flow(a.to(b))
    ctx_b = flow._contexts[b]
    with pytest.raises(asyncio.QueueEmpty) as info:
        ctx_b.fetch_nowait()
    assert str(info.value) == "no messages available"
    m = msg()
    flow._contexts[a].emit_nowait(m)
    assert ctx_b.fetch_nowait() is m


async def test_node_context_fetch_reads_incoming(make_flow: Any) -> None:
    a, b, c = node("a"), node("b"), node("c")
    flow = make_flow(a.to(c), b.to(c))
    ctx_c = flow._contexts[c]
    m1, m2 = msg(1), msg(2)
    await flow._contexts[a].emit(m1)
    await flow._contexts[b].emit(m2)
    async with asyncio.timeout(5):
        first = await ctx_c.fetch(from_=b)
        second = await ctx_c.fetch_any()
    assert first is m2
    assert second is m1


async def test_node_context_fetch_unknown_source(make_flow: Any) -> None:
    a, b, c = node("a"), node("b"), node("c")
    flow = make_flow(a.to(b), c.to())
    with pytest.raises(KeyError) as info:
        await flow._contexts[b].fetch(from_=c)
    assert info.value.args[0] == "Unknown target c for b"


async def test_node_context_without_incoming_cannot_fetch(make_flow: Any) -> None:
    a = node("a")
    flow = make_flow(a.to())
    with pytest.raises(RuntimeError) as info:
        await flow._contexts[OPEN_SEA].fetch()
    assert str(info.value) == "context has no incoming floes to fetch from"


# --- §9a scheduling contract -----


async def test_queue_maxsize_one_backpressure_schedule(make_flow: Any) -> None:
    gate = asyncio.Event()
    order: list[Any] = []

    async def slow(item: Message, ctx: Any) -> Any:
        order.append(item.payload)
        await gate.wait()
        return item

    flow = make_flow(node("a", slow).to(), queue_maxsize=1)
    flow.run()
    async with asyncio.timeout(5):
        await flow.emit(msg("a"))
    second = asyncio.create_task(flow.emit(msg("b")))
    third = asyncio.create_task(flow.emit(msg("c")))
    try:
        await asyncio.sleep(0)
        assert second.done()
        assert not third.done()
        gate.set()
        async with asyncio.timeout(5):
            await third
            got = [(await flow.fetch()).payload for _ in range(3)]
        assert got == ["a", "b", "c"]
        assert order == ["a", "b", "c"]
    finally:
        third.cancel()
        second.cancel()


async def test_emit_nowait_capacity_is_checked_before_worker_runs(make_flow: Any) -> None:
    flow = make_flow(node("a").to(), queue_maxsize=1)
    flow.run()
    flow.emit_nowait(msg())
    with pytest.raises(asyncio.QueueFull):
        flow.emit_nowait(msg())


async def test_blocked_node_emit_stops_it_taking_items(make_flow: Any) -> None:
    started: list[Any] = []

    async def producer(item: Message, ctx: Any) -> Message:
        started.append(item.payload)
        return item

    a = node("a", producer)
    flow = make_flow(a.to(), queue_maxsize=1)
    flow.run()
    log = EventLog()
    flow.add_middleware(log)
    for i in range(3):
        await emit(flow, msg(i))
    # Rookery edge holds one, the node is blocked emitting the second.
    await log.wait_for("node_start", 2)
    for _ in range(20):  # the scheduling contract: let every runnable task take turns
        await asyncio.sleep(0)
    assert started == [0, 1]
    assert flow._contexts[a].queue_depth_in() == 1
    got = [(await fetch(flow)).payload for _ in range(3)]
    assert got == [0, 1, 2]


async def test_emit_nowait_after_worker_took_item(make_flow: Any) -> None:
    gate = asyncio.Event()

    async def slow(item: Message, ctx: Any) -> Any:
        await gate.wait()
        return item

    flow = make_flow(node("a", slow).to(), queue_maxsize=1)
    flow.run()
    flow.emit_nowait(msg(1))
    await asyncio.sleep(0)  # the worker takes the item within the next loop iteration
    flow.emit_nowait(msg(2))
    with pytest.raises(asyncio.QueueFull):
        flow.emit_nowait(msg(3))
    gate.set()
    assert [(await fetch(flow)).payload for _ in range(2)] == [1, 2]


async def test_several_egress_items_are_all_fetched(make_flow: Any) -> None:
    a, b, c = node("a"), node("b"), node("c")
    flow = make_flow(a.to(b, c), b.to(), c.to(), queue_maxsize=0)
    sent = [msg(i) for i in range(5)]
    for m in sent:
        await emit(flow, m)
    log = EventLog()
    flow.add_middleware(log)
    flow.run()
    await log.wait_for("node_success", 15)
    got = [await fetch(flow) for _ in range(10)]
    assert sorted(m.payload for m in got) == sorted([0, 1, 2, 3, 4] * 2)
    with pytest.raises(asyncio.QueueEmpty):
        flow._contexts[ROOKERY].fetch_nowait()


async def test_concurrent_fetchers_get_distinct_items(make_flow: Any) -> None:
    flow = make_flow(node("a").to())
    flow.run()
    first = asyncio.create_task(flow.fetch())
    second = asyncio.create_task(flow.fetch())
    try:
        m1, m2 = msg(1), msg(2)
        await emit(flow, m1)
        await emit(flow, m2)
        async with asyncio.timeout(5):
            got = await asyncio.gather(first, second)
        assert sorted(x.payload for x in got) == [1, 2]
    finally:
        first.cancel()
        second.cancel()


async def test_emit_to_sequence_of_ingress_nodes(make_flow: Any) -> None:
    a, b, c = node("a"), node("b"), node("c")
    flow = make_flow(a.to(), b.to(), c.to())
    await flow.emit(msg(), to=[a, c])
    assert [flow._contexts[n].queue_depth_in() for n in (a, b, c)] == [1, 0, 1]
