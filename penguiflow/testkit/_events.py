"""``EventRecorder``: a middleware tests await instead of sleeping."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from penguiflow.metrics import FlowEvent

__all__ = ["EventRecorder"]


class EventRecorder:
    """Collect every ``FlowEvent`` a flow emits and let tests wait for specific ones.

    Register it like any middleware (``create(..., middlewares=[recorder])`` or
    ``flow.add_middleware(recorder)``), then ``await recorder.wait_for("node_success")``.
    Unlike the module-global ``run_one`` history it keeps trace-less events
    (such as ``node_cancelled``) and is private to the test that owns it.

    .. versionadded:: 3.0
    """

    __slots__ = ("_changed", "events")

    def __init__(self) -> None:
        self.events: list[FlowEvent] = []
        self._changed: asyncio.Event | None = None

    async def __call__(self, event: FlowEvent) -> None:
        self.events.append(event)
        if self._changed is not None:
            self._changed.set()

    def of_type(
        self, event_type: str, *, node: str | None = None, trace_id: str | None = None
    ) -> list[FlowEvent]:
        """The recorded events named ``event_type``, optionally of one node and/or trace."""
        return [
            event
            for event in self.events
            if event.event_type == event_type
            and (node is None or event.node_name == node)
            and (trace_id is None or event.trace_id == trace_id)
        ]

    def types(self) -> list[str]:
        """The ``event_type`` of every recorded event, in order."""
        return [event.event_type for event in self.events]

    async def wait_for(
        self,
        event_type: str,
        count: int = 1,
        *,
        node: str | None = None,
        trace_id: str | None = None,
    ) -> list[FlowEvent]:
        """Wait until ``count`` matching events were recorded; return all matches so far.

        Wrap the call in ``asyncio.timeout`` as a safety net.
        """
        while True:
            matches = self.of_type(event_type, node=node, trace_id=trace_id)
            if len(matches) >= count:
                return matches
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            await changed.wait()
            # A fresh Event per wait: every waiter woken by this one re-checks its
            # condition, and no Event outlives the loop it was first awaited in.
            if self._changed is changed:
                self._changed = None

    def clear(self) -> None:
        """Forget the events recorded so far."""
        self.events.clear()
