"""A run whose supervisor escalates: the owner hears it, no trace or fetch hangs."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from core_support import Recorder, fetch, idle, message

from penguiflow._runtime.run_tree import RESTART_INTENSITY
from penguiflow.core import PenguiFlow
from penguiflow.errors import Escalated, FlowError
from penguiflow.node import Node
from penguiflow.testkit import FakeClock, trace_counts
from penguiflow.types import Headers, Message

MakeFlow = Callable[..., PenguiFlow]

# Each poison item restarts the actor once, then becomes a FlowError (CRASH_LIMIT 2),
# so one more poison item than the intensity allows makes the supervisor escalate.
POISON = RESTART_INTENSITY + 1


async def echo(msg: Any, ctx: Any) -> Any:
    return msg


class AlwaysBadCopy(Message):
    """A message whose copies always fail: a fault outside the node function."""

    def model_copy(self, *args: Any, **kwargs: Any) -> Any:
        raise OSError("copy failed")


def poison(clock: FakeClock) -> AlwaysBadCopy:
    # An expired deadline makes the node actor copy the item: that crashes it.
    return AlwaysBadCopy(payload="p", headers=Headers(tenant="t"), deadline_s=clock.time() - 1)


async def test_queued_traced_items_end_with_escalated_flow_errors(
    make_flow: MakeFlow, clock: FakeClock
) -> None:
    flow = make_flow(Node(echo, name="n").to(), clock=clock, emit_errors_to_rookery=True)
    flow.run()
    poisons = [poison(clock) for _ in range(POISON)]
    for item in poisons:
        await flow.emit(item)
    behind = message("behind")
    await flow.emit(behind)
    results = [await fetch(flow) for _ in range(POISON + 1)]
    assert all(isinstance(r, FlowError) for r in results)
    reasons = [(r.trace_id, r.metadata["reason"]) for r in results]
    assert reasons == [
        *((p.trace_id, "crashed") for p in poisons[:-1]),
        (poisons[-1].trace_id, "escalated"),
        (behind.trace_id, "escalated"),
    ]
    assert isinstance(results[-1].unwrap(), Escalated)


async def test_failure_is_exposed_and_later_fetches_raise_it(
    make_flow: MakeFlow, clock: FakeClock
) -> None:
    flow = make_flow(Node(echo, name="n").to(), clock=clock, emit_errors_to_rookery=True)
    flow.run()
    assert flow.failure is None
    for _ in range(POISON):
        await flow.emit(poison(clock))
    for _ in range(POISON):
        await fetch(flow)
    with pytest.raises(Escalated):
        await fetch(flow)
    assert isinstance(flow.failure, Escalated)
    assert trace_counts(flow) == {}


async def test_fetch_waiting_for_a_result_that_cannot_come_raises(
    make_flow: MakeFlow, clock: FakeClock, recorder: Recorder
) -> None:
    flow = make_flow(Node(echo, name="n").to(), clock=clock)  # errors are events only
    flow.run()
    waiting = asyncio.create_task(flow.fetch())
    for _ in range(POISON):
        await flow.emit(poison(clock))
    async with asyncio.timeout(5):
        with pytest.raises(Escalated):
            await waiting
    failed = recorder.of("node_failed")
    assert [e.extra["flow_error"]["metadata"]["reason"] for e in failed] == [
        *(["crashed"] * (POISON - 1)),
        "escalated",
    ]
    assert trace_counts(flow) == {}


async def test_emit_into_a_failed_run_raises(make_flow: MakeFlow, clock: FakeClock) -> None:
    flow = make_flow(Node(echo, name="n").to(), clock=clock)
    flow.run()
    waiting = asyncio.create_task(flow.fetch())
    for _ in range(POISON):
        await flow.emit(poison(clock))
    async with asyncio.timeout(5):
        with pytest.raises(Escalated):
            await waiting
    with pytest.raises(Escalated):
        await flow.emit(message())
    with pytest.raises(Escalated):
        flow.emit_nowait(message())


async def test_trace_less_items_wait_for_the_next_run(
    make_flow: MakeFlow, clock: FakeClock
) -> None:
    flow = make_flow(Node(echo, name="n").to(), clock=clock)
    flow.run()
    waiting = asyncio.create_task(flow.fetch())
    for _ in range(POISON):
        await flow.emit(poison(clock))
    await flow.emit("plain")  # no trace: nothing waits for it, so it is kept
    async with asyncio.timeout(5):
        with pytest.raises(Escalated):
            await waiting
    assert flow.mailboxes()["n"].items == ("plain",)
    await flow.stop()
    flow.run()
    assert flow.failure is None
    assert await fetch(flow) == "plain"


async def test_stop_while_ending_items_puts_the_rest_back(
    make_flow: MakeFlow, clock: FakeClock, recorder: Recorder
) -> None:
    flow = make_flow(
        Node(echo, name="n").to(), clock=clock, emit_errors_to_rookery=True, queue_maxsize=1
    )
    flow.run()
    poisons = [poison(clock) for _ in range(POISON)]
    for item in poisons[:-1]:
        await flow.emit(item)
        assert (await fetch(flow)).metadata["reason"] == "crashed"
    await flow.emit("r0")
    await idle(flow)  # Rookery (capacity 1) is full now: ending items must wait
    await flow.emit(poisons[-1])
    first = message("first")
    await flow.emit(first)  # admitted when the node takes the poison item
    async with asyncio.timeout(5):
        await recorder.wait_for("node_failed", POISON)  # then it waits on Rookery
    await flow.stop()
    assert flow.mailboxes()["n"].items == (poisons[-1], first)
    assert flow.mailboxes()["Rookery"].items == ("r0",)
