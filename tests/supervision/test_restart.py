"""Restart strategies in a running supervisor, and no message lost across restarts."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from supervision_helpers import Worker, until, worker

from penguiflow.actors import ActorRef
from penguiflow.errors import ActorCrashed
from penguiflow.supervision import ChildSpec, Supervisor
from penguiflow.testkit import FakeClock

Events = list[tuple[str, str]]


def _refs(sup: Supervisor) -> dict[Any, ActorRef]:
    refs = {}
    for info in sup.which_children():
        assert isinstance(info.ref, ActorRef)
        refs[info.id] = info.ref
    return refs


async def _crash(ref: ActorRef) -> None:
    with contextlib.suppress(ActorCrashed):
        await ref.ask("crash")


async def _start_three(make: Callable[..., Supervisor], strategy: str, events: Events) -> Any:
    sup = make(strategy, intensity=10)
    for name in ("a", "b", "c"):
        sup.start_child_nowait(ChildSpec(name, worker(name, events)))
    refs = _refs(sup)
    async with asyncio.timeout(5):
        for ref in refs.values():
            await ref.ask("ready")
    events.clear()
    return sup, refs


async def test_one_for_one_restarts_only_the_crashed_child(
    make_supervisor: Callable[..., Supervisor], events: Events
) -> None:
    sup, refs = await _start_three(make_supervisor, "one_for_one", events)
    async with asyncio.timeout(5):
        await _crash(refs["b"])
        await refs["b"].ask("ready")
    assert events == [("b", "restart"), ("b", "start")]
    assert [r.incarnation for r in refs.values()] == [1, 2, 1]
    assert [i.restarts for i in sup.which_children()] == [0, 1, 0]


async def test_one_for_all_restarts_everyone_in_start_order(
    make_supervisor: Callable[..., Supervisor], events: Events
) -> None:
    _, refs = await _start_three(make_supervisor, "one_for_all", events)
    async with asyncio.timeout(5):
        await _crash(refs["b"])
        for ref in refs.values():
            await ref.ask("ready")
    assert events == [
        ("c", "stop"),
        ("a", "stop"),
        ("a", "restart"),
        ("a", "start"),
        ("b", "restart"),
        ("b", "start"),
        ("c", "restart"),
        ("c", "start"),
    ]
    assert [r.incarnation for r in refs.values()] == [2, 2, 2]


async def test_rest_for_one_restarts_the_crashed_and_later_children(
    make_supervisor: Callable[..., Supervisor], events: Events
) -> None:
    _, refs = await _start_three(make_supervisor, "rest_for_one", events)
    async with asyncio.timeout(5):
        await _crash(refs["b"])
        for ref in refs.values():
            await ref.ask("ready")
    assert events == [
        ("c", "stop"),
        ("b", "restart"),
        ("b", "start"),
        ("c", "restart"),
        ("c", "start"),
    ]
    assert [r.incarnation for r in refs.values()] == [1, 2, 2]


async def test_temporary_sibling_is_not_restarted_by_one_for_all(
    make_supervisor: Callable[..., Supervisor], events: Events
) -> None:
    sup = make_supervisor("one_for_all", intensity=10)
    a = sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    tmp = sup.start_child_nowait(ChildSpec("tmp", worker("tmp", events), restart="temporary"))
    assert isinstance(a, ActorRef)
    assert isinstance(tmp, ActorRef)
    async with asyncio.timeout(5):
        await tmp.ask("ready")
        await _crash(a)
        await a.ask("ready")
    assert not tmp.alive
    assert [i.id for i in sup.which_children()] == ["a"]


async def test_transient_child_is_not_restarted_after_normal_exit(
    make_supervisor: Callable[..., Supervisor], events: Events
) -> None:
    sup = make_supervisor()
    ref = sup.start_child_nowait(ChildSpec("t", worker("t", events), restart="transient"))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.tell("exit")
        await until(lambda: not ref.alive)
    assert events == [("t", "start"), ("t", "stop")]
    assert sup.which_children()[0].state == "stopped"


async def test_transient_child_is_restarted_after_a_crash(
    make_supervisor: Callable[..., Supervisor], events: Events
) -> None:
    sup = make_supervisor()
    ref = sup.start_child_nowait(ChildSpec("t", worker("t", events), restart="transient"))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await _crash(ref)
        await ref.ask("ready")
    assert ref.incarnation == 2


async def test_permanent_child_is_restarted_after_normal_exit(
    make_supervisor: Callable[..., Supervisor], events: Events
) -> None:
    sup = make_supervisor()
    ref = sup.start_child_nowait(ChildSpec("p", worker("p", events)))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.tell("exit")
        await until(lambda: ref.incarnation == 2)
        await ref.ask("ready")
    assert events == [("p", "start"), ("p", "stop"), ("p", "restart"), ("p", "start")]


async def test_temporary_child_is_removed_after_a_crash(
    make_supervisor: Callable[..., Supervisor], events: Events
) -> None:
    sup = make_supervisor()
    ref = sup.start_child_nowait(ChildSpec("tmp", worker("tmp", events), restart="temporary"))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await _crash(ref)
        await until(lambda: not ref.alive)
    assert sup.which_children() == []


async def test_sibling_restart_keeps_the_siblings_queued_messages(
    make_supervisor: Callable[..., Supervisor], events: Events
) -> None:
    """The mailbox belongs to the address: a one_for_all restart loses nothing queued."""
    seen: list[tuple[int, Any]] = []
    gate, entered = asyncio.Event(), asyncio.Event()

    class Slow(Worker):
        async def receive(self, message: Any, ctx: Any) -> Any:
            seen.append((ctx.incarnation, message))
            return await super().receive(message, ctx)

    sup = make_supervisor("one_for_all", intensity=10)
    a = sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    b = sup.start_child_nowait(
        ChildSpec("b", lambda: Slow("b", events, gate=gate, entered=entered))
    )
    assert isinstance(a, ActorRef)
    assert isinstance(b, ActorRef)
    async with asyncio.timeout(5):
        await b.tell("block")
        await entered.wait()
        for i in range(3):
            await b.tell(i)
        crash = asyncio.create_task(_crash(a))
        await until(lambda: b.mailbox.statistics().system_depth == 1)  # b asked to stop
        gate.set()
        await crash
        assert await b.ask("sync") == "sync"
    assert seen == [(1, "block"), (2, 0), (2, 1), (2, 2), (2, "sync")]


async def test_backoff_delays_the_restart_until_the_clock_moves(
    make_supervisor: Callable[..., Supervisor], events: Events, clock: FakeClock
) -> None:
    from penguiflow.supervision import RestartBackoff

    sup = make_supervisor()
    spec = ChildSpec(
        "w", worker("w", events), backoff=RestartBackoff(min_s=2.0, max_s=8.0, jitter=0.0)
    )
    ref = sup.start_child_nowait(spec)
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.ask("ready")
        await _crash(ref)
        await clock.wait_for_timers(1)
        assert sup.which_children()[0].state == "restarting"
        await ref.tell("queued while backing off")  # still accepted: the mailbox survives
        clock.advance(1.9)
        assert ref.incarnation == 1
        clock.advance(0.1)
        assert await ref.ask("after") == "after"
    assert ref.incarnation == 2
    assert ref.mailbox.depth() == 0


async def test_backoff_grows_with_consecutive_crashes_and_resets_after_quiet_time(
    make_supervisor: Callable[..., Supervisor], events: Events, clock: FakeClock
) -> None:
    from penguiflow.supervision import RestartBackoff

    sup = make_supervisor(intensity=10, period=1000.0)
    backoff = RestartBackoff(min_s=1.0, max_s=8.0, jitter=0.0, reset_after_s=50.0)
    ref = sup.start_child_nowait(ChildSpec("w", worker("w", events), backoff=backoff))
    assert isinstance(ref, ActorRef)
    steps = []
    async with asyncio.timeout(5):
        for _ in range(3):
            await _crash(ref)
            await clock.wait_for_timers(1)
            steps.append(clock.advance_to_next())
            await ref.ask("ready")
        clock.advance(50.0)  # a quiet incarnation resets the streak
        await _crash(ref)
        await clock.wait_for_timers(1)
        steps.append(clock.advance_to_next())
        await ref.ask("ready")
    assert steps == [1.0, 2.0, 4.0, 1.0]
