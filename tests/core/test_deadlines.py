"""Per-message deadlines checked on arrival at a node (runtime.md §7 step 1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core_support import Recorder, fetch, message

from penguiflow.core import PenguiFlow
from penguiflow.node import Node
from penguiflow.testkit import FakeClock
from penguiflow.types import FinalAnswer

MakeFlow = Callable[..., PenguiFlow]


async def test_expired_message_skips_the_node(
    make_flow: MakeFlow, recorder: Recorder, clock: FakeClock
) -> None:
    calls: list[Any] = []

    async def work(msg: Any, ctx: Any) -> Any:
        calls.append(msg)
        return msg

    flow = make_flow(Node(work, name="n").to(), clock=clock)
    flow.run()
    msg = message(deadline_s=clock.time() - 1)
    msg.meta["m"] = 1
    await flow.emit(msg)
    result = await fetch(flow)
    assert calls == []
    assert result is not msg
    assert result.payload == FinalAnswer(text="Deadline exceeded")
    assert (result.trace_id, result.headers, result.meta) == (msg.trace_id, msg.headers, {"m": 1})
    assert result.deadline_s == msg.deadline_s
    (skip,) = recorder.of("deadline_skip")
    assert skip.extra == {"deadline_s": msg.deadline_s}
    assert (skip.attempt, skip.latency_ms) == (0, None)
    assert "node_start" not in recorder.kinds()


async def test_final_answer_payload_is_kept(make_flow: MakeFlow, clock: FakeClock) -> None:
    flow = make_flow(Node(lambda_echo, name="n").to(), clock=clock)
    flow.run()
    msg = message(FinalAnswer(text="mine"), deadline_s=clock.time() - 1)
    await flow.emit(msg)
    assert (await fetch(flow)).payload.text == "mine"


async def test_deadline_final_from_non_egress_node_reaches_rookery(
    make_flow: MakeFlow, clock: FakeClock
) -> None:
    a, b = Node(lambda_echo, name="a"), Node(lambda_echo, name="b")
    flow = make_flow(a.to(b), clock=clock)
    flow.run()
    await flow.emit(message(deadline_s=clock.time() - 1))
    assert (await fetch(flow)).payload.text == "Deadline exceeded"


async def test_future_deadline_runs_the_node(make_flow: MakeFlow, clock: FakeClock) -> None:
    flow = make_flow(Node(lambda_echo, name="n").to(), clock=clock)
    flow.run()
    msg = message(deadline_s=clock.time() + 1)
    await flow.emit(msg)
    assert await fetch(flow) is msg


async def lambda_echo(msg: Any, ctx: Any) -> Any:
    return msg
