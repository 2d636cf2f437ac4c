"""Test actors and helpers shared by the supervision tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from penguiflow.actors import Actor, ActorContext

__all__ = ["Worker", "until"]


class Worker(Actor):
    """Logs its lifecycle as ``(name, event)``; "crash" raises, "exit" exits normally,
    "block" waits for ``gate``; every other message is echoed back."""

    def __init__(
        self,
        name: str,
        events: list[tuple[str, str]],
        gate: asyncio.Event | None = None,
        entered: asyncio.Event | None = None,
    ) -> None:
        self.name = name
        self.events = events
        self.gate = gate
        self.entered = entered

    async def on_start(self, ctx: ActorContext) -> None:
        self.events.append((self.name, "start"))

    async def receive(self, message: Any, ctx: ActorContext) -> Any:
        if message == "crash":
            raise RuntimeError(f"{self.name} crashed")
        if message == "exit":
            ctx.stop("exit")
        if message == "block":
            if self.entered is not None:
                self.entered.set()
            assert self.gate is not None
            await self.gate.wait()
        return message

    async def on_stop(self, reason: object) -> None:
        self.events.append((self.name, "stop"))

    async def on_restart(self, reason: object) -> None:
        self.events.append((self.name, "restart"))


def worker(name: str, events: list[tuple[str, str]], **kwargs: Any) -> Callable[[], Worker]:
    """A factory for ChildSpec.start."""
    return lambda: Worker(name, events, **kwargs)


async def until(predicate: Callable[[], bool]) -> None:
    """Yield turns until ``predicate()`` holds (a state, never a duration)."""
    while not predicate():
        await asyncio.sleep(0)
