"""The kernel's ports: the concrete neighbours satisfy the Protocols the kernel types against."""

from __future__ import annotations

import asyncio
from typing import Any

from penguiflow.actors import (
    Actor,
    ActorContext,
    ActorHost,
    CellOwner,
    DeadLetter,
    DeadLetterSink,
    Mailbox,
    MailboxLike,
)
from penguiflow.supervision import ActorSystem, Supervisor


def test_mailbox_is_mailbox_like() -> None:
    box: MailboxLike = Mailbox(4, lanes=2)  # checked by mypy too
    assert isinstance(box, MailboxLike)


def test_a_mailbox_missing_the_kernel_surface_is_not_mailbox_like() -> None:
    class Partial:
        def poll(self) -> Any:
            return Mailbox.NOTHING

    assert not isinstance(Partial(), MailboxLike)


def test_poll_and_next_are_plain_methods_and_last_lane_a_plain_attribute() -> None:
    # The receive loop binds poll/next once and reads last_lane per message: no
    # alias and no property may slip in between (the hot path is benchmarked).
    assert Mailbox.__dict__["poll"].__name__ == "poll"
    assert Mailbox.__dict__["next"].__name__ == "next"
    assert "last_lane" in Mailbox.__slots__


async def test_the_system_and_supervisor_fill_the_kernel_ports() -> None:
    letters: list[DeadLetter] = []
    async with ActorSystem("ports", on_dead_letter=letters.append) as system:
        host: ActorHost = system
        sink: DeadLetterSink = system
        owner: CellOwner = system.root
        assert isinstance(owner, Supervisor)
        sink.dead_letter(DeadLetter("nobody", "m", "stopped"))
        assert host.lookup("nobody") is None
        assert host.name == "ports"
    assert letters == [DeadLetter("nobody", "m", "stopped")]
    assert system.dead_letters == 1


async def test_actor_context_system_is_the_host_the_actor_lives_in() -> None:
    seen: list[ActorHost | None] = []

    class Probe(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            seen.append(ctx.system)
            return ctx.system.lookup("probe") if ctx.system is not None else None

    async with ActorSystem("host") as system:
        ref = system.spawn(Probe, name="probe")
        async with asyncio.timeout(5):
            assert await ref.ask("who") is ref
    assert seen == [system]
