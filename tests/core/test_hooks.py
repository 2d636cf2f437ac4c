"""State-store and message-bus hook timing and the §14 hooks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from core_support import Recorder, fetch, idle, message

from penguiflow import hosting
from penguiflow.core import PenguiFlow
from penguiflow.metrics import FlowEvent
from penguiflow.node import Node

MakeFlow = Callable[..., PenguiFlow]


async def echo(msg: Any, ctx: Any) -> Any:
    return msg


class Store:
    def __init__(self, log: list[str] | None = None, *, fail: bool = False) -> None:
        self.saved: list[Any] = []
        self.bindings: list[Any] = []
        self.log = log if log is not None else []
        self.fail = fail

    async def save_event(self, event: Any) -> None:
        if self.fail:
            raise OSError("disk")
        self.log.append(f"store:{event.kind}")
        self.saved.append(event)

    async def load_history(self, trace_id: str) -> list[Any]:
        return [e for e in self.saved if e.trace_id == trace_id]

    async def save_remote_binding(self, binding: Any) -> None:
        if self.fail:
            raise OSError("disk")
        self.bindings.append(binding)


class Bus:
    def __init__(self, *, fail: bool = False) -> None:
        self.envelopes: list[Any] = []
        self.fail = fail

    async def publish(self, envelope: Any) -> None:
        if self.fail:
            raise OSError("down")
        self.envelopes.append(envelope)


async def test_every_event_is_stored_before_middlewares(make_flow: MakeFlow) -> None:
    order: list[str] = []
    store = Store(order)

    async def middleware(event: FlowEvent) -> None:
        order.append(f"mw:{event.event_type}")

    flow = make_flow(Node(echo).to(), state_store=store, middlewares=[middleware])
    flow.run()
    msg = message()
    await flow.emit(msg)
    await fetch(flow)
    await flow.stop()
    assert order == [
        "store:node_start",
        "mw:node_start",
        "store:node_success",
        "mw:node_success",
        "store:node_cancelled",
        "mw:node_cancelled",
    ]
    assert [e.kind for e in await flow.load_history(msg.trace_id)] == [
        "node_start",
        "node_success",
    ]


async def test_failing_store_is_logged_and_middlewares_still_run(
    make_flow: MakeFlow, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    flow = make_flow(Node(echo).to(), state_store=Store(fail=True))
    flow.run()
    msg = message()
    with caplog.at_level(logging.ERROR, logger="penguiflow.core"):
        await flow.emit(msg)
        await fetch(flow)
        await recorder.wait_for("node_success")
    failure = next(r for r in caplog.records if r.getMessage() == "state_store_save_failed")
    assert failure.event == "state_store_save_failed"  # type: ignore[attr-defined]
    assert failure.trace_id == msg.trace_id  # type: ignore[attr-defined]
    assert failure.kind == "node_start"  # type: ignore[attr-defined]
    assert failure.exception == "OSError('disk')"  # type: ignore[attr-defined]


async def test_load_history_without_store_raises(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to())
    with pytest.raises(RuntimeError, match=r"^PenguiFlow was created without a state_store$"):
        await flow.load_history("t")


async def test_save_remote_binding(make_flow: MakeFlow, caplog: pytest.LogCaptureFixture) -> None:
    binding = object()
    store = Store()
    await make_flow(Node(echo).to(), state_store=store).save_remote_binding(binding)
    assert store.bindings == [binding]
    await make_flow(Node(echo).to()).save_remote_binding(binding)  # no store: no-op
    with caplog.at_level(logging.ERROR, logger="penguiflow.core"):
        await make_flow(Node(echo).to(), state_store=Store(fail=True)).save_remote_binding(binding)
    assert caplog.records[-1].getMessage() == "state_store_binding_failed"


async def test_bus_publishes_every_edge_put(make_flow: MakeFlow) -> None:
    bus = Bus()
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(b), message_bus=bus)
    flow.run()
    msg = message()
    msg.meta["k"] = 1
    await flow.emit(msg)
    await fetch(flow)
    assert [e.edge for e in bus.envelopes] == ["OpenSea->a", "a->b", "b->Rookery"]
    first = bus.envelopes[0]
    assert (first.source, first.target, first.trace_id) == ("OpenSea", "a", msg.trace_id)
    assert first.payload is msg
    assert first.headers == {"tenant": "t", "topic": None, "priority": 0}
    assert first.meta == {"k": 1}
    assert first.meta is not msg.meta


async def test_bus_envelope_for_bare_items(make_flow: MakeFlow) -> None:
    bus = Bus()
    flow = make_flow(Node(echo).to(), message_bus=bus)
    await flow.emit("bare")
    (envelope,) = bus.envelopes
    assert (envelope.trace_id, envelope.headers, envelope.meta) == (None, None, None)


async def test_emit_nowait_publishes_in_background_and_stop_waits(make_flow: MakeFlow) -> None:
    bus = Bus()
    flow = make_flow(Node(echo).to(), message_bus=bus)
    flow.run()
    flow.emit_nowait("x")
    assert bus.envelopes == []
    await flow.stop()
    assert [e.edge for e in bus.envelopes] == ["OpenSea->echo"]


async def test_failing_bus_is_logged_and_item_enqueued(
    make_flow: MakeFlow, caplog: pytest.LogCaptureFixture
) -> None:
    flow = make_flow(Node(echo).to(), message_bus=Bus(fail=True))
    flow.run()
    with caplog.at_level(logging.ERROR, logger="penguiflow.core"):
        await flow.emit("x")
    assert await fetch(flow) == "x"
    failure = next(r for r in caplog.records if r.getMessage() == "message_bus_publish_failed")
    assert failure.edge == "OpenSea->echo"  # type: ignore[attr-defined]
    assert failure.exception == "OSError('down')"  # type: ignore[attr-defined]


async def test_rookery_buffer_delivery_is_published(make_flow: MakeFlow) -> None:
    bus = Bus()
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(b), b.to(a), allow_cycles=True, message_bus=bus)
    await hosting.deliver_to_rookery(flow, "x", source=a)
    assert [e.edge for e in bus.envelopes] == ["a->Rookery"]


async def test_ensure_trace_event_is_the_compat_flag(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to())
    flag = flow.ensure_trace_event("t")
    assert flow.ensure_trace_event("t") is flag
    assert flow._trace_events["t"] is flag


async def test_cancel_flag_is_set_by_cancel_and_is_no_compat_event(make_flow: MakeFlow) -> None:
    entered = asyncio.Event()

    async def hold(msg: Any, ctx: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()

    flow = make_flow(Node(hold, name="hold").to())
    flow.run()
    msg = message()
    flag = flow.cancel_flag(msg.trace_id)
    assert flow.cancel_flag(msg.trace_id) is flag
    assert msg.trace_id not in flow._trace_events  # not a flag tested on every hop
    await flow.emit(msg)
    async with asyncio.timeout(5):
        await entered.wait()
    assert not flag.is_set()
    assert await flow.cancel(msg.trace_id) is True
    assert flag.is_set()


async def test_cancel_flag_is_forgotten_when_its_trace_ends(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo, name="echo").to())
    flow.run()
    msg = message()
    flag = flow.cancel_flag(msg.trace_id)
    await flow.emit(msg)
    assert await fetch(flow) is msg
    await idle(flow)
    assert flow.cancel_flag(msg.trace_id) is not flag  # a later trace of that id starts afresh
    assert not flag.is_set()


async def test_register_external_task_is_cancelled_by_stop(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to())
    flow.run()
    task = asyncio.get_running_loop().create_task(asyncio.Event().wait())
    flow.register_external_task("t", task)
    flow.register_external_task(None, task)  # ignored
    await flow.stop()
    assert task.cancelled()


async def test_record_remote_event(
    make_flow: MakeFlow, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    node = Node(echo, name="remote")
    flow = make_flow(node.to())
    extra = {"remote_context_id": "c"}
    with caplog.at_level(logging.DEBUG, logger="penguiflow.core"):
        await flow.record_remote_event(
            event="remote_call_start",
            node=node,
            context=flow.context(node),
            trace_id="t",
            latency_ms=0.0,
            level=logging.DEBUG,
            extra=extra,
        )
    (event,) = recorder.events
    assert (event.event_type, event.node_name, event.attempt) == ("remote_call_start", "remote", 0)
    assert event.extra == extra
    assert caplog.records[-1].levelno == logging.DEBUG


async def test_add_middleware_takes_effect_for_later_events(make_flow: MakeFlow) -> None:
    late = Recorder()
    flow = make_flow(Node(echo).to())
    flow.add_middleware(late)
    assert flow._middlewares[-1] is late
    flow.run()
    await flow.emit(message())
    await fetch(flow)
    await late.wait_for("node_success")
