"""Supervisor child management: start, terminate, restart, delete, which/count."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from supervision_helpers import until, worker

from penguiflow.actors import ActorRef
from penguiflow.errors import (
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    SimpleOneForOneError,
    SupervisionError,
)
from penguiflow.supervision import ChildCounts, ChildInfo, ChildSpec, RestartBackoff, Supervisor
from penguiflow.testkit import FakeClock

Events = list[tuple[str, str]]
Make = Callable[..., Supervisor]


async def test_start_child_returns_a_working_ref(make_supervisor: Make, events: Events) -> None:
    sup = make_supervisor()
    ref = await sup.start_child(ChildSpec("a", worker("a", events)))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        assert await ref.ask("hi") == "hi"


async def test_start_child_awaits_an_async_start(make_supervisor: Make, events: Events) -> None:
    async def start() -> object:
        return worker("a", events)()

    sup = make_supervisor()
    ref = await sup.start_child(ChildSpec("a", start))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        assert await ref.ask("hi") == "hi"


async def test_start_child_with_running_id_raises_already_started(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    with pytest.raises(AlreadyStarted):
        await sup.start_child(ChildSpec("a", worker("a", events)))


async def test_start_child_with_stopped_id_raises_already_present(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    await sup.terminate_child("a")
    with pytest.raises(AlreadyPresent):
        sup.start_child_nowait(ChildSpec("a", worker("a", events)))


async def test_start_child_needs_one_spec(make_supervisor: Make) -> None:
    with pytest.raises(TypeError):
        make_supervisor().start_child_nowait("not a spec")


async def test_start_returning_garbage_raises_type_error(make_supervisor: Make) -> None:
    with pytest.raises(TypeError):
        make_supervisor().start_child_nowait(ChildSpec("x", lambda: 42))


async def test_terminate_child_keeps_the_spec_and_stops_the_actor(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    ref = sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.ask("ready")
        await sup.terminate_child("a")
    assert not ref.alive
    assert events == [("a", "start"), ("a", "stop")]
    assert sup.which_children() == [ChildInfo("a", None, "stopped", 0, "worker")]


async def test_terminate_child_by_ref(make_supervisor: Make, events: Events) -> None:
    sup = make_supervisor()
    ref = sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    async with asyncio.timeout(5):
        await sup.terminate_child(ref)
    assert sup.which_children()[0].state == "stopped"


async def test_terminate_temporary_child_deletes_its_spec(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    sup.start_child_nowait(ChildSpec("t", worker("t", events), restart="temporary"))
    async with asyncio.timeout(5):
        await sup.terminate_child("t")
    assert sup.which_children() == []


async def test_terminate_unknown_child_raises_child_not_found(make_supervisor: Make) -> None:
    with pytest.raises(ChildNotFound):
        await make_supervisor().terminate_child("nobody")


async def test_restart_child_starts_a_stopped_child_afresh(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    old = sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    async with asyncio.timeout(5):
        await sup.terminate_child("a")
        new = await sup.restart_child("a")
        assert isinstance(new, ActorRef)
        assert await new.ask("hi") == "hi"
    assert new is not old
    assert sup.which_children()[0].state == "running"


async def test_restart_child_on_running_child_raises(make_supervisor: Make, events: Events) -> None:
    sup = make_supervisor()
    sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    with pytest.raises(ChildRunning):
        await sup.restart_child("a")


async def test_delete_child_on_running_child_raises(make_supervisor: Make, events: Events) -> None:
    sup = make_supervisor()
    sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    with pytest.raises(ChildRunning):
        await sup.delete_child("a")


async def test_delete_child_forgets_a_stopped_spec(make_supervisor: Make, events: Events) -> None:
    sup = make_supervisor()
    sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    await sup.terminate_child("a")
    await sup.delete_child("a")
    assert sup.which_children() == []
    with pytest.raises(ChildNotFound):
        await sup.delete_child("a")


async def test_restart_or_delete_while_backing_off_raises_child_restarting(
    make_supervisor: Make, events: Events, clock: FakeClock
) -> None:
    sup = make_supervisor()
    ref = sup.start_child_nowait(
        ChildSpec("a", worker("a", events), backoff=RestartBackoff(min_s=5.0, jitter=0.0))
    )
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.ask("ready")
        ref.try_tell("crash")
        await clock.wait_for_timers(1)
    with pytest.raises(ChildRestarting):
        await sup.restart_child("a")
    with pytest.raises(ChildRestarting):
        await sup.delete_child("a")


async def test_terminate_while_backing_off_cancels_the_restart(
    make_supervisor: Make, events: Events, clock: FakeClock
) -> None:
    sup = make_supervisor()
    ref = sup.start_child_nowait(
        ChildSpec("a", worker("a", events), backoff=RestartBackoff(min_s=5.0, jitter=0.0))
    )
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.ask("ready")
        ref.try_tell("crash")
        await clock.wait_for_timers(1)
        await sup.terminate_child("a")
        clock.advance(10)
        await until(lambda: not sup._timers)  # the backoff timer posted its event
        await sup.start_child(ChildSpec("probe", worker("probe", events)))  # queued after it
    assert sup.which_children()[0].state == "stopped"
    assert ref.incarnation == 1


async def test_count_children(make_supervisor: Make, events: Events) -> None:
    sup = make_supervisor()
    sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    sup.start_child_nowait(ChildSpec("b", worker("b", events)))
    sup.start_child_nowait(ChildSpec("s", lambda: Supervisor(name="inner")))
    await sup.terminate_child("b")
    assert sup.count_children() == ChildCounts(specs=3, active=2, supervisors=1, workers=2)


async def test_which_children_lists_in_start_order(make_supervisor: Make, events: Events) -> None:
    sup = make_supervisor()
    for name in ("z", "a", "m"):
        sup.start_child_nowait(ChildSpec(name, worker(name, events)))
    assert [i.id for i in sup.which_children()] == ["z", "a", "m"]


async def test_simple_one_for_one_starts_instances_with_arguments(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor(
        "simple_one_for_one",
        children=[ChildSpec("pool", lambda name: worker(name, events)())],
    )
    first = await sup.start_child("w1")
    second = sup.start_child_nowait("w2")
    assert isinstance(first, ActorRef)
    assert isinstance(second, ActorRef)
    async with asyncio.timeout(5):
        await first.ask("x")
        await second.ask("x")
    assert sorted(events) == [("w1", "start"), ("w2", "start")]
    assert [i.id for i in sup.which_children()] == ["pool-1", "pool-2"]


async def test_simple_one_for_one_terminate_by_ref_forgets_the_child(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor("simple_one_for_one", children=[ChildSpec("p", worker("p", events))])
    ref = sup.start_child_nowait()
    async with asyncio.timeout(5):
        await sup.terminate_child(ref)
    assert sup.which_children() == []


async def test_simple_one_for_one_rejects_specs_restart_and_delete(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor("simple_one_for_one", children=[ChildSpec("p", worker("p", events))])
    with pytest.raises(SimpleOneForOneError):
        sup.start_child_nowait(ChildSpec("x", worker("x", events)))
    with pytest.raises(SimpleOneForOneError):
        await sup.restart_child("p-1")
    with pytest.raises(SimpleOneForOneError):
        await sup.delete_child("p-1")


def test_simple_one_for_one_needs_exactly_one_template() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Supervisor("simple_one_for_one")


def test_unknown_strategy_is_rejected() -> None:
    with pytest.raises(ValueError):
        Supervisor("one_for_none")  # type: ignore[arg-type]


def test_child_spec_validates_restart_and_shutdown() -> None:
    with pytest.raises(ValueError):
        ChildSpec("x", object, restart="sometimes")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ChildSpec("x", object, shutdown=-1)


async def test_initial_children_start_in_order(make_supervisor: Make, events: Events) -> None:
    sup = make_supervisor(
        children=[ChildSpec(n, worker(n, events)) for n in ("a", "b", "c")],
    )
    async with asyncio.timeout(5):
        refs = [i.ref for i in (await _started(sup))]
        for ref in refs:
            assert isinstance(ref, ActorRef)
            await ref.ask("x")
    assert events == [("a", "start"), ("b", "start"), ("c", "start")]


async def _started(sup: Supervisor) -> list[ChildInfo]:
    await sup.start_child(ChildSpec("probe", lambda: Supervisor(name="probe")))
    return [i for i in sup.which_children() if i.id != "probe"]


async def test_failing_initial_child_fails_the_supervisor(make_supervisor: Make) -> None:
    def broken() -> object:
        raise RuntimeError("cannot start")

    sup = make_supervisor(children=[ChildSpec("bad", broken)])
    with pytest.raises(RuntimeError, match="cannot start"):
        sup.start_child_nowait(ChildSpec("x", broken))
    with pytest.raises(SupervisionError):
        sup.start_child_nowait(ChildSpec("y", broken))


async def test_stopped_supervisor_refuses_new_children(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    await sup.stop()
    with pytest.raises(SupervisionError):
        sup.start_child_nowait(ChildSpec("b", worker("b", events)))
    assert not sup.running


async def test_stop_of_a_never_started_supervisor_is_a_no_op() -> None:
    sup = Supervisor()
    await sup.stop()
    await sup.wait()
    assert not sup.running


async def test_restart_child_keeps_its_place_in_the_start_order(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    for name in ("a", "b", "c"):
        sup.start_child_nowait(ChildSpec(name, worker(name, events)))
    await sup.terminate_child("a")
    await sup.restart_child("a")
    assert [i.id for i in sup.which_children()] == ["a", "b", "c"]


async def test_terminate_child_by_supervisor_object(make_supervisor: Make) -> None:
    sup = make_supervisor()
    inner = sup.start_child_nowait(ChildSpec("inner", lambda: Supervisor(name="inner")))
    async with asyncio.timeout(5):
        await sup.terminate_child(inner)
    assert sup.which_children()[0].state == "stopped"
    assert isinstance(inner, Supervisor)
    assert not inner.running


async def test_restart_child_awaits_an_async_start(make_supervisor: Make, events: Events) -> None:
    async def start() -> object:
        return worker("a", events)()

    sup = make_supervisor()
    sup.start_child_nowait(ChildSpec("a", start))
    async with asyncio.timeout(5):
        await sup.terminate_child("a")
        ref = await sup.restart_child("a")
        assert isinstance(ref, ActorRef)
        assert await ref.ask("x") == "x"


async def test_supervisor_cannot_stop_itself_from_its_own_task(make_supervisor: Make) -> None:
    sup = make_supervisor()

    async def start_that_stops_the_supervisor() -> object:
        await sup.stop()
        raise AssertionError("not reached")

    with pytest.raises(SupervisionError, match="own stop"):
        await sup.start_child(ChildSpec("x", start_that_stops_the_supervisor))


async def test_wait_starts_a_new_supervisor_and_returns_when_it_stops(
    make_supervisor: Make,
) -> None:
    sup = make_supervisor()
    waiting = asyncio.create_task(sup.wait())
    async with asyncio.timeout(5):
        await until(lambda: sup.running)
        await sup.stop()
        await waiting


async def test_child_task_cancelled_from_outside_counts_as_a_crash(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    ref = sup.start_child_nowait(ChildSpec("a", worker("a", events)))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await ref.ask("ready")
        assert ref.task is not None
        ref.task.cancel()
        await until(lambda: ref.incarnation == 2)
        assert await ref.ask("again") == "again"
    assert sup.which_children()[0].restarts == 1


async def test_supervisor_child_restarted_with_an_async_factory(make_supervisor: Make) -> None:
    made: list[Supervisor] = []

    async def make_inner() -> Supervisor:
        made.append(Supervisor(intensity=0, name=f"inner{len(made)}"))
        return made[-1]

    parent = make_supervisor(intensity=5)
    first = await parent.start_child(ChildSpec("inner", make_inner))
    assert isinstance(first, Supervisor)
    async with asyncio.timeout(5):
        await first.stop()  # a normal exit of a permanent child: restarted
        await until(lambda: len(made) == 2 and made[1].running)
    assert parent.which_children()[0].ref is made[1]
