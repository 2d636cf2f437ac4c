"""The scheduling and backpressure contract of runtime.md §9a."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from core_support import fetch

from penguiflow.core import PenguiFlow
from penguiflow.node import Node

MakeFlow = Callable[..., PenguiFlow]


async def test_worker_takes_item_within_one_loop_iteration(make_flow: MakeFlow) -> None:
    gate = asyncio.Event()
    order: list[Any] = []

    async def slow(msg: Any, ctx: Any) -> Any:
        order.append(msg)
        await gate.wait()
        return msg

    flow = make_flow(Node(slow).to(), queue_maxsize=1)
    flow.run()
    await flow.emit("a")  # returns at once: the edge had room
    second = asyncio.create_task(flow.emit("b"))
    third = asyncio.create_task(flow.emit("c"))
    await asyncio.sleep(0)  # one turn: the worker took "a", so "b" fit
    assert second.done()
    assert not third.done()
    gate.set()
    async with asyncio.timeout(5):
        await third
    assert [await fetch(flow) for _ in range(3)] == ["a", "b", "c"]
    assert order == ["a", "b", "c"]


async def test_emit_nowait_checks_capacity_before_the_worker_runs(make_flow: MakeFlow) -> None:
    async def echo(msg: Any, ctx: Any) -> Any:
        return msg

    flow = make_flow(Node(echo).to(), queue_maxsize=1)
    flow.run()
    flow.emit_nowait("a")
    with pytest.raises(asyncio.QueueFull):
        flow.emit_nowait("b")


async def test_blocked_emitter_node_takes_no_new_items(make_flow: MakeFlow) -> None:
    taken: list[Any] = []
    second = asyncio.Event()

    async def producer(msg: Any, ctx: Any) -> Any:
        taken.append(msg)
        if len(taken) == 2:
            second.set()
        return msg

    node = Node(producer)
    flow = make_flow(node.to(), queue_maxsize=1)
    flow.run()
    for item in ("a", "b", "c"):
        await flow.emit(item)
    async with asyncio.timeout(5):
        await second.wait()
    for _ in range(3):
        await asyncio.sleep(0)  # give the worker turns it must not use
    # Rookery holds "a"; the node is blocked delivering "b"; "c" waits on its edge.
    snapshot = flow.mailboxes()
    assert snapshot[node.name].items == ("c",)
    assert snapshot[node.name].busy is True
    assert snapshot["Rookery"].items == ("a",)
    assert taken == ["a", "b"]
    assert [await fetch(flow) for _ in range(3)] == ["a", "b", "c"]


async def test_fan_in_edges_have_separate_allowances(make_flow: MakeFlow) -> None:
    async def echo(msg: Any, ctx: Any) -> Any:
        return msg

    a, b, sink = Node(echo, name="a"), Node(echo, name="b"), Node(echo, name="sink")
    flow = make_flow(a.to(sink), b.to(sink), queue_maxsize=1)
    a_ctx, b_ctx = flow.context(a), flow.context(b)
    a_ctx.emit_nowait("from a")
    b_ctx.emit_nowait("from b")  # a shared allowance of 1 would raise QueueFull here
    assert flow.context(sink).queue_depth_in() == 2


async def test_unbounded_queue_when_maxsize_is_zero(make_flow: MakeFlow) -> None:
    async def echo(msg: Any, ctx: Any) -> Any:
        return msg

    flow = make_flow(Node(echo).to(), queue_maxsize=0)
    for i in range(200):
        flow.emit_nowait(i)
    flow.run()
    assert [await fetch(flow) for _ in range(200)] == list(range(200))
