"""ActorContext.detach: a handler finishes in its own task while the loop goes on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from penguiflow.actors import Actor, ActorContext, DeadLetter
from penguiflow.errors import ActorCrashed, ActorStopped
from penguiflow.supervision import ActorSystem


class Parker(Actor):
    """On ("park", gate): detaches, waits for the gate, then answers; else echoes."""

    poison_limit = 1

    def __init__(self, log: list[Any], detached: list[bool] | None = None) -> None:
        self.log = log
        self.detached = detached if detached is not None else []

    async def receive(self, message: Any, ctx: ActorContext) -> Any:
        if isinstance(message, tuple) and message[0] == "park":
            _, gate, then = message
            self.detached.append(ctx.detach(type(self)(self.log, self.detached)))
            await gate.wait()
            if then == "crash":
                raise RuntimeError("after detach")
            self.log.append(("resumed", then))
            return ("resumed", then)
        self.log.append(message)
        return message

    async def on_stop(self, reason: object) -> None:
        self.log.append(("stop", str(reason)))


async def test_next_messages_are_handled_while_a_detached_handler_waits(
    system: ActorSystem,
) -> None:
    log: list[Any] = []
    ref = system.spawn(lambda: Parker(log), name="parker")
    gate = asyncio.Event()
    async with asyncio.timeout(10):
        parked = asyncio.ensure_future(ref.ask(("park", gate, "a")))
        assert await ref.ask("b") == "b"
        assert await ref.ask("c") == "c"
        assert not parked.done()
        gate.set()
        assert await parked == ("resumed", "a")
    assert log[:2] == ["b", "c"]
    assert ("resumed", "a") in log
    assert ("stop", "detached") in log


async def test_detach_outside_a_handler_task_returns_false(system: ActorSystem) -> None:
    captured: list[ActorContext] = []

    class Capture(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            captured.append(ctx)

    ref = system.spawn(Capture, name="capture")
    async with asyncio.timeout(10):
        await ref.ask("x")
    assert captured[0].detach(Capture()) is False


async def test_the_actor_is_not_restarted_when_a_detached_handler_crashes(
    system: ActorSystem, dead: list[DeadLetter]
) -> None:
    log: list[Any] = []
    ref = system.spawn(lambda: Parker(log), name="parker")
    gate = asyncio.Event()
    async with asyncio.timeout(10):
        await ref.tell(("park", gate, "crash"))
        assert await ref.ask("b") == "b"
        gate.set()
        while not dead:
            await asyncio.sleep(0)
        assert await ref.ask("c") == "c"
    assert ref.incarnation == 1
    assert dead[0].reason == "crashed"


async def test_an_ask_whose_detached_handler_crashes_fails_with_actor_crashed(
    system: ActorSystem,
) -> None:
    ref = system.spawn(lambda: Parker([]), name="parker")
    gate = asyncio.Event()
    async with asyncio.timeout(10):
        parked = asyncio.ensure_future(ref.ask(("park", gate, "crash")))
        await ref.ask("b")
        gate.set()
        with pytest.raises(ActorCrashed):
            await parked


async def test_stopping_the_actor_cancels_its_detached_handlers(system: ActorSystem) -> None:
    log: list[Any] = []
    ref = system.spawn(lambda: Parker(log), name="parker")
    gate = asyncio.Event()
    async with asyncio.timeout(10):
        parked = asyncio.ensure_future(ref.ask(("park", gate, "a")))
        await ref.ask("b")
        await ref.stop()
        with pytest.raises(ActorStopped):
            await parked
    assert ("stop", "detached handler cancelled") in log


async def test_a_crash_of_the_loop_after_detach_is_seen_by_the_supervisor(
    system: ActorSystem,
) -> None:
    class Crashy(Parker):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            if message == "boom":
                raise RuntimeError("boom")
            return await super().receive(message, ctx)

    log: list[Any] = []
    ref = system.spawn(lambda: Crashy(log), name="crashy")
    gate = asyncio.Event()
    async with asyncio.timeout(10):
        parked = asyncio.ensure_future(ref.ask(("park", gate, "a")))
        await ref.ask("b")
        with pytest.raises(ActorCrashed):
            await ref.ask("boom")
        assert await ref.ask("c") == "c"
        assert ref.incarnation == 2
        gate.set()  # the detached handler outlives the restart of the loop
        assert await parked == ("resumed", "a")
