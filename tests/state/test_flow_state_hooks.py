"""When and how a flow calls its state store (runtime.md §13, §14)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from penguiflow import Headers, Message, Node, NodePolicy, create
from penguiflow.metrics import FlowEvent
from penguiflow.state import RemoteBinding, StoredEvent
from penguiflow.stores import SQLiteStateStore
from penguiflow.testkit._stores import InMemoryStateStore

NONE = NodePolicy(validate="none")


async def echo(message: Message, _ctx: Any) -> Message:
    return message


async def boom(message: Message, _ctx: Any) -> Message:
    raise ValueError("boom")


def _message(payload: Any = "hi") -> Message:
    return Message(payload=payload, headers=Headers(tenant="acme"))


async def fetch(flow: Any) -> Any:
    async with asyncio.timeout(5):
        return await flow.fetch()


class _Recorder:
    """A middleware recording every event it receives."""

    def __init__(self) -> None:
        self.events: list[FlowEvent] = []

    async def __call__(self, event: FlowEvent) -> None:
        self.events.append(event)


async def test_every_event_is_saved_as_stored_event_from_flow_event(
    flow_factory: Callable[..., Any],
) -> None:
    store, recorder = InMemoryStateStore(), _Recorder()
    flow = flow_factory(
        Node(echo, name="echo", policy=NONE).to(), state_store=store, middlewares=[recorder]
    )
    flow.run()
    await flow.emit(_message())
    await fetch(flow)
    await flow.stop()
    assert len(recorder.events) >= 3  # node_start, node_success, node_cancelled
    assert store.save_calls == [StoredEvent.from_flow_event(e) for e in recorder.events]


async def test_traceless_node_cancelled_is_saved_on_stop(flow_factory: Callable[..., Any]) -> None:
    store = InMemoryStateStore()
    flow = flow_factory(Node(echo, name="echo", policy=NONE).to(), state_store=store)
    flow.run()
    await flow.emit(_message())
    await fetch(flow)
    await flow.stop()
    cancelled = [e for e in store.save_calls if e.kind == "node_cancelled"]
    assert [(e.trace_id, e.node_name) for e in cancelled] == [(None, "echo")]


async def test_failure_events_carry_the_flow_error_payload(
    flow_factory: Callable[..., Any],
) -> None:
    store = InMemoryStateStore()
    flow = flow_factory(
        Node(boom, name="boom", policy=NONE).to(),
        state_store=store,
        emit_errors_to_rookery=True,
    )
    flow.run()
    message = _message()
    await flow.emit(message)
    await fetch(flow)
    (history,) = [await flow.load_history(message.trace_id)]
    failed = [e for e in history if e.kind == "node_failed"]
    assert failed[0].payload["flow_error"]["code"] == "NODE_EXCEPTION"
    assert [e.kind for e in history][:2] == ["node_start", "node_error"]


async def test_save_runs_after_the_log_record_and_before_middlewares(
    flow_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    order: list[tuple[str, str]] = []

    class OrderStore(InMemoryStateStore):
        async def save_event(self, event: StoredEvent) -> None:
            logged = [r.getMessage() for r in caplog.records]
            order.append(("log-before-save", str(logged[-1:] == [event.kind])))
            order.append(("save", event.kind))
            await super().save_event(event)

    async def middleware(event: FlowEvent) -> None:
        order.append(("middleware", event.event_type))

    caplog.set_level(logging.DEBUG, logger="penguiflow.core")
    flow = flow_factory(
        Node(echo, name="echo", policy=NONE).to(),
        state_store=OrderStore(),
        middlewares=[middleware],
    )
    flow.run()
    await flow.emit(_message())
    await fetch(flow)
    assert order[:6] == [
        ("log-before-save", "True"),
        ("save", "node_start"),
        ("middleware", "node_start"),
        ("log-before-save", "True"),
        ("save", "node_success"),
        ("middleware", "node_success"),
    ]


async def test_a_slow_store_holds_the_flow_back(flow_factory: Callable[..., Any]) -> None:
    gate, saving = asyncio.Event(), asyncio.Event()
    calls: list[str] = []

    class SlowStore(InMemoryStateStore):
        async def save_event(self, event: StoredEvent) -> None:
            if event.kind == "node_start":
                saving.set()
                await gate.wait()
            await super().save_event(event)

    async def work(message: Message, _ctx: Any) -> Message:
        calls.append("called")
        return message

    flow = flow_factory(Node(work, name="work", policy=NONE).to(), state_store=SlowStore())
    flow.run()
    await flow.emit(_message())
    async with asyncio.timeout(5):
        await saving.wait()
    await asyncio.sleep(0)  # the node gets turns but must not run before the save returns
    await asyncio.sleep(0)
    assert calls == []
    gate.set()
    await fetch(flow)
    assert calls == ["called"]


async def test_failing_store_is_logged_and_the_flow_goes_on(
    flow_factory: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    store, recorder = InMemoryStateStore(), _Recorder()
    store.fail_with = OSError("disk full")
    flow = flow_factory(
        Node(echo, name="echo", policy=NONE).to(), state_store=store, middlewares=[recorder]
    )
    flow.run()
    message = _message()
    await flow.emit(message)
    assert (await fetch(flow)).payload == "hi"
    failures = [r for r in caplog.records if r.getMessage() == "state_store_save_failed"]
    assert failures, "each failed save is logged"
    record = failures[0]
    assert record.name == "penguiflow.core"
    assert record.levelno == logging.ERROR
    assert record.event == "state_store_save_failed"  # type: ignore[attr-defined]
    assert record.trace_id == message.trace_id  # type: ignore[attr-defined]
    assert record.kind == "node_start"  # type: ignore[attr-defined]
    assert record.exception == "OSError('disk full')"  # type: ignore[attr-defined]
    assert [e.event_type for e in recorder.events][:2] == ["node_start", "node_success"]


async def test_load_history_delegates_to_the_store(flow_factory: Callable[..., Any]) -> None:
    store = InMemoryStateStore()
    flow = flow_factory(Node(echo, name="echo", policy=NONE).to(), state_store=store)
    flow.run()
    message = _message()
    await flow.emit(message)
    await fetch(flow)
    history = await flow.load_history(message.trace_id)
    assert [e.kind for e in history] == ["node_start", "node_success"]
    assert history == await store.load_history(message.trace_id)


async def test_load_history_without_store_is_a_runtime_error() -> None:
    flow = create(Node(echo, name="echo", policy=NONE).to())
    with pytest.raises(RuntimeError, match="PenguiFlow was created without a state_store"):
        await flow.load_history("t")


async def test_save_remote_binding_without_store_is_a_no_op() -> None:
    flow = create(Node(echo, name="echo", policy=NONE).to())
    assert await flow.save_remote_binding(RemoteBinding("t", "c", "k", "u")) is None


async def test_save_remote_binding_reaches_the_store() -> None:
    store = InMemoryStateStore()
    flow = create(Node(echo, name="echo", policy=NONE).to(), state_store=store)
    await flow.save_remote_binding(RemoteBinding("t", "c", "k", "u"))
    assert store.bindings == (RemoteBinding("t", "c", "k", "u"),)


async def test_failing_binding_save_is_logged_and_swallowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = InMemoryStateStore()
    store.fail_with = OSError("disk full")
    flow = create(Node(echo, name="echo", policy=NONE).to(), state_store=store)
    await flow.save_remote_binding(RemoteBinding("t", "c", "k", "u"))
    (record,) = [r for r in caplog.records if r.getMessage() == "state_store_binding_failed"]
    assert record.levelno == logging.ERROR
    attrs = {k: getattr(record, k) for k in ("trace_id", "context_id", "task_id", "agent_url")}
    assert attrs == {"trace_id": "t", "context_id": "c", "task_id": "k", "agent_url": "u"}
    assert record.exception == "OSError('disk full')"  # type: ignore[attr-defined]


async def test_cancellation_lifecycle_is_stored(flow_factory: Callable[..., Any]) -> None:
    started = asyncio.Event()

    async def stuck(message: Message, _ctx: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    store = InMemoryStateStore()
    flow = flow_factory(Node(stuck, name="stuck", policy=NONE).to(), state_store=store)
    flow.run()
    message = _message()
    await flow.emit(message)
    async with asyncio.timeout(5):
        await started.wait()
        assert await flow.cancel(message.trace_id)
        await store.wait_for_event("trace_cancel_finish", trace_id=message.trace_id)
    assert store.kinds(message.trace_id) == [
        "node_start",
        "trace_cancel_start",
        "node_trace_cancelled",
        "trace_cancel_finish",
    ]


# --- the SQLite store behind real flows -----------------------------------------------


async def test_several_flows_share_one_sqlite_store(
    flow_factory: Callable[..., Any], tmp_path: Path
) -> None:
    store = SQLiteStateStore(tmp_path / "shared.db")
    flows = [
        flow_factory(Node(echo, name=f"echo{i}", policy=NONE).to(), state_store=store)
        for i in range(3)
    ]
    try:
        messages = [_message(i) for i in range(9)]
        for flow in flows:
            flow.run()
        await asyncio.gather(*(flows[i % 3].emit(m) for i, m in enumerate(messages)))
        for flow in flows:
            for _ in range(3):
                await fetch(flow)
        for i, message in enumerate(messages):
            history = await store.load_history(message.trace_id)
            assert [(e.kind, e.node_name) for e in history] == [
                ("node_start", f"echo{i % 3}"),
                ("node_success", f"echo{i % 3}"),
            ]
    finally:
        for flow in flows:  # stop first: stopping emits node_cancelled into the store
            await flow.stop()
        await store.close()


async def test_sqlite_history_outlives_the_flow_and_the_store(
    flow_factory: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteStateStore(path)
    flow = flow_factory(Node(echo, name="echo", policy=NONE).to(), state_store=store)
    flow.run()
    message = _message()
    await flow.emit(message)
    await fetch(flow)
    async with asyncio.timeout(5):
        await flow.wait_idle()  # node_success is saved after the result reached Rookery
    await flow.stop()
    await store.close()
    async with SQLiteStateStore(path, create=False) as reopened:
        history = await reopened.load_history(message.trace_id)
    assert [e.kind for e in history] == ["node_start", "node_success"]
    assert history[0].payload["trace_id"] == message.trace_id
    assert history[0].payload["event"] == "node_start"
