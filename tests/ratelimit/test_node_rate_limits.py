"""``NodePolicy(rate_limit=...)`` in a running flow, driven by the fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from penguiflow import FlowError, Headers, Message, Node, NodePolicy, RateLimit
from penguiflow.core import PenguiFlow
from penguiflow.ratelimit import InMemoryRateLimiter
from penguiflow.testkit import EventRecorder, FakeClock, kill_actor
from penguiflow.types import FinalAnswer

SAFETY_S = 5.0
MakeFlow = Callable[..., PenguiFlow]


def message(payload: Any = "x", **kwargs: Any) -> Message:
    return Message(payload=payload, headers=Headers(tenant="t"), **kwargs)


class Calls:
    """A node function recording the fake time of each call."""

    def __init__(self, clock: FakeClock, *, fail: int = 0) -> None:
        self.clock = clock
        self.times: list[float] = []
        self.fail = fail  # calls that raise before the rest succeed
        self.changed = asyncio.Event()

    async def __call__(self, msg: Any, ctx: Any) -> Any:
        self.times.append(self.clock.monotonic())
        self.changed.set()
        if len(self.times) <= self.fail:
            raise RuntimeError("flaky")
        return msg

    async def wait_count(self, count: int) -> None:
        async with asyncio.timeout(SAFETY_S):
            while len(self.times) < count:
                self.changed.clear()
                await self.changed.wait()


def limited(calls: Calls, name: str, limit: RateLimit, **policy: Any) -> Node:
    async def work(msg: Any, ctx: Any) -> Any:
        return await calls(msg, ctx)

    return Node(work, name=name, policy=NodePolicy(rate_limit=limit, **policy))


async def fetch(flow: PenguiFlow) -> Any:
    async with asyncio.timeout(SAFETY_S):
        return await flow.fetch()


async def advance_when_waiting(clock: FakeClock, seconds: float, timers: int = 1) -> None:
    async with asyncio.timeout(SAFETY_S):
        await clock.wait_for_timers(timers)
    clock.advance(seconds)


async def test_a_burst_passes_at_once_then_one_token_per_period(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    node = limited(calls, "n", RateLimit(rate=1.0, per_s=2.0, burst=3))
    flow = flow_factory(node.to(), clock=fake_clock)
    flow.run()
    for i in range(5):
        await flow.emit(message(i))
    for _ in range(3):
        await fetch(flow)
    assert calls.times == [0.0, 0.0, 0.0]
    await advance_when_waiting(fake_clock, 2.0)
    await fetch(flow)
    await advance_when_waiting(fake_clock, 2.0)
    assert (await fetch(flow)).payload == 4
    assert calls.times == [0.0, 0.0, 0.0, 2.0, 4.0]


async def test_an_idle_bucket_refills_only_up_to_its_burst(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    limiter = InMemoryRateLimiter(clock=fake_clock)
    limit = RateLimit(rate=1.0, per_s=1.0, burst=2, key="k")
    flow = flow_factory(limited(calls, "n", limit).to(), clock=fake_clock, rate_limiter=limiter)
    flow.run()
    await flow.emit(message(0))
    await fetch(flow)
    fake_clock.advance(100.0)
    assert limiter.tokens("k", limit) == 2.0
    for i in range(3):
        await flow.emit(message(i))
    await fetch(flow)
    await fetch(flow)
    await advance_when_waiting(fake_clock, 1.0)
    await fetch(flow)
    assert calls.times == [0.0, 100.0, 100.0, 101.0]


async def test_nodes_naming_one_key_share_its_bucket(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    shared = RateLimit(rate=1.0, per_s=1.0, burst=2, key="provider")
    first = limited(calls, "first", shared)
    second = limited(calls, "second", shared)
    flow = flow_factory(first.to(second), second.to(), clock=fake_clock)
    flow.run()
    await flow.emit(message("a"))
    await calls.wait_count(2)  # first then second: the two tokens of the burst
    await flow.emit(message("b"))
    await advance_when_waiting(fake_clock, 1.0)
    await calls.wait_count(3)
    await advance_when_waiting(fake_clock, 1.0)
    await fetch(flow)
    await fetch(flow)
    assert calls.times == [0.0, 0.0, 1.0, 2.0]


async def test_nodes_without_a_key_have_buckets_of_their_own(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    own = RateLimit(rate=1.0, per_s=1.0, burst=1)
    first = limited(calls, "first", own)
    second = limited(calls, "second", own)
    flow = flow_factory(first.to(second), second.to(), clock=fake_clock)
    flow.run()
    await flow.emit(message())
    await fetch(flow)
    assert calls.times == [0.0, 0.0]


async def test_flows_given_one_limiter_share_a_key(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    limiter = InMemoryRateLimiter(clock=fake_clock)
    limit = RateLimit(rate=1.0, per_s=1.0, burst=1, key="provider")
    one = flow_factory(limited(calls, "a", limit).to(), clock=fake_clock, rate_limiter=limiter)
    two = flow_factory(limited(calls, "b", limit).to(), clock=fake_clock, rate_limiter=limiter)
    one.run()
    two.run()
    await one.emit(message())
    await fetch(one)
    await two.emit(message())
    await advance_when_waiting(fake_clock, 1.0)
    await fetch(two)
    assert calls.times == [0.0, 1.0]


async def test_waiting_items_are_kept_and_the_mailbox_pushes_back(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    node = limited(calls, "n", RateLimit(rate=1.0, per_s=1.0, burst=1))
    flow = flow_factory(node.to(), clock=fake_clock, queue_maxsize=1)
    flow.run()
    await flow.emit(message(0))
    await fetch(flow)
    await flow.emit(message(1))  # taken by the node, waiting for its token
    await advance_when_waiting(fake_clock, 0.0)  # the node holds it, waiting
    await flow.emit(message(2))  # fills the one-slot edge
    third = asyncio.ensure_future(flow.emit(message(3)))
    await asyncio.sleep(0)
    assert not third.done()  # backpressure: the producer waits, nothing is dropped
    got = []
    for _ in range(3):
        await advance_when_waiting(fake_clock, 1.0)
        got.append((await fetch(flow)).payload)
    async with asyncio.timeout(SAFETY_S):
        await third
    assert got == [1, 2, 3]
    assert calls.times == [0.0, 1.0, 2.0, 3.0]


async def test_no_timer_is_armed_while_tokens_are_left(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    node = limited(calls, "n", RateLimit(rate=1.0, per_s=1.0, burst=5))
    flow = flow_factory(node.to(), clock=fake_clock)
    flow.run()
    for i in range(5):
        await flow.emit(message(i))
        await fetch(flow)
    assert fake_clock.pending_timers == 0


async def test_cancelling_a_waiting_trace_ends_it_and_gives_the_token_back(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    recorder = EventRecorder()
    limiter = InMemoryRateLimiter(clock=fake_clock)
    limit = RateLimit(rate=1.0, per_s=10.0, burst=1, key="k")
    flow = flow_factory(
        limited(calls, "n", limit).to(),
        clock=fake_clock,
        rate_limiter=limiter,
        middlewares=[recorder],
    )
    flow.run()
    await flow.emit(message(0))
    await fetch(flow)
    doomed = message(1)
    await flow.emit(doomed)
    async with asyncio.timeout(SAFETY_S):
        await fake_clock.wait_for_timers(1)
    assert limiter.tokens("k", limit) == -1.0
    assert await flow.cancel(doomed.trace_id)
    async with asyncio.timeout(SAFETY_S):
        await recorder.wait_for("node_trace_cancelled", trace_id=doomed.trace_id)
    assert limiter.tokens("k", limit) == 0.0  # the reserved token came back
    assert calls.times == [0.0]
    await flow.emit(message(2))  # the next item has the bucket's first token
    await advance_when_waiting(fake_clock, 10.0)
    assert (await fetch(flow)).payload == 2
    assert calls.times == [0.0, 10.0]


async def test_an_item_whose_turn_comes_after_its_deadline_is_skipped_at_once(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    recorder = EventRecorder()
    limiter = InMemoryRateLimiter(clock=fake_clock)
    limit = RateLimit(rate=1.0, per_s=10.0, burst=1, key="k")
    flow = flow_factory(
        limited(calls, "n", limit).to(),
        clock=fake_clock,
        rate_limiter=limiter,
        middlewares=[recorder],
    )
    flow.run()
    await flow.emit(message(0))
    await fetch(flow)
    late = message(1, deadline_s=fake_clock.time() + 5.0)  # its token comes in 10 s
    await flow.emit(late)
    result = await fetch(flow)
    assert result.payload == FinalAnswer(text="Deadline exceeded")
    assert result.trace_id == late.trace_id
    (skip,) = recorder.of_type("deadline_skip")
    assert skip.extra == {"deadline_s": late.deadline_s}
    assert calls.times == [0.0]
    assert limiter.tokens("k", limit) == 0.0
    assert fake_clock.pending_timers == 0


async def test_an_item_whose_turn_comes_before_its_deadline_waits(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    node = limited(calls, "n", RateLimit(rate=1.0, per_s=1.0, burst=1))
    flow = flow_factory(node.to(), clock=fake_clock)
    flow.run()
    await flow.emit(message(0))
    await fetch(flow)
    await flow.emit(message(1, deadline_s=fake_clock.time() + 5.0))
    await advance_when_waiting(fake_clock, 1.0)
    assert (await fetch(flow)).payload == 1


async def test_a_final_answer_past_its_deadline_is_passed_on_unchanged(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    node = limited(calls, "n", RateLimit(rate=1.0, per_s=10.0, burst=1))
    flow = flow_factory(node.to(), clock=fake_clock)
    flow.run()
    await flow.emit(message(0))
    await fetch(flow)
    await flow.emit(message(FinalAnswer(text="mine"), deadline_s=fake_clock.time() + 1.0))
    assert (await fetch(flow)).payload == FinalAnswer(text="mine")


async def test_every_retry_takes_a_token(flow_factory: MakeFlow, fake_clock: FakeClock) -> None:
    calls = Calls(fake_clock, fail=2)
    node = limited(
        calls, "n", RateLimit(rate=1.0, per_s=1.0, burst=1), max_retries=2, backoff_base=0.0
    )
    flow = flow_factory(node.to(), clock=fake_clock)
    flow.run()
    await flow.emit(message())
    await advance_when_waiting(fake_clock, 1.0)
    await advance_when_waiting(fake_clock, 1.0)
    await fetch(flow)
    assert calls.times == [0.0, 1.0, 2.0]


async def test_the_wait_does_not_count_against_the_attempt_timeout(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    node = limited(calls, "n", RateLimit(rate=1.0, per_s=10.0, burst=1), timeout_s=1.0)
    flow = flow_factory(node.to(), clock=fake_clock)
    flow.run()
    await flow.emit(message(0))
    await fetch(flow)
    await flow.emit(message(1))
    await advance_when_waiting(fake_clock, 10.0)
    assert (await fetch(flow)).payload == 1


async def test_stop_interrupts_a_wait_and_gives_the_token_back(fake_clock: FakeClock) -> None:
    calls = Calls(fake_clock)
    limiter = InMemoryRateLimiter(clock=fake_clock)
    limit = RateLimit(rate=1.0, per_s=60.0, burst=1, key="k")
    flow = PenguiFlow(limited(calls, "n", limit).to(), clock=fake_clock, rate_limiter=limiter)
    flow.run()
    await flow.emit(message(0))
    await fetch(flow)
    await flow.emit(message(1))
    async with asyncio.timeout(SAFETY_S):
        await fake_clock.wait_for_timers(1)
        await flow.stop()
    assert limiter.tokens("k", limit) == 0.0
    assert calls.times == [0.0]


def test_nodes_naming_one_key_with_different_limits_are_refused() -> None:
    async def work(msg: Any, ctx: Any) -> Any:
        return msg

    a = Node(work, name="a", policy=NodePolicy(rate_limit=RateLimit(rate=1.0, key="k")))
    b = Node(work, name="b", policy=NodePolicy(rate_limit=RateLimit(rate=2.0, key="k")))
    with pytest.raises(ValueError, match="'a' and 'b' name rate-limit key 'k'"):
        PenguiFlow(a.to(b), b.to())


def test_a_rate_limiter_that_is_not_one_is_refused() -> None:
    async def work(msg: Any, ctx: Any) -> Any:
        return msg

    with pytest.raises(TypeError, match="rate_limiter must be a RateLimiter"):
        PenguiFlow(Node(work, name="a").to(), rate_limiter=object())  # type: ignore[arg-type]


async def test_a_bare_payload_waits_for_its_token_too(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    node = limited(calls, "n", RateLimit(rate=1.0, per_s=1.0, burst=1))
    flow = flow_factory(node.to(), clock=fake_clock)
    flow.run()
    await flow.emit({"n": 0})
    await flow.emit({"n": 1})
    assert await fetch(flow) == {"n": 0}
    await advance_when_waiting(fake_clock, 1.0)
    assert await fetch(flow) == {"n": 1}
    assert calls.times == [0.0, 1.0]


async def test_a_nodes_own_bucket_survives_a_restart_of_its_actor(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    node = limited(calls, "n", RateLimit(rate=1.0, per_s=1.0, burst=1))
    flow = flow_factory(node.to(), clock=fake_clock)
    flow.run()
    await flow.emit(message(0))
    await fetch(flow)
    assert kill_actor(flow, node, only_idle=True)
    await flow.emit(message(1))  # the new incarnation finds the bucket empty
    await advance_when_waiting(fake_clock, 1.0)
    assert (await fetch(flow)).payload == 1
    assert calls.times == [0.0, 1.0]


async def test_a_crash_while_waiting_gives_the_token_back_and_redelivers(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    limiter = InMemoryRateLimiter(clock=fake_clock)
    limit = RateLimit(rate=1.0, per_s=1.0, burst=1, key="k")
    node = limited(calls, "n", limit)
    flow = flow_factory(node.to(), clock=fake_clock, rate_limiter=limiter)
    flow.run()
    await flow.emit(message(0))
    await fetch(flow)
    await flow.emit(message(1))
    async with asyncio.timeout(SAFETY_S):
        await fake_clock.wait_for_timers(1)
    assert kill_actor(flow, node)
    await advance_when_waiting(fake_clock, 1.0)  # the redelivered item waits again
    assert (await fetch(flow)).payload == 1
    assert calls.times == [0.0, 1.0]
    assert limiter.statistics().refunds == 1


class BrokenLimiter:
    """A shared limiter whose server is gone."""

    async def reserve(self, key: str, limit: RateLimit, cost: float = 1.0) -> float:
        raise ConnectionError("limiter unreachable")

    async def refund(self, key: str, limit: RateLimit, cost: float = 1.0) -> None:
        return None


async def test_a_failing_limiter_fails_the_item_instead_of_hanging(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    recorder = EventRecorder()
    node = limited(calls, "n", RateLimit(key="k"))
    flow = flow_factory(
        node.to(),
        clock=fake_clock,
        rate_limiter=BrokenLimiter(),
        middlewares=[recorder],
        emit_errors_to_rookery=True,
    )
    flow.run()
    await flow.emit(message())
    error = await fetch(flow)
    assert isinstance(error, FlowError)
    assert error.metadata["reason"] == "crashed"
    assert "limiter unreachable" in repr(error.original_exc)
    assert len(recorder.of_type("node_failed")) == 1
    assert calls.times == []


async def test_a_playbook_draws_keyed_buckets_from_its_callers_limiter(
    flow_factory: MakeFlow, fake_clock: FakeClock
) -> None:
    calls = Calls(fake_clock)
    limit = RateLimit(rate=1.0, per_s=1.0, burst=1, key="provider")

    def playbook() -> tuple[PenguiFlow, None]:
        return PenguiFlow(limited(calls, "inner", limit).to(), clock=fake_clock), None

    async def outer(msg: Message, ctx: Any) -> Any:
        await calls(msg, ctx)
        return await ctx.call_playbook(playbook, msg)

    node = Node(outer, name="outer", policy=NodePolicy(validate="none", rate_limit=limit))
    flow = flow_factory(node.to(), clock=fake_clock)
    flow.run()
    await flow.emit(message())
    await advance_when_waiting(fake_clock, 1.0)  # the playbook's node waits for the token
    await fetch(flow)
    assert calls.times == [0.0, 1.0]
