"""A node forwarding its trace's item hands the item's count over (runtime.md §10)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from core_support import fetch, idle, message

from penguiflow.core import PenguiFlow
from penguiflow.node import Node
from penguiflow.testkit import trace_counts
from penguiflow.types import Message

MakeFlow = Callable[..., PenguiFlow]


async def echo(msg: Any, ctx: Any) -> Any:
    return msg


async def rewrap(msg: Any, ctx: Any) -> Any:
    return msg.model_copy(update={"payload": "again"})


@pytest.mark.parametrize(
    "forward", [pytest.param(echo, id="same"), pytest.param(rewrap, id="copy")]
)
async def test_a_forwarded_item_keeps_its_trace_counted_once(
    make_flow: MakeFlow, forward: Callable[..., Any]
) -> None:
    release = asyncio.Event()
    holding = asyncio.Event()

    async def hold(msg: Any, ctx: Any) -> Any:
        holding.set()
        await release.wait()
        return msg

    first, second = Node(forward, name="first"), Node(hold, name="second")
    flow = make_flow(first.to(second), second.to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    async with asyncio.timeout(5):
        await holding.wait()
    assert trace_counts(flow).get(msg.trace_id, 0) == 1  # the item "second" holds, nothing else
    release.set()
    async with asyncio.timeout(5):
        out = await fetch(flow)
        await idle(flow)
    assert isinstance(out, Message)
    assert out.trace_id == msg.trace_id
    assert trace_counts(flow) == {}


async def test_a_result_of_another_trace_is_counted_for_that_trace(make_flow: MakeFlow) -> None:
    async def switch(msg: Any, ctx: Any) -> Any:
        return message("other", trace_id="other")

    node = Node(switch, name="switch")
    flow = make_flow(node.to())
    flow.run()
    await flow.emit(message())
    async with asyncio.timeout(5):
        await idle(flow)
    assert trace_counts(flow) == {"other": 1}  # waiting in Rookery
    async with asyncio.timeout(5):
        assert (await fetch(flow)).trace_id == "other"
    assert trace_counts(flow) == {}


async def test_a_full_edge_falls_back_to_a_counted_send(make_flow: MakeFlow) -> None:
    first = Node(echo, name="first")
    flow = make_flow(first.to(), queue_maxsize=1)
    flow.run()
    msgs = [message(i) for i in range(3)]
    for msg in msgs:
        await flow.emit(msg)
    async with asyncio.timeout(5):
        outs = [await fetch(flow) for _ in msgs]
        await idle(flow)
    assert outs == msgs
    assert trace_counts(flow) == {}
