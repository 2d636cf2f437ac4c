"""What interrupts a node actor: trace cancellation, the stop sentinel, the handler in hand.

A leaf of the runtime: it imports only ``tracing`` (to read an item's trace), so
every other runtime module may import it without a circle.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Protocol

from penguiflow._runtime.tracing import carried_trace
from penguiflow.errors import PenguiFlowError

__all__ = [
    "CRASH_LIMIT",
    "HANDLER",
    "STOPPING",
    "SelfCanceller",
    "TraceCancelled",
    "TraceInterrupt",
]


class TraceCancelled(PenguiFlowError):
    """The trace ``trace_id`` was cancelled (``str()`` is ``trace cancelled: <id>``)."""

    def __init__(self, trace_id: str | None) -> None:
        super().__init__(trace_id)  # args carry the id, so the exception pickles
        self.trace_id = trace_id

    def __str__(self) -> str:
        return f"trace cancelled: {self.trace_id}"


STOPPING = "penguiflow.stop"
"""The ``interrupt`` reason ``stop()`` gives to node actors handling an item."""

CRASH_LIMIT = 2
"""Crashes one item may cause before it is failed instead of redelivered.

Below the node actor's own ``poison_limit`` (3), so the node actor, not the
kernel, settles it: the item ends as a ``FlowError`` value, never a silent dead
letter.
"""


class TraceInterrupt:
    """The reason given to ``ActorRef.interrupt`` when a trace is cancelled."""

    __slots__ = ("trace_id",)

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id

    def matches(self, message: Any) -> bool:
        """True if ``message`` belongs to the cancelled trace (or carries it)."""
        return carried_trace(message) == self.trace_id


class SelfCanceller(Protocol):
    """What ``cancel()`` asks of the node actor whose task calls it."""

    def cancel_self(self, run: Any, trace_id: str) -> None:
        """Abort the running node function if it is cancelling its own trace."""


#: The node actor whose task this is (set in ``NodeActor.on_start``). Child tasks
#: inherit it, so ``cancel_self`` also checks that the caller is that very task.
HANDLER: ContextVar[SelfCanceller | None] = ContextVar("penguiflow_node_handler", default=None)
