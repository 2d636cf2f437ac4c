"""``TraceLog``: the recent traces of a flow and their event timelines, kept in memory."""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from penguiflow.metrics import FlowEvent

__all__ = ["TraceLog", "TraceRecord"]

_STATUS_BY_EVENT = {
    "node_failed": "failed",
    "trace_cancel_start": "cancelled",
}


@dataclass(slots=True)
class TraceRecord:
    """One trace as the inspector shows it: status and its latest events."""

    trace_id: str
    started: float
    updated: float
    status: str = "running"  # running, done, failed, cancelled
    events: deque[dict[str, Any]] = field(default_factory=deque)

    def summary(self) -> dict[str, Any]:
        """What the trace list shows."""
        last = self.events[-1] if self.events else None
        return {
            "trace_id": self.trace_id,
            "status": self.status,
            "started": self.started,
            "updated": self.updated,
            "events": len(self.events),
            "last_event": last["event"] if last else None,
            "last_node": last["node"] if last else None,
        }


class TraceLog:
    """A middleware and trace listener remembering the last ``max_traces`` traces.

    Each trace keeps its last ``max_events`` events. ``changed`` is set on every
    change, for the live stream to wake up.

    .. versionadded:: 3.0
    """

    def __init__(self, *, max_traces: int = 100, max_events: int = 200) -> None:
        self._max_traces = max_traces
        self._max_events = max_events
        self._traces: OrderedDict[str, TraceRecord] = OrderedDict()
        self.changed = asyncio.Event()

    def attach(self, flow: Any) -> None:
        """Start recording ``flow``'s events."""
        flow.add_middleware(self)
        flow.add_trace_listener(self.trace_ended)

    def detach(self, flow: Any) -> None:
        """Stop hearing trace ends (the middleware stays, unused events are cheap)."""
        flow.remove_trace_listener(self.trace_ended)

    async def __call__(self, event: FlowEvent) -> None:
        trace_id = event.trace_id
        if trace_id is None:
            return
        record = self._traces.get(trace_id)
        if record is None or record.status == "done":
            # A finished trace id seen again is a new run of it.
            record = TraceRecord(
                trace_id, event.ts, event.ts, events=deque(maxlen=self._max_events)
            )
            self._traces[trace_id] = record
            while len(self._traces) > self._max_traces:
                self._traces.popitem(last=False)
        self._traces.move_to_end(trace_id)
        record.updated = event.ts
        status = _STATUS_BY_EVENT.get(event.event_type)
        if status is not None and record.status == "running":
            record.status = status
        record.events.append(
            {
                "ts": event.ts,
                "event": event.event_type,
                "node": event.node_name,
                "attempt": event.attempt,
                "latency_ms": event.latency_ms,
                "detail": _detail(event),
            }
        )
        self.changed.set()

    def trace_ended(self, trace_id: str) -> None:
        """The trace became inactive (a trace listener)."""
        record = self._traces.get(trace_id)
        if record is not None and record.status == "running":
            record.status = "done"
        self.changed.set()

    def recent(self) -> list[TraceRecord]:
        """Newest first."""
        return list(reversed(self._traces.values()))

    def get(self, trace_id: str) -> TraceRecord | None:
        """The record of ``trace_id``, if still remembered."""
        return self._traces.get(trace_id)


def _detail(event: FlowEvent) -> str:
    extra = event.extra
    if "exception" in extra:
        return str(extra["exception"])
    if "pending" in extra:
        return f"pending={extra['pending']}"
    return ""
