"""Stopping: reverse start order, shutdown timeout then cancel, then abandon."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from supervision_helpers import Worker, until, worker

from penguiflow.actors import Actor, ActorContext, ActorRef
from penguiflow.supervision import ChildSpec, Supervisor
from penguiflow.testkit import FakeClock

Events = list[tuple[str, str]]
Make = Callable[..., Supervisor]


async def test_stop_stops_children_in_reverse_start_order(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    for name in ("a", "b", "c"):
        sup.start_child_nowait(ChildSpec(name, worker(name, events)))
    async with asyncio.timeout(5):
        for info in sup.which_children():
            assert isinstance(info.ref, ActorRef)
            await info.ref.ask("ready")
        await sup.stop()
    assert [e for e in events if e[1] == "stop"] == [("c", "stop"), ("b", "stop"), ("a", "stop")]
    assert not sup.running


async def test_child_past_its_shutdown_time_is_cancelled(
    make_supervisor: Make, events: Events, clock: FakeClock
) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    sup = make_supervisor()
    ref = sup.start_child_nowait(
        ChildSpec("slow", lambda: Worker("slow", events, gate=gate, entered=entered), shutdown=5.0)
    )
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.tell("block")
        await entered.wait()
        stopping = asyncio.create_task(sup.stop())
        await clock.wait_for_timers(1)
        clock.advance(4.9)
        assert not stopping.done()
        clock.advance(0.1)
        await stopping
    assert ref.task is not None
    assert ref.task.cancelled()
    assert not ref.alive
    assert ("slow", "stop") not in events  # cancelled: on_stop never ran


async def test_shutdown_zero_cancels_at_once(make_supervisor: Make, events: Events) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    sup = make_supervisor()
    ref = sup.start_child_nowait(
        ChildSpec("slow", lambda: Worker("slow", events, gate=gate, entered=entered), shutdown=0)
    )
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.tell("block")
        await entered.wait()
        await sup.stop()
    assert ref.task is not None
    assert ref.task.cancelled()


async def test_shutdown_none_waits_for_the_handler(make_supervisor: Make, events: Events) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    sup = make_supervisor()
    ref = sup.start_child_nowait(
        ChildSpec("slow", lambda: Worker("slow", events, gate=gate, entered=entered), shutdown=None)
    )
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.tell("block")
        await entered.wait()
        stopping = asyncio.create_task(sup.stop())
        await until(lambda: ref.mailbox.statistics().system_depth == 1)
        gate.set()
        await stopping
    assert events[-1] == ("slow", "stop")


async def test_child_ignoring_cancellation_is_abandoned_and_logged(
    make_supervisor: Make, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    class Stubborn(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            entered.set()
            while not release.is_set():
                try:
                    await release.wait()
                except asyncio.CancelledError:
                    continue  # swallows cancellation: cannot be stopped
            return None

    caplog.set_level(logging.ERROR, logger="penguiflow.supervision")
    sup = make_supervisor(kill_grace=2.0)
    ref = sup.start_child_nowait(ChildSpec("stubborn", Stubborn, shutdown=1.0))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.tell("go")
        await entered.wait()
        stopping = asyncio.create_task(sup.stop())
        await clock.wait_for_timers(1)
        clock.advance(1.0)  # shutdown time is up: cancel
        await clock.wait_for_timers(1)
        clock.advance(2.0)  # grace is up: abandon
        await stopping
        assert not ref.alive
        records = [r for r in caplog.records if r.getMessage() == "actor_kill_abandoned"]
        assert len(records) == 1
        assert records[0].child_id == "stubborn"  # type: ignore[attr-defined]
        release.set()
        assert ref.task is not None
        await asyncio.wait({ref.task})


async def test_supervisor_stop_timeout_cancels_everything(
    make_supervisor: Make, events: Events, clock: FakeClock
) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    sup = make_supervisor()
    ref = sup.start_child_nowait(
        ChildSpec("slow", lambda: Worker("slow", events, gate=gate, entered=entered), shutdown=None)
    )
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.tell("block")
        await entered.wait()
        stopping = asyncio.create_task(sup.stop(timeout=3.0))
        await clock.wait_for_timers(1)
        clock.advance(3.0)
        await stopping
        assert ref.task is not None
        await asyncio.wait({ref.task})
    assert ref.task.cancelled()
    assert not ref.alive


async def test_ref_stop_from_inside_the_actor_stops_it_for_good(
    make_supervisor: Make, events: Events
) -> None:
    class SelfStopper(Worker):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            await ctx.self_ref.stop()
            return "bye"

    sup = make_supervisor()
    ref = sup.start_child_nowait(ChildSpec("s", lambda: SelfStopper("s", events)))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        assert await ref.ask("x") == "bye"
        await until(lambda: not ref.alive)
    assert sup.which_children() == []
    assert events == [("s", "start"), ("s", "stop")]


async def test_ref_stop_on_a_stopped_actor_returns(make_supervisor: Make, events: Events) -> None:
    sup = make_supervisor()
    ref = sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.stop()
        await ref.stop()
    assert not ref.alive


async def test_pending_calls_fail_when_the_supervisor_stops(make_supervisor: Make) -> None:
    from penguiflow.errors import SupervisionError

    sup = make_supervisor()
    sup.start_child_nowait(ChildSpec("inner", lambda: Supervisor(name="inner")))
    stop = asyncio.create_task(sup.stop())
    await asyncio.sleep(0)  # the stop request is queued first
    with pytest.raises(SupervisionError):
        await sup.terminate_child("inner")
    await stop


async def test_no_child_can_be_added_while_stopping(make_supervisor: Make, events: Events) -> None:
    from penguiflow.errors import SupervisionError

    gate, entered = asyncio.Event(), asyncio.Event()
    sup = make_supervisor()
    ref = sup.start_child_nowait(
        ChildSpec("slow", lambda: Worker("slow", events, gate=gate, entered=entered), shutdown=None)
    )
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.tell("block")
        await entered.wait()
        stopping = asyncio.create_task(sup.stop())
        await until(lambda: ref.mailbox.statistics().system_depth == 1)
        with pytest.raises(SupervisionError):
            sup.start_child_nowait(ChildSpec("late", worker("late", events)))
        gate.set()
        await stopping


async def test_ref_stop_while_the_supervisor_stops_waits_for_the_actor(
    make_supervisor: Make, events: Events
) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    sup = make_supervisor()
    early = sup.start_child_nowait(ChildSpec("early", worker("early", events)))
    sup.start_child_nowait(
        ChildSpec("slow", lambda: Worker("slow", events, gate=gate, entered=entered), shutdown=None)
    )
    assert isinstance(early, ActorRef)
    slow = sup.which_children()[1].ref
    assert isinstance(slow, ActorRef)
    async with asyncio.timeout(5):
        await slow.tell("block")
        await entered.wait()
        stopping = asyncio.create_task(sup.stop())
        await until(lambda: slow.mailbox.statistics().system_depth == 1)
        early_stop = asyncio.create_task(early.stop())
        await asyncio.sleep(0)
        assert not early_stop.done()  # "early" stops after "slow" (reverse order)
        gate.set()
        await early_stop
        await stopping
    assert not early.alive


class _Holder(Actor):
    """Blocks in its handler and records when the cancel reaches it."""

    def __init__(self, name: str, log: list[str], entered: asyncio.Event) -> None:
        self.name, self.log, self.entered = name, log, entered

    async def receive(self, message: Any, ctx: ActorContext) -> Any:
        self.entered.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.log.append(self.name)


async def test_adjacent_zero_shutdown_children_are_cancelled_in_reverse_start_order(
    make_supervisor: Make, events: Events
) -> None:
    log: list[str] = []
    sup = make_supervisor()
    refs = []
    for name in ("a", "b", "c"):
        entered = asyncio.Event()
        spec = ChildSpec(name, lambda n=name, e=entered: _Holder(n, log, e), shutdown=0)
        ref = sup.start_child_nowait(spec)
        assert isinstance(ref, ActorRef)
        await ref.tell("hold")
        refs.append((ref, entered))
    async with asyncio.timeout(5):
        for _, entered in refs:
            await entered.wait()
        await sup.stop()
    assert log == ["c", "b", "a"]
    assert all(ref.task is not None and ref.task.cancelled() for ref, _ in refs)
    assert [info.state for info in sup.which_children()] == ["stopped"] * 3
    assert not any(ref.alive for ref, _ in refs)


async def test_a_child_with_a_shutdown_time_is_still_stopped_on_its_own_turn(
    make_supervisor: Make, events: Events
) -> None:
    log: list[str] = []
    entered = asyncio.Event()
    sup = make_supervisor()
    sup.start_child_nowait(ChildSpec("a", worker("a", events), shutdown=0))
    sup.start_child_nowait(ChildSpec("b", worker("b", events)))  # asked, 5 s to finish
    held = sup.start_child_nowait(ChildSpec("c", lambda: _Holder("c", log, entered), shutdown=0))
    assert isinstance(held, ActorRef)
    await held.tell("hold")
    async with asyncio.timeout(5):
        await entered.wait()
        await sup.stop()
    # c is cancelled first; b then stops gracefully (on_stop runs); a is cancelled.
    assert log == ["c"]
    assert ("b", "stop") in events
    assert ("a", "stop") not in events
