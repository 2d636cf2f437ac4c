"""Conformance: runtime.md §12 (call_playbook)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conformance_support import EventLog, emit, fetch, msg

from penguiflow import FlowError, Message, ModelRegistry, Node, NodePolicy, call_playbook, create
from penguiflow.core import TraceCancelled

NONE = NodePolicy(validate="none")


class Playbook:
    """A playbook factory that remembers the flows it built."""

    def __init__(self, body: Any, registry: Any = None, **flow_kwargs: Any) -> None:
        self.body = body
        self.registry = registry
        self.flow_kwargs = flow_kwargs
        self.flows: list[Any] = []

    def __call__(self) -> tuple[Any, Any]:
        flow = create(Node(self.body, name="sub", policy=NONE).to(), **self.flow_kwargs)
        self.flows.append(flow)
        return flow, self.registry


async def test_returns_payload_of_first_rookery_message() -> None:
    seen: list[Any] = []

    async def sub(item: Message, ctx: Any) -> Message:
        seen.append(item)
        return item.model_copy(update={"payload": "sub-result"})

    book = Playbook(sub)
    m = msg("in")
    async with asyncio.timeout(5):
        result = await call_playbook(book, m)
    assert result == "sub-result"
    assert seen[0] is m
    (flow,) = book.flows
    assert flow._running is False
    assert list(flow._tasks) == []


async def test_returns_bare_item() -> None:
    async def sub(item: Any, ctx: Any) -> Any:
        return {"bare": True}

    async with asyncio.timeout(5):
        assert await call_playbook(Playbook(sub), msg()) == {"bare": True}


async def test_returns_flow_error_instead_of_raising() -> None:
    async def sub(item: Any, ctx: Any) -> Any:
        raise ValueError("nope")

    async with asyncio.timeout(5):
        result = await call_playbook(Playbook(sub, emit_errors_to_rookery=True), msg())
    assert isinstance(result, FlowError)
    assert result.code == "NODE_EXCEPTION"


async def test_timeout_positional_and_propagates() -> None:
    async def sub(item: Any, ctx: Any) -> Any:
        await asyncio.Event().wait()

    book = Playbook(sub)
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.TimeoutError):
            await call_playbook(book, msg(), 0.01)
    assert book.flows[0]._running is False


async def test_registry_coverage_error_propagates() -> None:
    async def sub(item: Any, ctx: Any) -> Any:
        return item

    def book() -> tuple[Any, Any]:
        return create(Node(sub, name="needs").to()), ModelRegistry()

    with pytest.raises(RuntimeError, match="missing entries"):
        await call_playbook(book, msg())


async def test_pre_cancelled_trace_raises(make_flow: Any) -> None:
    async def parent(item: Any, ctx: Any) -> Any:
        return item

    runtime = make_flow(Node(parent, policy=NONE).to())
    runtime.run()
    seen: list[Any] = []

    async def sub(item: Any, ctx: Any) -> Any:
        seen.append(item)
        return item

    m = msg()
    flag = asyncio.Event()
    flag.set()
    runtime._trace_events[m.trace_id] = flag
    book = Playbook(sub)
    with pytest.raises(TraceCancelled) as info:
        async with asyncio.timeout(5):
            await call_playbook(book, m, runtime=runtime)
    assert info.value.trace_id == m.trace_id
    assert seen == []
    assert book.flows[0]._running is False


async def test_parent_cancel_propagates_into_subflow(make_flow: Any) -> None:
    log = EventLog()
    sub_started, sub_cancelled = asyncio.Event(), asyncio.Event()

    async def sub(item: Any, ctx: Any) -> Any:
        sub_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            sub_cancelled.set()
            raise

    book = Playbook(sub)

    async def parent(item: Message, ctx: Any) -> Any:
        return await ctx.call_playbook(book, item)

    flow = make_flow(Node(parent, name="parent", policy=NONE).to(), middlewares=[log])
    flow.run()
    m = msg()
    await emit(flow, m)
    async with asyncio.timeout(5):
        await sub_started.wait()
    assert await flow.cancel(m.trace_id) is True
    await log.wait_for("trace_cancel_finish")
    async with asyncio.timeout(5):
        await sub_cancelled.wait()
    assert "node_trace_cancelled" in log.kinds(m.trace_id)
    assert book.flows[0]._running is False


async def test_caller_cancellation_stops_subflow() -> None:
    started = asyncio.Event()

    async def sub(item: Any, ctx: Any) -> Any:
        started.set()
        await asyncio.Event().wait()

    book = Playbook(sub)
    task = asyncio.create_task(call_playbook(book, msg()))
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task
    assert book.flows[0]._running is False
    assert list(book.flows[0]._tasks) == []


async def test_context_call_playbook_preserves_envelope(make_flow: Any) -> None:
    async def sub(item: Message, ctx: Any) -> Message:
        item.meta["sub"] = True
        return item.model_copy(update={"payload": f"{item.headers.tenant}:{item.trace_id}"})

    book = Playbook(sub)

    async def parent(item: Message, ctx: Any) -> Message:
        result = await ctx.call_playbook(book, item, timeout=5)
        return item.model_copy(update={"payload": result})

    flow = make_flow(Node(parent, name="parent", policy=NONE).to())
    flow.run()
    m = msg()
    await emit(flow, m)
    out = await fetch(flow)
    assert out.payload == f"acme:{m.trace_id}"
    assert m.meta["sub"] is True
