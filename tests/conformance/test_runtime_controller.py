"""Conformance: runtime.md §7.1, §9 (deadlines, controller loops, budgets, WM de-dup)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from conformance_support import EventLog, emit, fetch, msg

from penguiflow import WM, FinalAnswer, Message, Node, NodePolicy
from penguiflow.core import ROOKERY

NONE = NodePolicy(validate="none")


def controller(fn: Any, name: str = "ctl") -> Node:
    return Node(fn, name=name, policy=NONE, allow_cycle=True)


class Passes:
    """Controller body returning its input; records the hops it saw."""

    def __init__(self, tokens: int = 0, finish_at: int | None = None) -> None:
        self.hops: list[int] = []
        self.tokens = tokens
        self.finish_at = finish_at

    async def __call__(self, item: Message, ctx: Any) -> Message:
        wm: WM = item.payload
        self.hops.append(wm.hops)
        if self.finish_at is not None and wm.hops >= self.finish_at:
            return item.model_copy(update={"payload": FinalAnswer(text="mine")})
        if self.tokens:
            wm = wm.model_copy(update={"tokens_used": wm.tokens_used + self.tokens})
            return item.model_copy(update={"payload": wm})
        return item


def loop_flow(make_flow: Any, body: Passes, **kwargs: Any) -> Any:
    async def ctl(item: Message, ctx: Any) -> Message:
        return await body(item, ctx)

    node = controller(ctl)
    flow = make_flow(node.to(node), **kwargs)
    flow.run()
    return flow


@pytest.mark.parametrize(("budget", "runs"), [(1, 1), (4, 4)])
async def test_hop_budget_worked_numbers(make_flow: Any, budget: int, runs: int) -> None:
    body = Passes()
    flow = loop_flow(make_flow, body)
    m = msg(WM(query="q", budget_hops=budget))
    await emit(flow, m)
    out = await fetch(flow)
    assert out.payload == FinalAnswer(text="Hop budget exhausted")
    assert out.payload.citations == []
    assert body.hops == list(range(runs))
    assert out.trace_id == m.trace_id
    assert out.headers == m.headers


async def test_node_finishes_itself(make_flow: Any) -> None:
    body = Passes(finish_at=2)
    flow = loop_flow(make_flow, body)
    await emit(flow, msg(WM(query="q", budget_hops=4)))
    out = await fetch(flow)
    assert out.payload == FinalAnswer(text="mine")
    assert body.hops == [0, 1, 2]


async def test_token_budget_worked_numbers(make_flow: Any) -> None:
    body = Passes(tokens=5)
    flow = loop_flow(make_flow, body)
    await emit(flow, msg(WM(query="q", budget_hops=None, budget_tokens=12)))
    out = await fetch(flow)
    assert out.payload == FinalAnswer(text="Token budget exhausted")
    assert len(body.hops) == 3


async def test_final_keeps_envelope(make_flow: Any) -> None:
    flow = loop_flow(make_flow, Passes())
    deadline = time.time() + 60
    m = msg(WM(query="q", budget_hops=1), deadline_s=deadline, meta={"k": "v"})
    await emit(flow, m)
    out = await fetch(flow)
    assert (out.trace_id, out.meta, out.deadline_s) == (m.trace_id, {"k": "v"}, deadline)


async def test_node_may_advance_hops_itself(make_flow: Any) -> None:
    seen: list[int] = []

    async def jump(item: Message, ctx: Any) -> Message:
        seen.append(item.payload.hops)
        wm = item.payload.model_copy(update={"hops": item.payload.hops + 2})
        return item.model_copy(update={"payload": wm})

    node = controller(jump)
    flow = make_flow(node.to(node))
    flow.run()
    await emit(flow, msg(WM(query="q", budget_hops=5)))
    out = await fetch(flow)
    assert out.payload.text == "Hop budget exhausted"
    assert seen == [0, 2, 4]


async def test_wm_result_goes_only_to_self_edge(make_flow: Any) -> None:
    other_saw: list[Any] = []

    async def other(item: Any, ctx: Any) -> Any:
        other_saw.append(item)
        return item

    body = Passes()

    async def ctl(item: Message, ctx: Any) -> Message:
        return await body(item, ctx)

    node = controller(ctl)
    flow = make_flow(node.to(node, Node(other, name="other", policy=NONE)))
    flow.run()
    await emit(flow, msg(WM(query="q", budget_hops=3)))
    out = await fetch(flow)
    assert out.payload.text == "Hop budget exhausted"
    assert other_saw == []


async def test_wm_result_without_self_edge_is_node_error(make_flow: Any) -> None:
    log = EventLog()

    async def ctl(item: Message, ctx: Any) -> Message:
        return item

    node = Node(ctl, name="plain", policy=NONE)
    flow = make_flow(node.to(), middlewares=[log])
    flow.run()
    await emit(flow, msg(WM(query="q")))
    (error,) = await log.wait_for("node_error")
    assert error.extra["exception"] == repr(KeyError("Unknown target plain for plain"))
    await log.wait_for("node_failed")


async def test_unbounded_loop_streams_hops_and_dedups_reemit(make_flow: Any) -> None:
    body = Passes(finish_at=4)
    flow = loop_flow(make_flow, body)
    m = msg(WM(query="q", budget_hops=None))
    await emit(flow, m)
    hops = []
    for _ in range(4):
        m = await fetch(flow)
        hops.append(m.payload.hops)
        await emit(flow, m)  # swallowed by WM de-duplication
    final = await fetch(flow)
    assert hops == [1, 2, 3, 4]
    assert final.payload == FinalAnswer(text="mine")
    assert body.hops == [0, 1, 2, 3, 4]
    with pytest.raises(asyncio.QueueEmpty):
        flow._contexts[ROOKERY].fetch_nowait()


async def test_streamed_hops_are_deep_copies(make_flow: Any) -> None:
    body = Passes(finish_at=1)
    flow = loop_flow(make_flow, body)
    m = msg(WM(query="q", budget_hops=None))
    await emit(flow, m)
    hop = await fetch(flow)
    await fetch(flow)
    assert hop is not m
    assert hop.payload is not m.payload
    assert hop.trace_id == m.trace_id


# --- deadlines -----


async def test_expired_deadline_skips_node(make_flow: Any) -> None:
    log = EventLog()
    called: list[Any] = []

    async def work(item: Any, ctx: Any) -> Any:
        called.append(item)
        return item

    flow = make_flow(Node(work, name="w", policy=NONE).to(), middlewares=[log])
    flow.run()
    past = time.time() - 10
    m = msg("payload", deadline_s=past, meta={"k": 1})
    await emit(flow, m)
    out = await fetch(flow)
    assert called == []
    assert out.payload == FinalAnswer(text="Deadline exceeded")
    assert (out.trace_id, out.meta, out.deadline_s, out.headers) == (
        m.trace_id,
        {"k": 1},
        past,
        m.headers,
    )
    (skip,) = log.of("deadline_skip")
    assert dict(skip.extra) == {"deadline_s": past}
    assert skip.attempt == 0
    assert skip.latency_ms is None
    assert "node_start" not in log.kinds()


async def test_expired_deadline_keeps_final_answer_payload(make_flow: Any) -> None:
    async def work(item: Any, ctx: Any) -> Any:
        return item

    flow = make_flow(Node(work, name="w", policy=NONE).to())
    flow.run()
    fa = FinalAnswer(text="already")
    await emit(flow, msg(fa, deadline_s=time.time() - 1))
    out = await fetch(flow)
    assert out.payload == fa


async def test_deadline_from_non_egress_node_reaches_rookery(make_flow: Any) -> None:
    successor_saw: list[Any] = []

    async def first(item: Any, ctx: Any) -> Any:
        return item

    async def second(item: Any, ctx: Any) -> Any:
        successor_saw.append(item)
        return item

    a = Node(first, name="a", policy=NONE)
    flow = make_flow(a.to(Node(second, name="b", policy=NONE)))
    flow.run()
    await emit(flow, msg(deadline_s=time.time() - 1))
    out = await fetch(flow)
    assert out.payload.text == "Deadline exceeded"
    assert successor_saw == []


async def test_future_deadline_runs_node(make_flow: Any) -> None:
    async def work(item: Any, ctx: Any) -> Any:
        return "ran"

    flow = make_flow(Node(work, name="w", policy=NONE).to())
    flow.run()
    await emit(flow, msg(deadline_s=time.time() + 60))
    assert await fetch(flow) == "ran"


async def test_traceless_items_are_never_deadline_checked(make_flow: Any) -> None:
    class Item:
        deadline_s = 0.0

    async def work(item: Any, ctx: Any) -> Any:
        return "ran"

    flow = make_flow(Node(work, name="w", policy=NONE).to())
    flow.run()
    await emit(flow, Item())
    assert await fetch(flow) == "ran"


async def test_controller_deadline_passes_during_loop(make_flow: Any) -> None:
    async def ctl(item: Message, ctx: Any) -> Message:
        # The deadline expires while the node runs: the returned message is checked.
        return item.model_copy(update={"deadline_s": time.time() - 1})

    node = controller(ctl)
    flow = make_flow(node.to(node))
    flow.run()
    await emit(flow, msg(WM(query="q"), deadline_s=time.time() + 60))
    out = await fetch(flow)
    assert out.payload == FinalAnswer(text="Deadline exceeded")
