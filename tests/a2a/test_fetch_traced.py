"""PenguiFlow.fetch_traced: the runtime names the trace of every Rookery delivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from penguiflow import Headers, Message, Node, NodePolicy, create, hosting

POLICY = NodePolicy(validate="none")


async def bare(message: Message, ctx: Any) -> dict[str, Any]:
    return {"value": message.payload}


async def emits_bare(message: Message, ctx: Any) -> None:
    ctx.emit_nowait({"nowait": message.payload})
    await ctx.emit({"awaited": message.payload})


@pytest.fixture
async def flow() -> AsyncIterator[Any]:
    running = create(Node(bare, name="bare", policy=POLICY).to())
    running.run()
    yield running
    await running.stop()


def message(payload: Any) -> Message:
    return Message(payload=payload, headers=Headers(tenant="t"))


async def test_bare_results_are_attributed_to_the_producing_trace(flow: Any) -> None:
    first, second = message(1), message(2)
    await flow.emit(first)
    await flow.emit(second)
    async with asyncio.timeout(5):
        deliveries = [await flow.fetch_traced(), await flow.fetch_traced()]
    assert [(d.item, d.trace_id) for d in deliveries] == [
        ({"value": 1}, first.trace_id),
        ({"value": 2}, second.trace_id),
    ]


async def test_messages_keep_their_own_trace() -> None:
    async def forward(msg: Message, ctx: Any) -> Message:
        return msg

    flow = create(Node(forward, name="forward", policy=POLICY).to())
    flow.run()
    try:
        sent = message("x")
        await flow.emit(sent)
        async with asyncio.timeout(5):
            delivery = await flow.fetch_traced()
    finally:
        await flow.stop()
    assert (delivery.item, delivery.trace_id) == (sent, sent.trace_id)


async def test_context_emits_are_attributed_too() -> None:
    flow = create(Node(emits_bare, name="emits", policy=POLICY).to())
    flow.run()
    try:
        sent = message("y")
        await flow.emit(sent)
        async with asyncio.timeout(5):
            deliveries = [await flow.fetch_traced(), await flow.fetch_traced()]
    finally:
        await flow.stop()
    assert {d.trace_id for d in deliveries} == {sent.trace_id}


async def test_plain_fetch_returns_the_bare_payload(flow: Any) -> None:
    await flow.emit(message(3))
    async with asyncio.timeout(5):
        assert await flow.fetch() == {"value": 3}


async def test_items_delivered_from_outside_a_node_have_no_trace(flow: Any) -> None:
    await hosting.deliver_to_rookery(flow, {"status": "ok"})
    async with asyncio.timeout(5):
        delivery = await flow.fetch_traced()
    assert (delivery.item, delivery.trace_id) == ({"status": "ok"}, None)
