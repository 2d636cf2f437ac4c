"""Feeding and draining a flow, and the node Context (runtime.md §5, §6, §8)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from core_support import fetch, idle, message, run_state

from penguiflow import hosting
from penguiflow.core import OPEN_SEA, ROOKERY, Context, Endpoint, PenguiFlow
from penguiflow.node import Node
from penguiflow.testkit import trace_counts
from penguiflow.types import FinalAnswer

MakeFlow = Callable[..., PenguiFlow]


async def echo(msg: Any, ctx: Any) -> Any:
    return msg


async def test_emit_reaches_every_ingress_node(make_flow: MakeFlow) -> None:
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(), b.to())
    flow.run()
    await flow.emit("x")
    assert [await fetch(flow), await fetch(flow)] == ["x", "x"]


async def test_emit_to_one_ingress_node(make_flow: MakeFlow) -> None:
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(), b.to())
    flow.run()
    await flow.emit("x", to=b)
    assert await fetch(flow, from_=b) == "x"
    assert flow.context(ROOKERY).queue_depth_in() == 0


async def test_emit_to_a_sequence_of_targets(make_flow: MakeFlow) -> None:
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(), b.to())
    await flow.emit("x", to=[a, b])
    assert flow.context(OPEN_SEA).queue_depth_out() == 2


async def test_emit_to_non_ingress_raises_key_error(make_flow: MakeFlow) -> None:
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(b))
    with pytest.raises(KeyError) as info:
        await flow.emit("x", to=b)
    assert info.value.args == ("Unknown target b for OpenSea",)


async def test_emit_nowait_raises_queue_full(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to(), queue_maxsize=1)
    flow.emit_nowait("first")
    with pytest.raises(asyncio.QueueFull):
        flow.emit_nowait("second")


async def test_emit_nowait_with_unknown_target(make_flow: MakeFlow) -> None:
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(b))
    with pytest.raises(KeyError):
        flow.emit_nowait("x", to=b)


async def test_fetch_unknown_source_raises_key_error(make_flow: MakeFlow) -> None:
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(b))
    with pytest.raises(KeyError) as info:
        await flow.fetch(from_=a)
    assert info.value.args == ("Unknown target a for Rookery",)


async def test_fetch_without_rookery_edges_raises(make_flow: MakeFlow) -> None:
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(b), b.to(a), allow_cycles=True)
    with pytest.raises(RuntimeError, match=r"^context has no incoming floes to fetch from$"):
        await flow.fetch()


async def test_fetch_any_returns_first_available(make_flow: MakeFlow) -> None:
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(), b.to())
    flow.run()
    await flow.emit("x", to=b)
    async with asyncio.timeout(5):
        assert await flow.fetch_any() == "x"


async def test_fan_out_delivers_the_same_object(make_flow: MakeFlow) -> None:
    a, b, c = Node(echo, name="a"), Node(echo, name="b"), Node(echo, name="c")
    flow = make_flow(a.to(b, c))
    flow.run()
    msg = message()
    await flow.emit(msg)
    assert await fetch(flow) is msg
    assert await fetch(flow) is msg


async def test_fifo_per_edge(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to())
    flow.run()
    for i in range(5):
        await flow.emit(i)
    assert [await fetch(flow) for _ in range(5)] == [0, 1, 2, 3, 4]


async def test_none_result_emits_nothing_but_succeeds(make_flow: MakeFlow, recorder: Any) -> None:
    async def sink(msg: Any, ctx: Any) -> None:
        return None

    flow = make_flow(Node(sink).to())
    flow.run()
    await flow.emit(message())
    await recorder.wait_for("node_success")
    assert flow.context(ROOKERY).queue_depth_in() == 0


async def test_final_answer_message_bypasses_successors(make_flow: MakeFlow) -> None:
    seen: list[Any] = []

    async def finish(msg: Any, ctx: Any) -> Any:
        return msg.model_copy(update={"payload": FinalAnswer(text="done")})

    async def after(msg: Any, ctx: Any) -> Any:
        seen.append(msg)
        return msg

    a, b = Node(finish, name="a"), Node(after, name="b")
    flow = make_flow(a.to(b))
    flow.run()
    await flow.emit(message())
    result = await fetch(flow)
    assert result.payload == FinalAnswer(text="done")
    await idle(flow)
    assert seen == []


async def test_explicit_emits_then_return_value(make_flow: MakeFlow) -> None:
    async def both(msg: Any, ctx: Any) -> Any:
        await ctx.emit("explicit")
        return "returned"

    flow = make_flow(Node(both).to())
    flow.run()
    await flow.emit("x")
    assert [await fetch(flow), await fetch(flow)] == ["explicit", "returned"]


async def test_ctx_emit_to_rookery_from_egress_node(make_flow: MakeFlow) -> None:
    async def push(msg: Any, ctx: Any) -> None:
        await ctx.emit("status", to=ROOKERY)

    flow = make_flow(Node(push).to())
    flow.run()
    await flow.emit("x")
    assert await fetch(flow) == "status"


async def test_ctx_emit_unknown_target_is_a_node_error(make_flow: MakeFlow, recorder: Any) -> None:
    stranger = Node(echo, name="stranger")

    async def wrong(msg: Any, ctx: Any) -> None:
        await ctx.emit("x", to=stranger)

    a, b = Node(wrong, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(b))
    flow.run()
    await flow.emit(message())
    (error,) = await recorder.wait_for("node_error")
    assert error.extra["exception"] == repr(KeyError("Unknown target stranger for a"))


async def test_ctx_emit_nowait_raises_queue_full(make_flow: MakeFlow) -> None:
    outcome: list[str] = []
    gate = asyncio.Event()

    async def burst(msg: Any, ctx: Any) -> None:
        ctx.emit_nowait(1)
        try:
            ctx.emit_nowait(2)
        except asyncio.QueueFull:
            outcome.append("full")
        gate.set()

    flow = make_flow(Node(burst).to(), queue_maxsize=1)
    flow.run()
    await flow.emit("go")
    async with asyncio.timeout(5):
        await gate.wait()
    assert outcome == ["full"]


async def test_detached_context_cannot_emit() -> None:
    ctx = Context(Endpoint("test"))
    assert ctx.runtime is None
    assert ctx.owner == Endpoint("test")
    with pytest.raises(RuntimeError, match=r"^Context is not attached to a running flow$"):
        await ctx.emit("x")
    with pytest.raises(RuntimeError, match=r"attached"):
        ctx.emit_nowait("x")
    with pytest.raises(RuntimeError, match=r"attached"):
        await ctx.emit_chunk(parent=message(), text="t")


async def test_detached_context_has_nothing_to_fetch() -> None:
    ctx = Context(Endpoint("test"))
    with pytest.raises(RuntimeError, match=r"no incoming floes"):
        await ctx.fetch()
    with pytest.raises(asyncio.QueueEmpty):
        ctx.fetch_nowait()
    assert (ctx.outgoing_count(), ctx.queue_depth_in(), ctx.queue_depth_out()) == (0, 0, 0)


async def test_rookery_fetch_nowait_raises_queue_empty(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to())
    with pytest.raises(asyncio.QueueEmpty) as info:
        flow.context(ROOKERY).fetch_nowait()
    assert str(info.value) == "no messages available"


async def test_rookery_fetch_nowait_returns_waiting_item(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    await idle(flow)
    assert flow.context(ROOKERY).fetch_nowait() is msg
    assert trace_counts(flow) == {}


async def test_context_counts_and_depths(make_flow: MakeFlow) -> None:
    a, b, c = Node(echo, name="a"), Node(echo, name="b"), Node(echo, name="c")
    flow = make_flow(a.to(b, c))
    ctx = flow.context(a)
    assert ctx.runtime is flow
    assert ctx.owner is a
    assert ctx.outgoing_count() == 2
    await flow.emit("x")
    assert ctx.queue_depth_in() == 1
    assert ctx.queue_depth_out() == 0
    assert flow.context(b).queue_depth_in() == 0


async def test_node_context_fetch_reads_its_own_edges(make_flow: MakeFlow) -> None:
    a = Node(echo, name="a")
    flow = make_flow(a.to())
    ctx = flow.context(a)
    await flow.emit("x")
    async with asyncio.timeout(5):
        assert await ctx.fetch() == "x"
    await flow.emit("y")
    assert ctx.fetch_nowait(from_=OPEN_SEA) == "y"
    with pytest.raises(KeyError, match=r"Unknown target Rookery for a"):
        await ctx.fetch(from_=ROOKERY)
    with pytest.raises(RuntimeError, match=r"no incoming floes"):
        await flow.context(OPEN_SEA).fetch()


async def test_no_outgoing_edges_makes_emit_a_noop(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to())
    rookery = flow.context(ROOKERY)
    await rookery.emit("x", to=OPEN_SEA)
    rookery.emit_nowait("x")
    assert rookery.outgoing_count() == 0


async def test_empty_flow_emit_is_a_silent_noop(make_flow: MakeFlow) -> None:
    flow = make_flow()
    flow.run()
    await flow.emit("x")
    flow.emit_nowait("x")


async def test_emit_to_rookery_compat_is_counted_and_fetchable(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to())
    msg = message()
    await hosting.deliver_to_rookery(flow, msg)
    assert trace_counts(flow).get(msg.trace_id, 0) == 1
    assert await fetch(flow) is msg
    assert trace_counts(flow) == {}


async def test_rookery_buffer_used_without_egress_edges(make_flow: MakeFlow) -> None:
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(b), b.to(a), allow_cycles=True)
    await hosting.deliver_to_rookery(flow, "buffered")
    assert await fetch(flow) == "buffered"


async def test_emit_nowait_swallows_a_streamed_wm_hop(make_flow: MakeFlow) -> None:
    from penguiflow.types import WM

    flow = make_flow(Node(echo).to())
    msg = message(WM(query="q", hops=2))
    run_state(flow).traces.memo[msg.trace_id] = 3  # as if the loop had streamed hop 3 already
    flow.emit_nowait(msg)
    assert flow.mailboxes()["echo"].depth == 0


async def test_cancelled_emit_uncounts_its_item(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to(), queue_maxsize=1)
    flow.emit_nowait("fills the edge")
    msg = message()
    blocked = asyncio.create_task(flow.emit(msg))
    await asyncio.sleep(0)
    assert trace_counts(flow).get(msg.trace_id, 0) == 1  # counted before the put
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    assert trace_counts(flow) == {}


async def test_fetch_traced_names_the_producing_trace(make_flow: MakeFlow) -> None:
    async def bare(msg: Any, ctx: Any) -> Any:
        return {"answer": msg.payload}

    flow = make_flow(Node(bare).to())
    flow.run()
    msg = message("x")
    await flow.emit(msg)
    async with asyncio.timeout(5):
        delivery = await flow.fetch_traced()
    assert delivery.item == {"answer": "x"}
    assert delivery.trace_id == msg.trace_id
