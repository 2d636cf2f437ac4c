"""Helpers shared by the core runtime tests (imported as ``core_support``)."""

from __future__ import annotations

import asyncio
from typing import Any

from penguiflow._runtime.run_state import RunState
from penguiflow.core import PenguiFlow
from penguiflow.metrics import FlowEvent
from penguiflow.types import Headers, Message


class Recorder:
    """A middleware keeping every event; ``wait_for`` returns once enough arrived."""

    def __init__(self) -> None:
        self.events: list[FlowEvent] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: FlowEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def kinds(self, node: str | None = None) -> list[str]:
        return [e.event_type for e in self.events if node is None or e.node_name == node]

    def of(self, kind: str) -> list[FlowEvent]:
        return [e for e in self.events if e.event_type == kind]

    async def wait_for(self, kind: str, count: int = 1) -> list[FlowEvent]:
        async with asyncio.timeout(5):
            while len(self.of(kind)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.of(kind)


def message(payload: Any = "x", **kwargs: Any) -> Message:
    return Message(payload=payload, headers=Headers(tenant="t"), **kwargs)


async def fetch(flow: PenguiFlow, **kwargs: Any) -> Any:
    async with asyncio.timeout(5):
        return await flow.fetch(**kwargs)


async def idle(flow: PenguiFlow) -> None:
    async with asyncio.timeout(5):
        await flow.wait_idle()


def run_state(flow: PenguiFlow) -> RunState:
    """The flow's ``RunState``, for white-box tests of the runtime's own bookkeeping.

    The one place the core tests reach behind the public API (trace book, event
    pipeline); everything else goes through ``penguiflow.testkit``.
    """
    return flow._run
