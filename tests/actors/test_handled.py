"""``ActorContext.handled``: a message done for good is not put back by a stop or a crash."""

from __future__ import annotations

import asyncio
from typing import Any

from penguiflow.actors import Actor, ActorContext
from penguiflow.supervision import ActorSystem


async def test_a_handled_message_is_not_redelivered_after_a_crash(system: ActorSystem) -> None:
    seen: list[Any] = []

    class Recorder(Actor):
        poison_limit = 3  # without handled(), a crash would redeliver the message

        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            seen.append(message)
            if message == "commit then crash":
                ctx.handled()
                raise RuntimeError("after the effect was recorded")
            return message

    ref = system.spawn(Recorder, name="recorder")
    async with asyncio.timeout(5):
        await ref.tell("commit then crash")
        assert await ref.ask("next") == "next"
    assert seen == ["commit then crash", "next"]
    assert ref.incarnation == 2  # it crashed and restarted, without redoing the message


async def test_without_handled_a_crashed_message_is_redelivered(system: ActorSystem) -> None:
    seen: list[Any] = []

    class Recorder(Actor):
        poison_limit = 3

        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            seen.append(message)
            if message == "crash once" and seen.count(message) == 1:
                raise RuntimeError("first time")
            return message

    ref = system.spawn(Recorder, name="recorder")
    async with asyncio.timeout(5):
        await ref.tell("crash once")
        assert await ref.ask("next") == "next"
    assert seen == ["crash once", "crash once", "next"]


async def test_a_handled_message_is_not_requeued_when_its_handler_is_cancelled(
    system: ActorSystem,
) -> None:
    entered = asyncio.Event()
    seen: list[Any] = []

    class Slow(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            seen.append(message)
            if message == "recorded":
                ctx.handled()
                entered.set()
                await asyncio.Event().wait()  # cancelled below
            return message

    ref = system.spawn(Slow, name="slow")
    async with asyncio.timeout(5):
        await ref.tell("recorded")
        await entered.wait()
        task = ref.task
        assert task is not None
        task.cancel()  # a real cancellation: the kernel puts back what is not handled
        await asyncio.gather(task, return_exceptions=True)
        assert await ref.ask("ping") == "ping"  # the restarted actor, served in order
    assert seen == ["recorded", "ping"]


async def test_without_handled_a_cancelled_handlers_message_is_requeued(
    system: ActorSystem,
) -> None:
    entered = asyncio.Event()
    seen: list[Any] = []

    class Slow(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            seen.append(message)
            if message == "pending" and seen.count(message) == 1:
                entered.set()
                await asyncio.Event().wait()  # cancelled below
            return message

    ref = system.spawn(Slow, name="slow")
    async with asyncio.timeout(5):
        await ref.tell("pending")
        await entered.wait()
        task = ref.task
        assert task is not None
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert await ref.ask("ping") == "ping"
    assert seen == ["pending", "pending", "ping"]
