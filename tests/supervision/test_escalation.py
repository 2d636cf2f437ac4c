"""Restart intensity, escalation to the parent, nesting, and failure at the root."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest
from supervision_helpers import until, worker

from penguiflow.actors import ActorRef
from penguiflow.errors import ActorCrashed, Escalated
from penguiflow.supervision import ActorSystem, ChildSpec, Supervisor
from penguiflow.testkit import FakeClock

Events = list[tuple[str, str]]
Make = Callable[..., Supervisor]


async def _crash(ref: ActorRef) -> None:
    with pytest.raises(ActorCrashed):
        await ref.ask("crash")


async def test_k_restarts_within_period_keep_the_supervisor_alive(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor(intensity=3, period=5.0)
    ref = sup.start_child_nowait(ChildSpec("w", worker("w", events)))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        for _ in range(3):
            await _crash(ref)
        assert await ref.ask("alive") == "alive"
    assert sup.running
    assert sup.which_children()[0].restarts == 3


async def test_k_plus_one_restarts_escalate(
    make_supervisor: Make, events: Events, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="penguiflow.supervision")
    sup = make_supervisor(intensity=3, period=5.0)
    ref = sup.start_child_nowait(ChildSpec("w", worker("w", events)))
    other = sup.start_child_nowait(ChildSpec("o", worker("o", events)))
    assert isinstance(ref, ActorRef)
    assert isinstance(other, ActorRef)
    async with asyncio.timeout(5):
        for _ in range(4):
            await _crash(ref)
        with pytest.raises(Escalated) as info:
            await sup.wait()
    assert isinstance(info.value.cause, RuntimeError)
    assert info.value.child_id == "w"
    assert not ref.alive
    assert not other.alive
    assert ("o", "stop") in events  # children were stopped, not abandoned
    escalations = [r for r in caplog.records if r.getMessage() == "supervisor_escalated"]
    assert len(escalations) == 1
    assert escalations[0].intensity == 3  # type: ignore[attr-defined]


async def test_restarts_older_than_period_do_not_count(
    make_supervisor: Make, events: Events, clock: FakeClock
) -> None:
    sup = make_supervisor(intensity=1, period=5.0)
    ref = sup.start_child_nowait(ChildSpec("w", worker("w", events)))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await _crash(ref)
        await ref.ask("restarted")  # handled by incarnation 2: the restart was recorded
        clock.advance(5.0)
        await _crash(ref)
        assert await ref.ask("alive") == "alive"
    assert sup.running


async def test_intensity_zero_escalates_on_first_crash(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor(intensity=0)
    ref = sup.start_child_nowait(ChildSpec("w", worker("w", events)))
    assert isinstance(ref, ActorRef)
    async with asyncio.timeout(5):
        await _crash(ref)
        with pytest.raises(Escalated):
            await sup.wait()


async def test_nested_supervisor_escalation_is_restarted_by_the_parent(
    make_supervisor: Make, events: Events
) -> None:
    inner_instances: list[Supervisor] = []

    def make_inner() -> Supervisor:
        inner = Supervisor(
            intensity=0,
            name=f"inner{len(inner_instances)}",
            children=[ChildSpec("leaf", worker("leaf", events))],
        )
        inner_instances.append(inner)
        return inner

    parent = make_supervisor(intensity=5)
    first = parent.start_child_nowait(ChildSpec("inner", make_inner))
    assert isinstance(first, Supervisor)
    leaf = first.which_children()[0].ref
    assert isinstance(leaf, ActorRef)
    async with asyncio.timeout(5):
        await _crash(leaf)
        with pytest.raises(Escalated):
            await first.wait()
        await until(lambda: len(inner_instances) == 2 and inner_instances[1].running)
    second = parent.which_children()[0]
    assert second.ref is inner_instances[1]
    assert second.restarts == 1
    new_leaf = inner_instances[1].which_children()[0].ref
    assert isinstance(new_leaf, ActorRef)
    async with asyncio.timeout(5):
        assert await new_leaf.ask("hi") == "hi"


async def test_escalation_propagates_through_levels(make_supervisor: Make, events: Events) -> None:
    def make_inner() -> Supervisor:
        return Supervisor(intensity=0, children=[ChildSpec("leaf", worker("leaf", events))])

    top = make_supervisor(intensity=0)
    inner = top.start_child_nowait(ChildSpec("inner", make_inner))
    assert isinstance(inner, Supervisor)
    leaf = inner.which_children()[0].ref
    assert isinstance(leaf, ActorRef)
    async with asyncio.timeout(5):
        await _crash(leaf)
        with pytest.raises(Escalated) as info:
            await top.wait()
    assert isinstance(info.value.cause, Escalated)


async def test_unstartable_supervisor_child_counts_towards_intensity(
    make_supervisor: Make, events: Events
) -> None:
    attempts: list[int] = []

    def make_inner() -> Supervisor:
        attempts.append(1)
        if len(attempts) > 1:
            raise RuntimeError("cannot start again")
        return Supervisor(intensity=0, children=[ChildSpec("leaf", worker("leaf", events))])

    top = make_supervisor(intensity=3)
    inner = top.start_child_nowait(ChildSpec("inner", make_inner))
    assert isinstance(inner, Supervisor)
    leaf = inner.which_children()[0].ref
    assert isinstance(leaf, ActorRef)
    async with asyncio.timeout(5):
        await _crash(leaf)
        with pytest.raises(Escalated):
            await top.wait()
    assert len(attempts) == 4  # first start + 3 failed restarts; the 4th restart tips it


async def test_root_escalation_surfaces_at_the_end_of_async_with(events: Events) -> None:
    async def scenario() -> None:
        async with ActorSystem("root", intensity=0) as system:
            ref = system.spawn(worker("w", events), name="w")
            async with asyncio.timeout(5):
                await _crash(ref)
                with pytest.raises(Escalated):
                    await system.root.wait()

    with pytest.raises(Escalated):
        await scenario()


async def test_supervisor_as_child_is_stopped_with_its_parent(
    make_supervisor: Make, events: Events
) -> None:
    parent = make_supervisor()
    parent.start_child_nowait(ChildSpec("a", worker("a", events)))
    inner = parent.start_child_nowait(
        ChildSpec("inner", lambda: Supervisor(children=[ChildSpec("leaf", worker("leaf", events))]))
    )
    assert isinstance(inner, Supervisor)
    async with asyncio.timeout(5):
        leaf = inner.which_children()[0].ref
        assert isinstance(leaf, ActorRef)
        await leaf.ask("ready")
        await parent.stop()
    assert not inner.running
    stops = [e for e in events if e[1] == "stop"]
    assert stops == [("leaf", "stop"), ("a", "stop")]


async def test_supervisor_cannot_have_two_parents(make_supervisor: Make) -> None:
    from penguiflow.errors import SupervisionError

    shared = Supervisor(name="shared")
    first, second = make_supervisor(), make_supervisor()
    first.start_child_nowait(ChildSpec("s", lambda: shared))
    with pytest.raises(SupervisionError):
        second.start_child_nowait(ChildSpec("s", lambda: shared))


async def test_supervisor_child_inherits_the_parent_clock(
    make_supervisor: Make, clock: Any
) -> None:
    parent = make_supervisor()
    inner = parent.start_child_nowait(ChildSpec("inner", lambda: Supervisor()))
    assert isinstance(inner, Supervisor)
    assert inner.clock is clock
