"""The inspector over a state store's history: read-only, no graph, no actions.

Parked traces come from the store's journal when it keeps one (durable flows).
"""

from __future__ import annotations

from typing import Any

from penguiflow.inspector._app import StateSource
from penguiflow.inspector._interrupts import stored_parked

__all__ = ["StoreSource", "status_of"]

_ENDINGS = {"node_failed": "failed", "trace_cancel_start": "cancelled"}


def status_of(kinds: list[str]) -> str:
    """A stored trace's status from its event kinds (``stored`` when nothing says more)."""
    for kind in kinds:
        if kind in _ENDINGS:
            return _ENDINGS[kind]
    return "stored"


class StoreSource(StateSource):
    """Recent traces (``store.list_traces`` when the store has it) and their histories."""

    mode = "store"

    def __init__(self, store: Any, *, max_traces: int = 100) -> None:
        self._store = store
        self._max_traces = max_traces

    async def state(self) -> dict[str, Any]:
        lister = getattr(self._store, "list_traces", None)
        rows = await lister(self._max_traces) if lister is not None else []
        traces = [
            {
                "trace_id": trace_id,
                "status": "stored",
                "started": first,
                "updated": last,
                "events": count,
                "last_event": None,
                "last_node": None,
            }
            for trace_id, first, last, count in rows
        ]
        parked = await stored_parked(self._store)
        waiting = {row["trace_id"] for row in parked}
        for entry in traces:
            if entry["trace_id"] in waiting:
                entry["status"] = "parked"
        return {
            "mode": "store",
            "running": False,
            "nodes": [],
            "supervision": None,
            "traces": traces,
            "interrupts": parked,
        }

    async def trace(self, trace_id: str) -> dict[str, Any] | None:
        history = await self._store.load_history(trace_id)
        if not history:
            return None
        events = [
            {
                "ts": event.ts,
                "event": event.kind,
                "node": event.node_name,
                "attempt": event.payload.get("attempt", 0),
                "latency_ms": event.payload.get("latency_ms"),
                "detail": str(event.payload.get("exception", "")),
            }
            for event in history
        ]
        return {
            "trace_id": trace_id,
            "status": status_of([e["event"] for e in events]),
            "events": events,
        }

    async def cancel(self, trace_id: str) -> bool:  # pragma: no cover - refused by the app
        raise RuntimeError("a store's history is read-only")

    async def resume(self, interrupt: str, value: Any) -> None:  # pragma: no cover - refused
        raise RuntimeError("a store's history is read-only")

    def svg(self) -> str:
        return '<p class="note">History from a state store: no live graph.</p>'
