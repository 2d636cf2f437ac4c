"""Lazy actor children (``ChildSpec(lazy=True)``): no task until the first message."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from supervision_helpers import Worker, until, worker

from penguiflow.actors import Actor, ActorContext, ActorRef, DeadLetter, Mailbox
from penguiflow.supervision import ActorSystem, ChildSpec, Supervisor

Events = list[tuple[str, str]]
Make = Callable[..., Supervisor]


def lazy(name: str, events: Events, **kwargs: Any) -> ChildSpec:
    return ChildSpec(name, worker(name, events), lazy=True, **kwargs)


def spawn(sup: Supervisor, spec: ChildSpec) -> ActorRef:
    ref = sup.start_child_nowait(spec)
    assert isinstance(ref, ActorRef)
    return ref


async def test_a_lazy_child_has_no_task_until_its_first_message(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    ref = spawn(sup, lazy("a", events))
    await asyncio.sleep(0)
    assert ref.dormant
    assert ref.task is None
    assert events == []  # on_start waits for mail
    async with asyncio.timeout(5):
        assert await ref.ask("hi") == "hi"
    assert not ref.dormant
    assert ref.task is not None
    assert events == [("a", "start")]


async def test_a_dormant_child_counts_as_running(make_supervisor: Make, events: Events) -> None:
    sup = make_supervisor()
    spawn(sup, lazy("a", events))
    [info] = sup.which_children()
    assert (info.id, info.state) == ("a", "running")
    assert sup.count_children().active == 1


async def test_the_first_message_is_in_transit_as_for_an_idle_actor(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    dormant = spawn(sup, lazy("a", events))
    eager = spawn(sup, ChildSpec("b", worker("b", events)))
    await until(lambda: eager.mailbox.statistics().waiting_consumers == 1)
    for ref in (dormant, eager):
        assert ref.mailbox.statistics().waiting_consumers == 1
        assert ref.try_tell("one")
        assert ref.try_tell("two")
        # Handed to the (stand-in) waiting consumer: counted, not shown.
        assert len(ref.mailbox) == 2
        assert ref.mailbox.snapshot() == ("two",)


async def test_a_dormant_child_stops_without_a_task_or_hooks(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    ref = spawn(sup, lazy("a", events))
    async with asyncio.timeout(5):
        await sup.terminate_child("a")
    assert not ref.alive
    assert ref.task is None
    assert events == []  # never started, so never stopped
    assert sup.which_children()[0].state == "stopped"


async def test_a_dormant_child_stops_with_its_supervisor(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    ref = spawn(sup, lazy("a", events))
    async with asyncio.timeout(5):
        await sup.stop()
    assert not ref.alive
    assert ref.task is None


async def test_stopping_a_dormant_child_leaves_its_external_mailbox_unwatched(
    make_supervisor: Make, events: Events
) -> None:
    mailbox = Mailbox(8)
    sup = make_supervisor()
    spawn(sup, lazy("a", events, mailbox=mailbox))
    async with asyncio.timeout(5):
        await sup.terminate_child("a")
    assert mailbox.statistics().waiting_consumers == 0
    assert mailbox.put_nowait("later")
    assert mailbox.snapshot() == ("later",)  # queued, not handed to a dead watch


async def test_a_woken_child_stopped_before_it_ran_gives_its_message_back(
    make_supervisor: Make, events: Events
) -> None:
    mailbox = Mailbox(8)
    sup = make_supervisor()
    ref = spawn(sup, lazy("a", events, mailbox=mailbox, shutdown=0))
    assert ref.try_tell("first")
    assert ref.task is not None  # woken: its task exists but has not run
    async with asyncio.timeout(5):
        await sup.terminate_child("a")
    assert events == []
    assert mailbox.snapshot() == ("first",)  # back in front, nothing lost
    assert len(mailbox) == 1


async def test_an_owned_mailbox_dead_letters_a_message_given_back() -> None:
    letters: list[DeadLetter] = []
    events: Events = []
    async with ActorSystem(on_dead_letter=letters.append) as system:
        ref = system.spawn(worker("a", events), name="a", lazy=True, shutdown=0)
        assert ref.try_tell("first")
        async with asyncio.timeout(5):
            await ref.stop()
    assert [(d.actor, d.message, d.reason) for d in letters] == [("a", "first", "stopped")]


async def test_a_message_queued_before_the_spawn_starts_the_child_at_once(
    make_supervisor: Make, events: Events
) -> None:
    mailbox = Mailbox(8)
    mailbox.put_nowait("early")
    sup = make_supervisor()
    ref = spawn(sup, lazy("a", events, mailbox=mailbox))
    assert not ref.dormant
    assert ref.task is not None
    await until(lambda: not len(mailbox))
    assert events == [("a", "start")]


async def test_wake_starts_a_dormant_child_without_mail(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    ref = spawn(sup, lazy("a", events))
    ref.wake()
    assert not ref.dormant
    await until(lambda: events == [("a", "start")])
    ref.wake()  # a no-op once running
    assert ref.incarnation == 1
    assert ref.mailbox.statistics().waiting_consumers == 1  # the receive loop, no watch
    async with asyncio.timeout(5):
        assert await ref.ask("then mail") == "then mail"


async def test_a_lazy_child_that_crashes_is_restarted_at_once(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor()
    ref = spawn(sup, lazy("a", events))
    assert ref.try_tell("crash")
    await until(lambda: ref.incarnation == 2 and ("a", "start") in events[1:])
    assert events == [("a", "start"), ("a", "restart"), ("a", "start")]
    async with asyncio.timeout(5):
        assert await ref.ask("again") == "again"


async def test_a_one_for_all_restart_starts_a_dormant_sibling(
    make_supervisor: Make, events: Events
) -> None:
    sup = make_supervisor("one_for_all")
    crasher = spawn(sup, ChildSpec("a", worker("a", events)))
    sleeper = spawn(sup, lazy("b", events))
    assert crasher.try_tell("crash")
    await until(lambda: crasher.incarnation == 2 and sleeper.incarnation == 1)
    await until(lambda: ("b", "start") in events)
    assert not sleeper.dormant
    async with asyncio.timeout(5):
        assert await sleeper.ask("hi") == "hi"


async def test_simple_one_for_one_children_inherit_lazy(make_supervisor: Make) -> None:
    events: Events = []
    template = ChildSpec("w", lambda name: Worker(name, events), lazy=True)
    sup = make_supervisor("simple_one_for_one", children=[template])
    ref = await sup.start_child("x")
    assert isinstance(ref, ActorRef)
    assert ref.dormant


async def test_a_mailbox_that_does_its_own_taking_starts_the_child_at_once(
    make_supervisor: Make, events: Events
) -> None:
    class Pumping(Mailbox):
        async def next(self) -> Any:
            return await super().next()

    mailbox = Pumping(8)
    sup = make_supervisor()
    ref = spawn(sup, lazy("a", events, mailbox=mailbox))
    assert not ref.dormant
    await until(lambda: events == [("a", "start")])


async def test_closing_the_mailbox_wakes_a_dormant_child(
    make_supervisor: Make, events: Events
) -> None:
    class Starter(Actor):
        async def on_start(self, ctx: ActorContext) -> None:
            events.append(("s", "start"))

    mailbox = Mailbox(8)
    sup = make_supervisor(intensity=0)
    ref = spawn(sup, ChildSpec("s", Starter, lazy=True, mailbox=mailbox))
    mailbox.close()
    assert not ref.dormant  # it meets the closed mailbox as an idle actor would
    await until(lambda: events == [("s", "start")])


async def test_a_woken_child_runs_in_the_spawners_context_not_the_senders(
    make_supervisor: Make,
) -> None:
    import contextvars

    where: contextvars.ContextVar[str] = contextvars.ContextVar("where", default="unset")
    seen: list[str] = []

    class Reader(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            seen.append(where.get())

    sup = make_supervisor()
    where.set("spawner")
    ref = spawn(sup, ChildSpec("r", Reader, lazy=True))

    async def sender() -> None:
        where.set("sender")
        await ref.tell("hi")

    async with asyncio.timeout(5):
        await asyncio.create_task(sender())
        await until(lambda: seen != [])
    assert seen == ["spawner"]
