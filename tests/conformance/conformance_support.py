"""Helpers shared by the conformance tests (imported as ``conformance_support``).

Only the PenguiFlow 2.2.5 public API and the documented compat surface are used.
"""

from __future__ import annotations

import asyncio
from typing import Any

from penguiflow import FlowEvent, Headers, Message, PenguiFlow


class EventLog:
    """An async middleware that records every FlowEvent and lets tests await one."""

    def __init__(self) -> None:
        self.events: list[FlowEvent] = []
        self._changed = asyncio.Event()

    async def __call__(self, event: FlowEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def kinds(self, trace_id: str | None = None) -> list[str]:
        return [e.event_type for e in self.events if trace_id is None or e.trace_id == trace_id]

    def of(self, kind: str, trace_id: str | None = None) -> list[FlowEvent]:
        return [
            e
            for e in self.events
            if e.event_type == kind and (trace_id is None or e.trace_id == trace_id)
        ]

    async def wait_for(self, kind: str, count: int = 1) -> list[FlowEvent]:
        """Return once ``count`` events named ``kind`` were recorded (safety timeout 5 s)."""
        async with asyncio.timeout(5):
            while len(self.of(kind)) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.of(kind)


def msg(payload: Any = "x", **kwargs: Any) -> Message:
    """A Message for tenant ``acme``."""
    return Message(payload=payload, headers=Headers(tenant="acme"), **kwargs)


async def fetch(flow: PenguiFlow, **kwargs: Any) -> Any:
    """``flow.fetch()`` under a 5 s safety timeout."""
    async with asyncio.timeout(5):
        return await flow.fetch(**kwargs)


async def emit(flow: PenguiFlow, item: Any, **kwargs: Any) -> None:
    """``flow.emit()`` under a 5 s safety timeout."""
    async with asyncio.timeout(5):
        await flow.emit(item, **kwargs)
