"""Conformance: runtime.md §13-§14 (state store and message bus hooks)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from conformance_support import EventLog, emit, fetch, msg

from penguiflow import (
    BusEnvelope,
    FlowEvent,
    MessageBus,
    Node,
    NodePolicy,
    RemoteBinding,
    StateStore,
    StoredEvent,
)

NONE = NodePolicy(validate="none")


async def echo(item: Any, ctx: Any) -> Any:
    return item


class Store(StateStore):
    def __init__(self, order: list[str] | None = None, fail: bool = False) -> None:
        self.events: list[StoredEvent] = []
        self.bindings: list[RemoteBinding] = []
        self.order = order if order is not None else []
        self.fail = fail

    async def save_event(self, event: StoredEvent) -> None:
        self.order.append(f"store:{event.kind}")
        if self.fail:
            raise OSError("disk full")
        self.events.append(event)

    async def load_history(self, trace_id: str) -> list[StoredEvent]:
        return [e for e in self.events if e.trace_id == trace_id]

    async def save_remote_binding(self, binding: RemoteBinding) -> None:
        if self.fail:
            raise OSError("disk full")
        self.bindings.append(binding)


class Bus(MessageBus):
    def __init__(self, fail: bool = False) -> None:
        self.envelopes: list[BusEnvelope] = []
        self.fail = fail

    async def publish(self, envelope: BusEnvelope) -> None:
        self.envelopes.append(envelope)
        if self.fail:
            raise ConnectionError("bus down")


async def test_every_event_is_saved_before_middlewares(make_flow: Any) -> None:
    order: list[str] = []
    store = Store(order)

    async def mw(event: FlowEvent) -> None:
        order.append(f"mw:{event.event_type}")

    log = EventLog()
    flow = make_flow(
        Node(echo, name="echo", policy=NONE).to(), state_store=store, middlewares=[mw, log]
    )
    flow.run()
    m = msg()
    await emit(flow, m)
    await fetch(flow)
    await log.wait_for("node_success")
    assert order == [
        "store:node_start",
        "mw:node_start",
        "store:node_success",
        "mw:node_success",
    ]
    history = await flow.load_history(m.trace_id)
    assert [e.kind for e in history] == ["node_start", "node_success"]
    first = history[0]
    event = log.events[0]
    assert first == StoredEvent.from_flow_event(event)
    assert first.payload == event.to_payload()
    assert (first.node_name, first.node_id, first.ts) == ("echo", event.node_id, event.ts)


async def test_traceless_node_cancelled_is_saved(make_flow: Any) -> None:
    store = Store()
    flow = make_flow(Node(echo, name="echo", policy=NONE).to(), state_store=store)
    flow.run()
    await asyncio.sleep(0)  # let the worker start (runtime.md §4)
    await flow.stop()
    assert [e.kind for e in store.events] == ["node_cancelled"]
    assert store.events[0].trace_id is None


async def test_store_failure_is_logged_and_middlewares_still_run(
    make_flow: Any, caplog: pytest.LogCaptureFixture
) -> None:
    log = EventLog()
    flow = make_flow(
        Node(echo, name="echo", policy=NONE).to(), state_store=Store(fail=True), middlewares=[log]
    )
    caplog.set_level(logging.ERROR, logger="penguiflow.core")
    flow.run()
    m = msg()
    await emit(flow, m)
    assert await fetch(flow) is m
    await log.wait_for("node_success")
    records = [r for r in caplog.records if r.getMessage() == "state_store_save_failed"]
    assert len(records) == 2
    record = records[0]
    assert record.name == "penguiflow.core"
    assert record.levelno == logging.ERROR
    assert record.event == "state_store_save_failed"  # type: ignore[attr-defined]
    assert record.trace_id == m.trace_id  # type: ignore[attr-defined]
    assert record.kind == "node_start"  # type: ignore[attr-defined]
    assert record.exception == repr(OSError("disk full"))  # type: ignore[attr-defined]
    assert record.exc_info is not None


async def test_load_history_without_store(make_flow: Any) -> None:
    flow = make_flow(Node(echo, policy=NONE).to())
    with pytest.raises(RuntimeError) as info:
        await flow.load_history("t")
    assert str(info.value) == "PenguiFlow was created without a state_store"


async def test_save_remote_binding(make_flow: Any) -> None:
    store = Store()
    flow = make_flow(Node(echo, policy=NONE).to(), state_store=store)
    binding = RemoteBinding(trace_id="t", context_id="c", task_id="k", agent_url="u")
    await flow.save_remote_binding(binding)
    assert store.bindings == [binding]


async def test_save_remote_binding_without_store_is_noop(make_flow: Any) -> None:
    flow = make_flow(Node(echo, policy=NONE).to())
    binding = RemoteBinding(trace_id="t", context_id="c", task_id="k", agent_url="u")
    assert await flow.save_remote_binding(binding) is None


async def test_save_remote_binding_failure_is_logged(
    make_flow: Any, caplog: pytest.LogCaptureFixture
) -> None:
    flow = make_flow(Node(echo, policy=NONE).to(), state_store=Store(fail=True))
    caplog.set_level(logging.ERROR, logger="penguiflow.core")
    await flow.save_remote_binding(
        RemoteBinding(trace_id="t", context_id="c", task_id="k", agent_url="u")
    )
    (record,) = [r for r in caplog.records if r.getMessage() == "state_store_binding_failed"]
    for key, value in {
        "trace_id": "t",
        "context_id": "c",
        "task_id": "k",
        "agent_url": "u",
    }.items():
        assert getattr(record, key) == value
    assert "disk full" in record.exception  # type: ignore[attr-defined]


async def test_bus_envelopes_for_single_node_flow(make_flow: Any) -> None:
    bus = Bus()
    flow = make_flow(Node(echo, name="echo", policy=NONE).to(), message_bus=bus)
    flow.run()
    m = msg(meta={"k": "v"})
    await emit(flow, m)
    await fetch(flow)
    assert [e.edge for e in bus.envelopes] == ["OpenSea->echo", "echo->Rookery"]
    first, second = bus.envelopes
    assert (first.source, first.target) == ("OpenSea", "echo")
    assert (second.source, second.target) == ("echo", "Rookery")
    for env in bus.envelopes:
        assert env.trace_id == m.trace_id
        assert env.payload is m
        assert env.headers == m.headers.model_dump()
        assert env.meta == {"k": "v"}
        assert env.meta is not m.meta


async def test_bus_envelope_for_traceless_item(make_flow: Any) -> None:
    bus = Bus()
    flow = make_flow(Node(echo, name="echo", policy=NONE).to(), message_bus=bus)
    flow.run()
    await emit(flow, "plain")
    await fetch(flow)
    env = bus.envelopes[0]
    assert (env.trace_id, env.payload, env.headers, env.meta) == (None, "plain", None, None)


async def test_emit_nowait_publishes_in_background(make_flow: Any) -> None:
    bus = Bus()
    flow = make_flow(Node(echo, name="echo", policy=NONE).to(), message_bus=bus)
    flow.emit_nowait(msg())
    flow.run()
    await fetch(flow)
    await flow.stop()
    assert [e.edge for e in bus.envelopes][:1] == ["OpenSea->echo"]


async def test_bus_failure_is_logged_and_item_delivered(
    make_flow: Any, caplog: pytest.LogCaptureFixture
) -> None:
    flow = make_flow(Node(echo, name="echo", policy=NONE).to(), message_bus=Bus(fail=True))
    caplog.set_level(logging.ERROR, logger="penguiflow.core")
    flow.run()
    m = msg()
    await emit(flow, m)
    assert await fetch(flow) is m
    records = [r for r in caplog.records if r.getMessage() == "message_bus_publish_failed"]
    assert records
    record = records[0]
    assert record.event == "message_bus_publish_failed"  # type: ignore[attr-defined]
    assert record.edge == "OpenSea->echo"  # type: ignore[attr-defined]
    assert record.trace_id == m.trace_id  # type: ignore[attr-defined]
    assert record.exception == repr(ConnectionError("bus down"))  # type: ignore[attr-defined]


async def test_record_remote_event(make_flow: Any) -> None:
    log = EventLog()
    store = Store()
    n = Node(echo, name="echo", policy=NONE)
    flow = make_flow(n.to(), middlewares=[log], state_store=store)
    extra = {"remote_status": "success"}
    await flow.record_remote_event(
        event="remote_call_success",
        node=n,
        context=flow._contexts[n],
        trace_id="t",
        latency_ms=1.5,
        extra=extra,
    )
    (event,) = log.events
    assert (event.event_type, event.node_name, event.trace_id) == (
        "remote_call_success",
        "echo",
        "t",
    )
    assert (event.attempt, event.latency_ms) == (0, 1.5)
    assert dict(event.extra) == extra
    assert event.extra is not extra
    assert store.events[0].payload["remote_status"] == "success"


async def test_awaited_emit_publishes_before_enqueuing(make_flow: Any) -> None:
    published = asyncio.Event()
    release = asyncio.Event()

    class SlowBus(MessageBus):
        async def publish(self, envelope: BusEnvelope) -> None:
            published.set()
            await release.wait()

    n = Node(echo, name="echo", policy=NONE)
    flow = make_flow(n.to(), message_bus=SlowBus())
    task = asyncio.create_task(flow.emit(msg()))
    try:
        async with asyncio.timeout(5):
            await published.wait()
        assert flow._contexts[n].queue_depth_in() == 0
        release.set()
        async with asyncio.timeout(5):
            await task
        assert flow._contexts[n].queue_depth_in() == 1
    finally:
        task.cancel()


async def test_bus_envelope_for_rookery_buffer(make_flow: Any) -> None:
    bus = Bus()
    a, b = Node(echo, name="a", policy=NONE), Node(echo, name="b", policy=NONE)
    flow = make_flow(a.to(b), b.to(a), allow_cycles=True, message_bus=bus)
    async with asyncio.timeout(5):
        await flow._emit_to_rookery("status")
    (env,) = bus.envelopes
    assert (env.edge, env.source, env.target) == ("*->Rookery", None, "Rookery")
    assert await fetch(flow) == "status"


async def test_chunk_messages_are_published(make_flow: Any) -> None:
    bus = Bus()

    async def producer(item: Any, ctx: Any) -> None:
        await ctx.emit_chunk(parent=item, text="t")

    flow = make_flow(Node(producer, name="p", policy=NONE).to(), message_bus=bus)
    flow.run()
    m = msg()
    await emit(flow, m)
    chunk_msg = await fetch(flow)
    assert [e.edge for e in bus.envelopes] == ["OpenSea->p", "p->Rookery"]
    assert bus.envelopes[1].payload is chunk_msg


async def test_record_remote_event_level(make_flow: Any, caplog: pytest.LogCaptureFixture) -> None:
    n = Node(echo, name="echo", policy=NONE)
    flow = make_flow(n.to())
    caplog.set_level(logging.DEBUG, logger="penguiflow.core")
    await flow.record_remote_event(
        event="remote_call_error",
        node=n,
        context=flow._contexts[n],
        trace_id="t",
        latency_ms=2.0,
        level=logging.WARNING,
    )
    (record,) = [r for r in caplog.records if r.getMessage() == "remote_call_error"]
    assert record.levelno == logging.WARNING
    assert record.trace_id == "t"  # type: ignore[attr-defined]
