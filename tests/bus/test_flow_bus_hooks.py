"""When and what a flow publishes on its message bus (runtime.md §13)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from penguiflow import FinalAnswer, Headers, Message, Node, NodePolicy, hosting
from penguiflow.bus import BusEnvelope
from penguiflow.testkit._stores import InMemoryMessageBus

NONE = NodePolicy(validate="none")


async def echo(message: Any, _ctx: Any) -> Any:
    return message


def _message(**kwargs: Any) -> Message:
    return Message(payload="hi", headers=Headers(tenant="acme", topic="t"), meta={"k": 1}, **kwargs)


async def fetch(flow: Any) -> Any:
    async with asyncio.timeout(5):
        return await flow.fetch()


async def test_single_node_flow_publishes_ingress_and_egress_envelopes(
    flow_factory: Callable[..., Any],
) -> None:
    bus = InMemoryMessageBus()
    flow = flow_factory(Node(echo, name="echo", policy=NONE).to(), message_bus=bus)
    flow.run()
    message = _message()
    await flow.emit(message)
    await fetch(flow)
    ingress, egress = bus.published
    assert (ingress.edge, ingress.source, ingress.target) == ("OpenSea->echo", "OpenSea", "echo")
    assert (egress.edge, egress.source, egress.target) == ("echo->Rookery", "echo", "Rookery")
    for envelope in (ingress, egress):
        assert envelope.trace_id == message.trace_id
        assert envelope.payload is message
        assert envelope.headers == message.headers.model_dump()
        assert envelope.meta == {"k": 1}
        assert envelope.meta is not message.meta


async def test_node_to_node_edges_are_published(flow_factory: Callable[..., Any]) -> None:
    bus = InMemoryMessageBus()
    a = Node(echo, name="a", policy=NONE)
    b = Node(echo, name="b", policy=NONE)
    flow = flow_factory(a.to(b), b.to(), message_bus=bus)
    flow.run()
    await flow.emit(_message())
    await fetch(flow)
    assert bus.edges() == ["OpenSea->a", "a->b", "b->Rookery"]


async def test_fetch_publishes_nothing(flow_factory: Callable[..., Any]) -> None:
    bus = InMemoryMessageBus()
    flow = flow_factory(Node(echo, name="echo", policy=NONE).to(), message_bus=bus)
    flow.run()
    await flow.emit(_message())
    async with asyncio.timeout(5):
        await bus.wait_for(2)
    await fetch(flow)
    async with asyncio.timeout(5):
        await flow.wait_idle()
    assert len(bus.published) == 2


async def test_stream_chunks_are_published(flow_factory: Callable[..., Any]) -> None:
    async def streamer(message: Message, ctx: Any) -> None:
        await ctx.emit_chunk(parent=message, text="a")
        await ctx.emit_chunk(parent=message, text="b", done=True)

    bus = InMemoryMessageBus()
    flow = flow_factory(Node(streamer, name="s", policy=NONE).to(), message_bus=bus)
    flow.run()
    message = _message()
    await flow.emit(message)
    await fetch(flow)
    await fetch(flow)
    chunks = [e for e in bus.published if e.edge == "s->Rookery"]
    assert [e.payload.payload.text for e in chunks] == ["a", "b"]
    assert {e.trace_id for e in chunks} == {message.trace_id}


async def test_runtime_generated_rookery_delivery_is_published(
    flow_factory: Callable[..., Any],
) -> None:
    bus = InMemoryMessageBus()
    flow = flow_factory(Node(echo, name="echo", policy=NONE).to(), message_bus=bus)
    flow.run()
    await flow.emit(_message(deadline_s=time.time() - 60))
    skipped = await fetch(flow)
    assert isinstance(skipped.payload, FinalAnswer)
    assert bus.edges() == ["OpenSea->echo", "echo->Rookery"]
    assert bus.published[1].payload is skipped


async def test_bare_payload_envelope_has_no_trace_headers_or_meta(
    flow_factory: Callable[..., Any],
) -> None:
    bus = InMemoryMessageBus()
    flow = flow_factory(Node(echo, name="echo", policy=NONE).to(), message_bus=bus)
    flow.run()
    await flow.emit({"bare": True})
    assert await fetch(flow) == {"bare": True}
    first = bus.published[0]
    assert (first.trace_id, first.headers, first.meta) == (None, None, None)
    assert first.payload == {"bare": True}


async def test_awaited_emit_publishes_before_enqueueing(flow_factory: Callable[..., Any]) -> None:
    gate, publishing = asyncio.Event(), asyncio.Event()
    invoked: list[str] = []

    class GatedBus(InMemoryMessageBus):
        async def publish(self, envelope: BusEnvelope) -> None:
            if envelope.source == "OpenSea":
                publishing.set()
                await gate.wait()
            await super().publish(envelope)

    async def work(message: Message, _ctx: Any) -> Message:
        invoked.append("work")
        return message

    flow = flow_factory(Node(work, name="work", policy=NONE).to(), message_bus=GatedBus())
    flow.run()
    emit = asyncio.create_task(flow.emit(_message()))
    async with asyncio.timeout(5):
        await publishing.wait()
    assert not emit.done()
    assert flow.mailboxes()["work"].depth == 0
    assert invoked == []
    gate.set()
    async with asyncio.timeout(5):
        await emit
    await fetch(flow)
    assert invoked == ["work"]


async def test_emit_nowait_enqueues_at_once_and_stop_waits_for_the_publish(
    flow_factory: Callable[..., Any],
) -> None:
    gate, publishing = asyncio.Event(), asyncio.Event()

    class GatedBus(InMemoryMessageBus):
        async def publish(self, envelope: BusEnvelope) -> None:
            if envelope.source == "OpenSea":
                publishing.set()
                await gate.wait()
            await super().publish(envelope)

    bus = GatedBus()
    flow = flow_factory(Node(echo, name="echo", policy=NONE).to(), message_bus=bus)
    flow.emit_nowait(_message())  # before run(): the item waits in the queue
    assert flow.mailboxes()["echo"].depth == 1
    flow.run()
    assert (await fetch(flow)).payload == "hi"
    async with asyncio.timeout(5):
        await publishing.wait()
    stopping = asyncio.create_task(flow.stop())
    await asyncio.sleep(0)  # stop() must be waiting on the background publish
    assert not stopping.done()
    gate.set()
    async with asyncio.timeout(5):
        await stopping
    assert "OpenSea->echo" in bus.edges()


async def test_failing_publish_is_logged_and_the_item_still_delivered(
    flow_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    bus = InMemoryMessageBus()
    bus.fail_with = ConnectionError("bus down")
    flow = flow_factory(Node(echo, name="echo", policy=NONE).to(), message_bus=bus)
    flow.run()
    message = _message()
    await flow.emit(message)
    assert (await fetch(flow)).payload == "hi"
    failures = [r for r in caplog.records if r.getMessage() == "message_bus_publish_failed"]
    assert [r.edge for r in failures] == ["OpenSea->echo", "echo->Rookery"]  # type: ignore[attr-defined]
    assert failures[0].levelno == logging.ERROR
    assert failures[0].name == "penguiflow.core"
    assert failures[0].trace_id == message.trace_id  # type: ignore[attr-defined]
    assert failures[0].exception == "ConnectionError('bus down')"  # type: ignore[attr-defined]


async def test_final_answer_shortcut_to_rookery_is_published(
    flow_factory: Callable[..., Any],
) -> None:
    async def finish(message: Message, _ctx: Any) -> Message:
        return message.model_copy(update={"payload": FinalAnswer(text="done")})

    bus = InMemoryMessageBus()
    a = Node(finish, name="a", policy=NONE)
    b = Node(echo, name="b", policy=NONE)
    flow = flow_factory(a.to(b), b.to(), message_bus=bus)
    flow.run()
    await flow.emit(_message())
    final = await fetch(flow)
    # Which Rookery edge carries a shortcut delivery is the runtime's choice (an
    # existing egress edge, as in 2.2.5); that it is published once is the contract.
    assert len(bus.published) == 2
    last = bus.published[-1]
    assert (last.target, last.payload) == ("Rookery", final)
    assert last.payload is final
    assert last.edge.endswith("->Rookery")


async def test_direct_rookery_delivery_is_published(
    flow_factory: Callable[..., Any],
) -> None:
    bus = InMemoryMessageBus()
    flow = flow_factory(Node(echo, name="echo", policy=NONE).to(), message_bus=bus)
    flow.run()
    await hosting.deliver_to_rookery(flow, {"status": "working"})
    assert await fetch(flow) == {"status": "working"}
    (envelope,) = bus.published
    assert (envelope.target, envelope.payload, envelope.trace_id) == (
        "Rookery",
        {"status": "working"},
        None,
    )


async def test_cancellation_drains_publish_nothing(flow_factory: Callable[..., Any]) -> None:
    started = asyncio.Event()

    async def stuck(message: Message, _ctx: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    bus = InMemoryMessageBus()
    flow = flow_factory(Node(stuck, name="stuck", policy=NONE).to(), message_bus=bus)
    flow.run()
    first = _message()
    await flow.emit(first)
    await flow.emit(Message(payload="queued", headers=first.headers, trace_id=first.trace_id))
    async with asyncio.timeout(5):
        await started.wait()
    published = len(bus.published)
    assert await flow.cancel(first.trace_id)
    async with asyncio.timeout(5):
        await flow.wait_idle()
    assert len(bus.published) == published == 2
