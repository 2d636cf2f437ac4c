"""``EventRecorder``: the middleware tests await instead of sleeping."""

from __future__ import annotations

import asyncio
from typing import Any

from penguiflow import FlowEvent, Headers, Message, Node, NodePolicy
from penguiflow.testkit import EventRecorder


def event(kind: str, node: str = "a", trace: str | None = "t") -> FlowEvent:
    return FlowEvent(kind, 0.0, node, node, trace, 0, 0.0, 0, 0, 0, 64, 0, 0, False)


async def test_records_every_event_in_order() -> None:
    recorder = EventRecorder()
    await recorder(event("node_start"))
    await recorder(event("node_cancelled", trace=None))
    assert recorder.types() == ["node_start", "node_cancelled"]


async def test_filters_by_type_node_and_trace() -> None:
    recorder = EventRecorder()
    wanted = event("node_start", "a", "t1")
    for item in (wanted, event("node_start", "b", "t1"), event("node_start", "a", "t2")):
        await recorder(item)
    assert recorder.of_type("node_start", node="a", trace_id="t1") == [wanted]
    assert len(recorder.of_type("node_start")) == 3


async def test_wait_for_returns_at_once_when_already_recorded() -> None:
    recorder = EventRecorder()
    await recorder(event("node_success"))
    async with asyncio.timeout(5):
        assert len(await recorder.wait_for("node_success")) == 1


async def test_wait_for_waits_until_the_count_is_reached() -> None:
    recorder = EventRecorder()
    waiter = asyncio.create_task(recorder.wait_for("node_success", 2))
    await recorder(event("node_success"))
    await recorder(event("node_start"))
    await asyncio.sleep(0)  # let the waiter observe a partial count
    assert not waiter.done()
    await recorder(event("node_success"))
    async with asyncio.timeout(5):
        assert len(await waiter) == 2


async def test_clear_forgets_events() -> None:
    recorder = EventRecorder()
    await recorder(event("node_start"))
    recorder.clear()
    assert recorder.events == []


async def test_works_as_a_flow_middleware(flow_factory: Any, event_recorder: EventRecorder) -> None:
    async def echo(message: Any, _ctx: Any) -> Any:
        return message

    node = Node(echo, name="echo", policy=NodePolicy(validate="none"))
    flow = flow_factory(node.to(), middlewares=[event_recorder])
    flow.run()
    message = Message(payload=1, headers=Headers(tenant="t"))
    async with asyncio.timeout(5):
        await flow.emit(message)
        (success,) = await event_recorder.wait_for("node_success", node="echo")
    assert success.trace_id == message.trace_id


async def test_several_waiters_each_get_their_matches() -> None:
    recorder = EventRecorder()
    starts = asyncio.create_task(recorder.wait_for("node_start"))
    successes = asyncio.create_task(recorder.wait_for("node_success"))
    await asyncio.sleep(0)  # both are waiting now
    await recorder(event("node_start"))
    await recorder(event("node_success"))
    async with asyncio.timeout(5):
        assert [e.event_type for e in await starts] == ["node_start"]
        assert [e.event_type for e in await successes] == ["node_success"]
