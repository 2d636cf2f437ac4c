"""The fault-injection harness itself: ``FaultPlan``, ``kill_actor``, ``SlowConsumer``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import penguiflow.testkit as testkit
from penguiflow import FlowError, Headers, Message, Node, NodePolicy, create
from penguiflow.testkit import (
    FakeClock,
    FaultKind,
    FaultPlan,
    FaultStatistics,
    InjectedFault,
    SlowConsumer,
    kill_actor,
)


async def echo(msg: Any, ctx: Any) -> Any:
    return msg


def message(trace_id: str = "t1", payload: Any = 1) -> Message:
    return Message(payload=payload, headers=Headers(tenant="f"), trace_id=trace_id)


def always(kind: FaultKind, clock: FakeClock | None = None, **kwargs: Any) -> FaultPlan:
    """A plan whose every decision is ``kind``."""
    rate = {
        FaultKind.RAISE: "raise_rate",
        FaultKind.TIMEOUT: "timeout_rate",
        FaultKind.HANG: "hang_rate",
        FaultKind.CRASH: "crash_rate",
    }[kind]
    return FaultPlan(1, clock=clock, **{rate: 1.0}, **kwargs)


def test_fault_names_are_exported_outside_all() -> None:
    for name in ("FaultPlan", "FaultKind", "FaultStatistics", "InjectedFault", "SlowConsumer"):
        assert getattr(testkit, name) is not None
        assert name not in testkit.__all__
    assert testkit.kill_actor is kill_actor


@pytest.mark.parametrize(
    "rates",
    [
        pytest.param({"raise_rate": -0.1}, id="negative"),
        pytest.param({"raise_rate": 0.6, "hang_rate": 0.5}, id="over-one"),
    ],
)
def test_rates_must_be_a_probability_split(rates: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="fault rates"):
        FaultPlan(**rates)


def test_decisions_depend_only_on_seed_node_key_and_call() -> None:
    first, second = FaultPlan(5, raise_rate=0.3), FaultPlan(5, raise_rate=0.3)
    draws = [(n, k, c) for n in "ab" for k in ("x", "y") for c in range(1, 20)]
    assert [first.decide(*d) for d in draws] == [second.decide(*d) for d in reversed(draws)][::-1]
    other = FaultPlan(6, raise_rate=0.3)
    assert [first.decide(*d) for d in draws] != [other.decide(*d) for d in draws]


def test_rates_pick_each_kind_in_proportion() -> None:
    plan = FaultPlan(3, raise_rate=0.25, timeout_rate=0.25, hang_rate=0.25, crash_rate=0.2)
    kinds = [plan.decide("n", str(i), 1) for i in range(4000)]
    for kind, rate in [(FaultKind.RAISE, 0.25), (FaultKind.CRASH, 0.2), (FaultKind.NONE, 0.05)]:
        assert abs(kinds.count(kind) / 4000 - rate) < 0.03


def test_statistics_add_up_every_fault() -> None:
    stats = FaultStatistics(calls=10, raised=1, timeouts=2, hangs=3, crashes=4, kills=5)
    assert stats.injected == 15


async def test_a_raise_fault_raises_injected_fault_naming_the_call() -> None:
    func = always(FaultKind.RAISE).wrap(echo, node="n")
    with pytest.raises(InjectedFault, match="injected fault in n for t1 \\(call 1\\)") as info:
        await func(message(), None)
    assert (info.value.node, info.value.key, info.value.call) == ("n", "t1", 1)


async def test_a_trace_less_message_is_keyed_by_its_repr() -> None:
    func = always(FaultKind.RAISE).wrap(echo, node="n")
    with pytest.raises(InjectedFault, match="for 'bare'"):
        await func("bare", None)


async def test_max_faults_makes_faults_transient() -> None:
    plan = always(FaultKind.RAISE)
    func = plan.wrap(echo, node="n", max_faults=2)
    for _ in range(2):
        with pytest.raises(InjectedFault):
            await func(message(), None)
    msg = message()
    assert await func(msg, None) is msg
    assert plan.tracked_keys == 0
    assert plan.statistics().raised == 2


async def test_a_kind_outside_faults_runs_the_function() -> None:
    plan = always(FaultKind.RAISE)
    func = plan.wrap(echo, node="n", faults={FaultKind.HANG})
    msg = message()
    assert await func(msg, None) is msg


async def test_the_counter_of_a_key_is_dropped_after_its_last_attempt() -> None:
    plan = always(FaultKind.RAISE)
    func = plan.wrap(echo, node="n", attempts=2)
    for _ in range(2):
        with pytest.raises(InjectedFault):
            await func(message(), None)
    assert plan.tracked_keys == 0


def test_forget_drops_every_counter() -> None:
    plan = FaultPlan()
    plan._calls[("n", "k")] = [1, 0]
    plan.forget()
    assert plan.tracked_keys == 0


async def test_a_timeout_fault_is_cut_by_the_policy_timeout(fake_clock: FakeClock) -> None:
    plan = always(FaultKind.TIMEOUT, fake_clock)
    node = plan.node(echo, name="slow", policy=NodePolicy(validate="none", timeout_s=1.0))
    flow = create(node.to(), emit_errors_to_rookery=True, clock=fake_clock)
    flow.run()
    try:
        async with asyncio.timeout(5):
            await flow.emit(message())
            await fake_clock.wait_for_timers(2)  # the policy timeout and the fault's sleep
            fake_clock.advance(1.0)
            error = await flow.fetch()
    finally:
        await flow.stop()
    assert isinstance(error, FlowError)
    assert error.code == "NODE_TIMEOUT"
    assert plan.statistics().timeouts == 1


async def test_a_timeout_fault_without_a_policy_timeout_times_out_itself() -> None:
    clock = FakeClock()
    func = always(FaultKind.TIMEOUT, clock, timeout_sleep_s=3.0).wrap(echo, node="n")
    call = asyncio.create_task(func(message(), None))
    async with asyncio.timeout(5):
        await clock.wait_for_timers(1)
        clock.advance(3.0)
        with pytest.raises(TimeoutError, match="injected timeout in n"):
            await call


async def test_a_hang_fault_waits_until_cancelled() -> None:
    plan = always(FaultKind.HANG)
    call = asyncio.create_task(plan.wrap(echo, node="n")(message(), None))
    await asyncio.sleep(0)  # let the call reach its hang (scheduling contract)
    assert not call.done()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert plan.statistics().hangs == 1


async def test_a_crash_kills_the_actor_and_the_message_is_redelivered(
    fake_clock: FakeClock,
) -> None:
    plan = FaultPlan(2, crash_rate=1.0, clock=fake_clock)
    policy = NodePolicy(validate="none", max_retries=1)
    node = plan.node(echo, name="victim", policy=policy, transient=True)  # 1 fault at most
    flow = create(node.to(), clock=fake_clock)
    flow.run()
    try:
        async with asyncio.timeout(5):
            msg = message()
            await flow.emit(msg)
            # The first call crashes; the redelivered message then succeeds.
            assert await flow.fetch() is msg
        (child,) = flow.supervisor.which_children()
    finally:
        await flow.stop()
    assert child.restarts == 1
    assert plan.statistics().crashes == 1


async def test_crashes_closer_than_the_interval_are_skipped(fake_clock: FakeClock) -> None:
    plan = FaultPlan(2, crash_rate=1.0, clock=fake_clock, crash_interval_s=10.0)
    plan._last_kill = fake_clock.monotonic()
    func = plan.wrap(echo, node="n")
    msg = message()
    assert await func(msg, None) is msg
    assert plan.statistics().crashes == 0


async def test_kill_actor_restarts_an_idle_actor(fake_clock: FakeClock) -> None:
    flow = create(Node(echo, name="n").to(), clock=fake_clock)
    plan = FaultPlan(clock=fake_clock)
    flow.run()
    try:
        await asyncio.sleep(0)  # the actor starts (scheduling contract)
        assert plan.kill(flow, "n", only_idle=True)
        assert not plan.kill(flow, "n")  # paced: the interval has not passed
        async with asyncio.timeout(5):
            await flow.emit(message())
            assert (await flow.fetch()).trace_id == "t1"
        (child,) = flow.supervisor.which_children()
    finally:
        await flow.stop()
    assert child.restarts == 1
    assert plan.statistics().kills == 1


async def test_kill_actor_refuses_a_busy_actor_when_asked_for_idle_only() -> None:
    consumer = SlowConsumer()
    node = Node(consumer.func, name="busy")
    flow = create(node.to())
    flow.run()
    try:
        async with asyncio.timeout(5):
            await flow.emit(message())
            await consumer.wait_parked()
            assert not kill_actor(flow, node, only_idle=True)
            assert not FaultPlan().kill(flow, node, only_idle=True)
            consumer.open()
            await flow.fetch()
    finally:
        await flow.stop()


async def test_kill_actor_without_a_running_flow_or_node_is_a_no_op() -> None:
    flow = create(Node(echo, name="n").to())
    assert not kill_actor(flow, "n")
    flow.run()
    try:
        assert not kill_actor(flow, "ghost")
    finally:
        await flow.stop()
    assert not kill_actor(flow, "n")


async def test_slow_consumer_lets_one_item_through_per_permit() -> None:
    seen: list[int] = []

    async def record(msg: Message, ctx: Any) -> Message:
        seen.append(msg.payload)
        return msg

    consumer = SlowConsumer(record)
    flow = create(Node(consumer.func, name="slow").to(), queue_maxsize=2)
    flow.run()
    try:
        async with asyncio.timeout(5):
            for n in range(3):
                await flow.emit(message(f"t{n}", n))
            await consumer.wait_parked()
            snapshot = flow.mailboxes()["slow"]
            assert snapshot.depth == 2  # the mailbox in front of it stays full
            assert snapshot.busy
            consumer.release(2)
            assert [(await flow.fetch()).payload for _ in range(2)] == [0, 1]
            await consumer.wait_parked()
            consumer.open()
            assert (await flow.fetch()).payload == 2
    finally:
        await flow.stop()
    assert seen == [0, 1, 2]
    assert consumer.handled == 3
    assert consumer.waiting == 0
