"""Controller loops with WM budgets (runtime.md §9)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from core_support import Recorder, fetch, idle, message, run_state

from penguiflow.core import (
    BUDGET_EXCEEDED_TEXT,
    DEADLINE_EXCEEDED_TEXT,
    TOKEN_BUDGET_EXCEEDED_TEXT,
    PenguiFlow,
)
from penguiflow.node import Node, NodePolicy
from penguiflow.testkit import FakeClock
from penguiflow.types import WM, FinalAnswer, Message

MakeFlow = Callable[..., PenguiFlow]


def controller(passes: list[int], *, tokens: int = 0, finish_at: int | None = None) -> Node:
    async def ctl(msg: Message, ctx: Any) -> Message:
        wm = msg.payload
        passes.append(wm.hops)
        if finish_at is not None and wm.hops >= finish_at:
            return msg.model_copy(update={"payload": FinalAnswer(text="own")})
        if tokens:
            wm = wm.model_copy(update={"tokens_used": wm.tokens_used + tokens})
            return msg.model_copy(update={"payload": wm})
        return msg

    return Node(ctl, name="ctl", allow_cycle=True, policy=NodePolicy(validate="none"))


def test_constants() -> None:
    assert DEADLINE_EXCEEDED_TEXT == "Deadline exceeded"
    assert BUDGET_EXCEEDED_TEXT == "Hop budget exhausted"
    assert TOKEN_BUDGET_EXCEEDED_TEXT == "Token budget exhausted"


@pytest.mark.parametrize(
    ("budget", "expected_passes"),
    [pytest.param(1, [0], id="budget-1"), pytest.param(4, [0, 1, 2, 3], id="budget-4")],
)
async def test_hop_budget_worked_numbers(
    make_flow: MakeFlow, budget: int, expected_passes: list[int]
) -> None:
    passes: list[int] = []
    ctl = controller(passes)
    flow = make_flow(ctl.to(ctl), allow_cycles=False)
    flow.run()
    msg = message(WM(query="q", budget_hops=budget))
    msg.meta["k"] = "v"
    await flow.emit(msg)
    result = await fetch(flow)
    assert passes == expected_passes
    assert result.payload == FinalAnswer(text="Hop budget exhausted")
    assert result.payload.citations == []
    assert result.trace_id == msg.trace_id
    assert result.headers == msg.headers
    assert result.meta == {"k": "v"}


async def test_node_finishes_itself_on_third_pass(make_flow: MakeFlow) -> None:
    passes: list[int] = []
    ctl = controller(passes, finish_at=2)
    flow = make_flow(ctl.to(ctl))
    flow.run()
    await flow.emit(message(WM(query="q", budget_hops=4)))
    result = await fetch(flow)
    assert passes == [0, 1, 2]
    assert result.payload.text == "own"


async def test_token_budget_worked_numbers(make_flow: MakeFlow) -> None:
    passes: list[int] = []
    ctl = controller(passes, tokens=5)
    flow = make_flow(ctl.to(ctl))
    flow.run()
    await flow.emit(message(WM(query="q", budget_hops=None, budget_tokens=12)))
    result = await fetch(flow)
    assert len(passes) == 3
    assert result.payload.text == "Token budget exhausted"


async def test_deadline_checked_on_returned_message(make_flow: MakeFlow, clock: FakeClock) -> None:
    async def slow_ctl(msg: Message, ctx: Any) -> Message:
        clock.advance(10)  # the node's work takes the deadline away
        return msg

    ctl = Node(slow_ctl, name="ctl", allow_cycle=True, policy=NodePolicy(validate="none"))
    flow = make_flow(ctl.to(ctl), clock=clock)
    flow.run()
    await flow.emit(message(WM(query="q"), deadline_s=clock.time() + 5))
    result = await fetch(flow)
    assert result.payload.text == "Deadline exceeded"


async def test_node_may_advance_hops_itself(make_flow: MakeFlow) -> None:
    passes: list[int] = []

    async def jump(msg: Message, ctx: Any) -> Message:
        passes.append(msg.payload.hops)
        return msg.model_copy(update={"payload": msg.payload.model_copy(update={"hops": 5})})

    ctl = Node(jump, name="ctl", allow_cycle=True, policy=NodePolicy(validate="none"))
    flow = make_flow(ctl.to(ctl))
    flow.run()
    await flow.emit(message(WM(query="q", budget_hops=6)))
    result = await fetch(flow)
    assert passes == [0, 5]
    assert result.payload.text == "Hop budget exhausted"


async def test_loop_self_sends_only_to_itself(make_flow: MakeFlow) -> None:
    passes: list[int] = []
    seen: list[Any] = []

    async def other(msg: Any, ctx: Any) -> None:
        seen.append(msg)

    ctl = controller(passes)
    out = Node(other, name="out")
    flow = make_flow(ctl.to(ctl, out), out.to())
    flow.run()
    await flow.emit(message(WM(query="q", budget_hops=3)))
    result = await fetch(flow)
    assert result.payload.text == "Hop budget exhausted"
    assert passes == [0, 1, 2]
    await idle(flow)
    assert seen == []


async def test_wm_result_without_self_edge_is_a_key_error(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    async def wm_out(msg: Message, ctx: Any) -> Message:
        return msg

    node = Node(wm_out, name="plain", policy=NodePolicy(validate="none"))
    flow = make_flow(node.to())
    flow.run()
    await flow.emit(message(WM(query="q")))
    (error,) = await recorder.wait_for("node_error")
    assert error.extra["exception"] == repr(KeyError("Unknown target plain for plain"))


async def test_unbounded_loop_streams_each_hop_and_dedups_reemits(make_flow: MakeFlow) -> None:
    passes: list[int] = []
    ctl = controller(passes, finish_at=4)
    flow = make_flow(ctl.to(ctl))
    flow.run()
    msg = message(WM(query="q", budget_hops=None))
    await flow.emit(msg)
    hops = []
    current: Message = msg
    while True:
        current = await fetch(flow)
        if isinstance(current.payload, FinalAnswer):
            break
        hops.append(current.payload.hops)
        await flow.emit(current)  # swallowed: the loop already runs this hop
    assert hops == [1, 2, 3, 4]
    assert passes == [0, 1, 2, 3, 4]
    await idle(flow)
    assert run_state(flow).traces.memo == {}


async def test_streamed_hops_are_deep_copies(make_flow: MakeFlow) -> None:
    passes: list[int] = []
    ctl = controller(passes, finish_at=1)
    flow = make_flow(ctl.to(ctl))
    flow.run()
    msg = message(WM(query="q", budget_hops=None))
    await flow.emit(msg)
    first = await fetch(flow)
    assert first.payload.hops == 1
    assert first.meta is not msg.meta
    await fetch(flow)


async def test_controller_self_lane_never_deadlocks(make_flow: MakeFlow) -> None:
    passes: list[int] = []
    ctl = controller(passes)
    flow = make_flow(ctl.to(ctl), queue_maxsize=1)
    flow.run()
    await flow.emit(message(WM(query="q", budget_hops=20)))
    async with asyncio.timeout(5):
        result = await flow.fetch()
    assert result.payload.text == "Hop budget exhausted"
    assert len(passes) == 20
