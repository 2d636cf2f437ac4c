"""Conformance: runtime.md §10-§11 (per-trace accounting and cancellation)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conformance_support import EventLog, emit, fetch, msg

from penguiflow import Message, Node, NodePolicy
from penguiflow.core import ROOKERY, TraceCancelled

NONE = NodePolicy(validate="none")


class Blocker:
    """A node body that blocks on a gate for a chosen trace and records cancellation."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.gate = asyncio.Event()

    async def __call__(self, item: Message, ctx: Any) -> Any:
        if item.payload == "block":
            self.started.set()
            try:
                await self.gate.wait()
            except asyncio.CancelledError:
                self.cancelled.set()
                raise
        return item


def blocking_flow(make_flow: Any, **kwargs: Any) -> tuple[Any, Blocker, EventLog, Node]:
    body = Blocker()
    log = EventLog()

    async def work(item: Message, ctx: Any) -> Any:
        return await body(item, ctx)

    node = Node(work, name="work", policy=NONE)
    flow = make_flow(node.to(), middlewares=[log], **kwargs)
    flow.run()
    return flow, body, log, node


async def test_cancel_not_running_raises(make_flow: Any) -> None:
    async def work(item: Any, ctx: Any) -> Any:
        return item

    flow = make_flow(Node(work, policy=NONE).to())
    with pytest.raises(RuntimeError) as info:
        await flow.cancel("t")
    assert str(info.value) == "PenguiFlow is not running"


async def test_cancel_unknown_trace_returns_false(make_flow: Any) -> None:
    flow, _, log, _ = blocking_flow(make_flow)
    assert await flow.cancel("unknown") is False
    assert log.of("trace_cancel_start") == []


async def test_cancel_running_trace_sequence(make_flow: Any) -> None:
    flow, body, log, _ = blocking_flow(make_flow)
    m = msg("block")
    await emit(flow, m)
    async with asyncio.timeout(5):
        await body.started.wait()
    assert await flow.cancel(m.trace_id) is True
    await log.wait_for("trace_cancel_finish")
    assert body.cancelled.is_set()
    trace_kinds = [k for k in log.kinds(m.trace_id) if k != "node_start"]
    assert trace_kinds == ["trace_cancel_start", "node_trace_cancelled", "trace_cancel_finish"]
    start = log.of("trace_cancel_start")[0]
    assert start.node_name == "OpenSea"
    assert start.node_id == "OpenSea"
    assert start.trace_cancelled is True
    assert start.trace_pending is not None
    assert start.trace_pending >= 1
    assert start.trace_inflight >= 1
    assert start.outgoing_edges == 1
    assert "pending" in start.extra
    assert list(start.extra) == ["pending"]
    assert (start.attempt, start.latency_ms) == (0, None)
    node_cancel = log.of("node_trace_cancelled")[0]
    assert node_cancel.node_name == "work"
    assert (node_cancel.attempt, node_cancel.latency_ms) == (0, None)
    finish = log.of("trace_cancel_finish")[0]
    assert finish.node_name == "Rookery"
    assert finish.node_id == "Rookery"
    assert finish.trace_pending == 0
    assert finish.trace_inflight == 0
    assert finish.trace_cancelled is False
    assert "node_failed" not in log.kinds()
    assert "node_retry" not in log.kinds()


async def test_second_cancel_while_active_returns_true_without_new_event(
    make_flow: Any,
) -> None:
    log = EventLog()
    started, hold = asyncio.Event(), asyncio.Event()

    async def stubborn(item: Message, ctx: Any) -> Any:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            await hold.wait()  # stay in flight after the cancel lands

    flow = make_flow(Node(stubborn, name="s", policy=NONE).to(), middlewares=[log])
    flow.run()
    m = msg()
    await emit(flow, m)
    async with asyncio.timeout(5):
        await started.wait()
    assert await flow.cancel(m.trace_id) is True
    assert await flow.cancel(m.trace_id) is True
    hold.set()
    await log.wait_for("trace_cancel_finish")
    assert await flow.cancel(m.trace_id) is False
    assert len(log.of("trace_cancel_start")) == 1
    assert len(log.of("trace_cancel_finish")) == 1


async def test_cancel_removes_queued_items_and_keeps_other_traces(make_flow: Any) -> None:
    flow, body, log, _ = blocking_flow(make_flow)
    blocked = msg("block")
    victim_queued = msg("q", trace_id=blocked.trace_id)
    other1, other2 = msg("o1"), msg("o2")
    await emit(flow, blocked)
    async with asyncio.timeout(5):
        await body.started.wait()
    await emit(flow, other1)
    await emit(flow, victim_queued)
    await emit(flow, other2)
    assert await flow.cancel(blocked.trace_id) is True
    assert await fetch(flow) is other1
    assert await fetch(flow) is other2
    await log.wait_for("trace_cancel_finish")
    assert [e.trace_id for e in log.of("node_start")].count(blocked.trace_id) == 1


async def test_cancel_drains_queued_rookery_message(make_flow: Any) -> None:
    log = EventLog()
    emitted = asyncio.Event()

    async def emit_then_block(item: Message, ctx: Any) -> Any:
        await ctx.emit(item)  # reaches the Rookery queue (counted for the trace)
        emitted.set()
        await asyncio.Event().wait()

    flow = make_flow(Node(emit_then_block, name="e", policy=NONE).to(), middlewares=[log])
    flow.run()
    m = msg()
    await emit(flow, m)
    async with asyncio.timeout(5):
        await emitted.wait()
    assert flow._contexts[ROOKERY].queue_depth_in() == 1
    assert await flow.cancel(m.trace_id) is True
    await log.wait_for("trace_cancel_finish")
    with pytest.raises(asyncio.QueueEmpty):
        flow._contexts[ROOKERY].fetch_nowait()


async def test_trace_becomes_inactive_after_fetch(make_flow: Any) -> None:
    flow, _, log, _ = blocking_flow(make_flow)
    m, later = msg("fast"), msg("fast")
    await emit(flow, m)
    await emit(flow, later)
    await fetch(flow)
    await fetch(flow)  # the node finished ``m`` before it took ``later``
    assert await flow.cancel(m.trace_id) is False
    assert log.of("trace_cancel_start") == []


async def test_trace_active_while_result_unfetched(make_flow: Any) -> None:
    flow, _, log, _ = blocking_flow(make_flow)
    m = msg("fast")
    await emit(flow, m)
    await log.wait_for("node_success")
    assert await flow.cancel(m.trace_id) is True
    await log.wait_for("trace_cancel_finish")
    with pytest.raises(asyncio.QueueEmpty):
        flow._contexts[ROOKERY].fetch_nowait()


async def test_items_arriving_after_cancel_are_dropped(make_flow: Any) -> None:
    log = EventLog()
    release = asyncio.Event()

    async def first(item: Message, ctx: Any) -> Any:
        await release.wait()
        return item

    async def second(item: Message, ctx: Any) -> Any:
        return item

    a = Node(first, name="a", policy=NONE)
    b = Node(second, name="b", policy=NONE)
    flow = make_flow(a.to(b), middlewares=[log])
    flow.run()
    m = msg()
    other = msg(trace_id=m.trace_id)
    await emit(flow, m)
    await log.wait_for("node_start")
    # ``other`` waits in a's queue and is removed by cancel.
    await emit(flow, other)
    assert await flow.cancel(m.trace_id) is True
    await log.wait_for("trace_cancel_finish")
    assert [e.node_name for e in log.of("node_start")] == ["a"]


async def test_trace_cancelled_escaping_node_is_not_an_error(make_flow: Any) -> None:
    log = EventLog()

    async def raise_tc(item: Message, ctx: Any) -> Any:
        raise TraceCancelled(item.trace_id)

    flow = make_flow(Node(raise_tc, name="t", policy=NONE).to(), middlewares=[log])
    flow.run()
    await emit(flow, msg())
    await log.wait_for("node_trace_cancelled")
    assert "node_error" not in log.kinds()
    assert "node_failed" not in log.kinds()


async def test_ensure_trace_event_is_cancel_flag(make_flow: Any) -> None:
    flow, body, log, _ = blocking_flow(make_flow)
    m = msg("block")
    await emit(flow, m)
    async with asyncio.timeout(5):
        await body.started.wait()
    flag = flow.ensure_trace_event(m.trace_id)
    assert isinstance(flag, asyncio.Event)
    assert flow._trace_events[m.trace_id] is flag
    assert flow.ensure_trace_event(m.trace_id) is flag
    assert not flag.is_set()
    await flow.cancel(m.trace_id)
    assert flag.is_set()
    await log.wait_for("trace_cancel_finish")


async def test_register_external_task_cancelled_on_stop(make_flow: Any) -> None:
    flow, _, _, _ = blocking_flow(make_flow)
    task = asyncio.create_task(asyncio.Event().wait())
    flow.register_external_task("t", task)
    flow.register_external_task(None, asyncio.get_running_loop().create_future())
    async with asyncio.timeout(5):
        await flow.stop()
    assert task.cancelled()


async def test_stop_clears_trace_bookkeeping(make_flow: Any) -> None:
    flow, body, _, _ = blocking_flow(make_flow)
    m = msg("block")
    await emit(flow, m)
    async with asyncio.timeout(5):
        await body.started.wait()
        await flow.stop()
    flow.run()
    assert await flow.cancel(m.trace_id) is False


async def test_emit_chunk_capacity_released_on_stop(make_flow: Any) -> None:
    """A producer stalled on per-trace capacity is released by stop()."""
    producing = asyncio.Event()

    async def producer(item: Message, ctx: Any) -> None:
        for i in range(10):
            await ctx.emit_chunk(parent=item, text=str(i))
            producing.set()

    flow = make_flow(Node(producer, name="p", policy=NONE).to(), queue_maxsize=2)
    flow.run()
    await emit(flow, msg())
    async with asyncio.timeout(5):
        await producing.wait()
        await flow.stop()
    assert flow._running is False


async def test_cancel_flag_discarded_when_trace_finishes(make_flow: Any) -> None:
    flags: list[asyncio.Event] = []

    async def grab(item: Message, ctx: Any) -> Any:
        flags.append(ctx.runtime.ensure_trace_event(item.trace_id))
        return item

    flow = make_flow(Node(grab, name="g", policy=NONE).to())
    flow.run()
    m = msg()
    await emit(flow, m)
    await emit(flow, msg())
    await fetch(flow)
    await fetch(flow)  # the node finished ``m`` before it took the second message
    assert isinstance(flags[0], asyncio.Event)
    assert m.trace_id not in flow._trace_events
    assert flow.ensure_trace_event(m.trace_id) is not flags[0]


async def test_trace_cancel_start_outgoing_counts_ingress_edges(make_flow: Any) -> None:
    body = Blocker()
    log = EventLog()

    async def work(item: Message, ctx: Any) -> Any:
        return await body(item, ctx)

    a = Node(work, name="a", policy=NONE)
    b = Node(work, name="b", policy=NONE)
    flow = make_flow(a.to(), b.to(), middlewares=[log])
    flow.run()
    m = msg("block")
    await emit(flow, m, to=a)
    async with asyncio.timeout(5):
        await body.started.wait()
    assert await flow.cancel(m.trace_id) is True
    (start,) = await log.wait_for("trace_cancel_start")
    assert start.outgoing_edges == 2
    await log.wait_for("trace_cancel_finish")


async def test_stop_clears_cancel_flags(make_flow: Any) -> None:
    flow, body, log, _ = blocking_flow(make_flow)
    m = msg("block")
    await emit(flow, m)
    async with asyncio.timeout(5):
        await body.started.wait()
    flow.ensure_trace_event(m.trace_id)
    assert m.trace_id in flow._trace_events
    async with asyncio.timeout(5):
        await flow.stop()
    assert dict(flow._trace_events) == {}
    assert log.of("trace_cancel_start") == []
