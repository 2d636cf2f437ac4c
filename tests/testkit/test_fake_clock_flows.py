"""``FakeClock`` drives a flow's timeouts, retry backoff and deadlines (no real waiting)."""

from __future__ import annotations

import asyncio
from typing import Any

from penguiflow import FinalAnswer, Headers, Message, Node, NodePolicy
from penguiflow.testkit import EventRecorder, FakeClock


def make_message(payload: Any = 1, **kwargs: Any) -> Message:
    return Message(payload=payload, headers=Headers(tenant="t"), **kwargs)


async def test_retry_backoff_waits_for_the_fake_clock(
    flow_factory: Any, fake_clock: FakeClock, event_recorder: EventRecorder
) -> None:
    attempts: list[float] = []

    async def flaky(message: Any, _ctx: Any) -> Any:
        attempts.append(fake_clock.monotonic())
        if len(attempts) == 1:
            raise ConnectionError("down")
        return message

    policy = NodePolicy(validate="none", max_retries=1, backoff_base=30.0)
    node = Node(flaky, name="flaky", policy=policy)
    flow = flow_factory(node.to(), clock=fake_clock, middlewares=[event_recorder])
    flow.run()
    async with asyncio.timeout(5):
        await flow.emit(make_message())
        await fake_clock.wait_for_timers(1)
        assert event_recorder.of_type("node_success") == []
        fake_clock.advance(30.0)
        await event_recorder.wait_for("node_success")
    assert attempts == [0.0, 30.0]


async def test_policy_timeout_fires_when_the_fake_clock_passes_it(
    flow_factory: Any, fake_clock: FakeClock, event_recorder: EventRecorder
) -> None:
    async def hang(message: Any, _ctx: Any) -> Any:
        await asyncio.Event().wait()

    node = Node(hang, name="hang", policy=NodePolicy(validate="none", timeout_s=30.0))
    flow = flow_factory(
        node.to(), clock=fake_clock, middlewares=[event_recorder], emit_errors_to_rookery=True
    )
    flow.run()
    async with asyncio.timeout(5):
        await flow.emit(make_message())
        await fake_clock.wait_for_timers(1)
        fake_clock.advance(30.0)
        error = await flow.fetch()
    assert error.code == "NODE_TIMEOUT"
    assert [e.event_type for e in event_recorder.events][-2:] == ["node_timeout", "node_failed"]


async def test_deadline_expires_while_the_message_waits(
    flow_factory: Any, fake_clock: FakeClock
) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()

    async def slow(message: Any, _ctx: Any) -> Any:
        entered.set()
        await gate.wait()
        return message

    node = Node(slow, name="slow", policy=NodePolicy(validate="none"))
    flow = flow_factory(node.to(), clock=fake_clock)
    flow.run()
    late = make_message("late", deadline_s=fake_clock.time() + 10)
    async with asyncio.timeout(5):
        await flow.emit(make_message("first"))
        await entered.wait()
        await flow.emit(late)
        fake_clock.advance(11)
        gate.set()
        first, second = await flow.fetch(), await flow.fetch()
    assert first.payload == "first"
    assert second.trace_id == late.trace_id
    assert second.payload == FinalAnswer(text="Deadline exceeded")
