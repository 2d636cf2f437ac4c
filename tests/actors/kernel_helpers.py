"""Test actors shared by the kernel tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from penguiflow.actors import Actor, ActorContext

__all__ = ["Recorder", "until"]


class Recorder(Actor):
    """Records every message; replies with it; crashes on messages starting with 'boom'."""

    def __init__(
        self,
        log: list[Any],
        gate: asyncio.Event | None = None,
        entered: asyncio.Event | None = None,
    ) -> None:
        self.log = log
        self.gate = gate
        self.entered = entered

    async def receive(self, message: Any, ctx: ActorContext) -> Any:
        self.log.append(message)
        if message == "wait":
            if self.entered is not None:
                self.entered.set()
            if self.gate is not None:
                await self.gate.wait()
        if isinstance(message, str) and message.startswith("boom"):
            raise RuntimeError(message)
        return message


async def until(predicate: Callable[[], bool]) -> None:
    """Yield turns until ``predicate()`` holds: waits for a state, never for a duration.

    For kernel states no event exposes (a request reaching a system lane).
    Callers wrap it in ``asyncio.timeout`` as a safety net.
    """
    while not predicate():
        await asyncio.sleep(0)
