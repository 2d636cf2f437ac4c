"""The state-store seam: where a flow persists its events and remote bindings.

This module holds only the ``StateStore`` protocol and its two records, so it is
cheap to import. The runtime calls the hooks in a fixed order: every
``FlowEvent`` is handed to ``save_event`` as a ``StoredEvent`` before the
middlewares run, and ``RemoteNode``/the A2A adapter call ``save_remote_binding``.

Implementations shipped with PenguiFlow:

* ``penguiflow.stores.sqlite.SQLiteStateStore`` -- the embedded default (one file);
* ``penguiflow.testkit.InMemoryStateStore`` -- for tests.

A third-party store can run the same contract suite as ours:
``penguiflow.testkit.check_state_store`` (see docs/persistence.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from penguiflow.metrics import FlowEvent

__all__ = ["RemoteBinding", "StateStore", "StoredEvent"]


@dataclass(slots=True)
class StoredEvent:
    """One runtime event as a state store keeps it.

    ``payload`` is ``FlowEvent.to_payload()``: the base keys (``event``,
    ``trace_id``, ``latency_ms``, queue depths, ...) followed by every extra key.
    """

    trace_id: str | None
    ts: float
    kind: str
    node_name: str | None
    node_id: str | None
    payload: Mapping[str, Any]

    @classmethod
    def from_flow_event(cls, event: FlowEvent) -> StoredEvent:
        """Build the record the runtime hands to ``StateStore.save_event``."""
        return cls(
            trace_id=event.trace_id,
            ts=event.ts,
            kind=event.event_type,
            node_name=event.node_name,
            node_id=event.node_id,
            payload=event.to_payload(),
        )


@dataclass(slots=True)
class RemoteBinding:
    """Which remote task serves a trace: the ids a remote agent reported for it."""

    trace_id: str
    context_id: str
    task_id: str
    agent_url: str


@runtime_checkable
class StateStore(Protocol):
    """Where a flow persists its event history and remote bindings.

    Programs may subclass it explicitly (``class MyStore(StateStore): ...``) or
    just provide the three coroutine methods.

    ``save_event`` may receive the same event more than once (retrying
    adapters); implementations should store it once. ``load_history`` returns
    the trace's events in the order they were stored.

    Optional extensions, looked up by name where used: ``save_planner_state``
    / ``load_planner_state`` (the planner's pause/resume, sync or async) and
    ``load_remote_bindings(trace_id)``.
    """

    async def save_event(self, event: StoredEvent) -> None:
        """Persist one event."""
        ...

    async def load_history(self, trace_id: str) -> Sequence[StoredEvent]:
        """Return the stored events of ``trace_id`` in stored order."""
        ...

    async def save_remote_binding(self, binding: RemoteBinding) -> None:
        """Persist the remote task ids serving a trace."""
        ...
