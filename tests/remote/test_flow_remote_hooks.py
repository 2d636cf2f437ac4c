"""The public flow hooks remote nodes and adapters use (runtime.md §14)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from penguiflow import Headers, Message, Node, NodePolicy
from penguiflow.testkit._stores import InMemoryStateStore

NONE = NodePolicy(validate="none")


async def echo(message: Message, _ctx: Any) -> Message:
    return message


@pytest.fixture
async def flow(flow_factory: Callable[..., Any]) -> Any:
    flow = flow_factory(Node(echo, name="echo", policy=NONE).to(), state_store=InMemoryStateStore())
    flow.run()
    return flow


async def test_ensure_trace_event_returns_one_flag_per_trace(flow: Any) -> None:
    flag = flow.ensure_trace_event("t1")
    assert isinstance(flag, asyncio.Event)
    assert flow.ensure_trace_event("t1") is flag
    assert flow.ensure_trace_event("t2") is not flag
    assert flow._trace_events["t1"] is flag


async def test_cancel_sets_the_trace_flag(flow_factory: Callable[..., Any]) -> None:
    started = asyncio.Event()

    async def stuck(message: Message, _ctx: Any) -> None:
        started.set()
        await asyncio.Event().wait()

    message = Message(payload="x", headers=Headers(tenant="t"))
    other = flow_factory(Node(stuck, name="stuck", policy=NONE).to())
    other.run()
    await other.emit(message)
    async with asyncio.timeout(5):
        await started.wait()
    flag = other.ensure_trace_event(message.trace_id)
    assert not flag.is_set()
    assert await other.cancel(message.trace_id)
    assert flag.is_set()


async def test_registered_task_is_cancelled_and_awaited_by_stop(flow: Any) -> None:
    cancelled = asyncio.Event()

    async def watcher() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    task = asyncio.create_task(watcher())
    flow.register_external_task("t1", task)
    await asyncio.sleep(0)  # let the watcher start waiting
    await flow.stop()
    assert task.cancelled()
    assert cancelled.is_set()


async def test_task_without_trace_is_not_tracked(flow: Any) -> None:
    gate = asyncio.Event()
    task = asyncio.create_task(gate.wait())
    flow.register_external_task(None, task)
    await flow.stop()
    assert not task.done()
    gate.set()
    async with asyncio.timeout(5):
        await task


async def test_record_remote_event_emits_a_stored_logged_event(
    flow: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="penguiflow.core")
    node = flow.nodes[0]
    extra = {"remote_status": "success", "remote_skill": "s"}
    seen: list[Any] = []

    async def middleware(event: Any) -> None:
        seen.append(event)

    flow.add_middleware(middleware)
    await flow.record_remote_event(
        event="remote_call_success",
        node=node,
        context=flow.context(node),
        trace_id="t1",
        latency_ms=12.5,
        level=logging.WARNING,
        extra=extra,
    )
    extra["remote_status"] = "changed later"
    (event,) = seen
    assert (event.event_type, event.node_name, event.trace_id) == (
        "remote_call_success",
        "echo",
        "t1",
    )
    assert (event.attempt, event.latency_ms) == (0, 12.5)
    assert dict(event.extra) == {"remote_status": "success", "remote_skill": "s"}
    (record,) = [r for r in caplog.records if r.getMessage() == "remote_call_success"]
    assert record.levelno == logging.WARNING
    history = await flow.load_history("t1")
    assert [e.kind for e in history] == ["remote_call_success"]
    assert history[0].payload["remote_status"] == "success"
