"""``Carried``: a trace-less item on its way between nodes, with its producer's trace.

A leaf module (it imports nothing of penguiflow) because two layers need the
type: the flow runtime (``penguiflow._runtime.tracing``), which wraps and unwraps
it, and the item codec (``penguiflow._codec``), which carries it across a process
boundary for the distributed transport and the journal.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Carried"]


class Carried:
    """A trace-less item on an edge, with the trace that produced it.

    Runtime-private and never shown: the node actor unwraps it before calling the
    node function (nodes receive exactly what was sent), and so do fetches,
    mailbox snapshots, the bus envelope and cancellation. ``fetch_traced`` reports
    ``trace``. Made only for items without a ``trace_id`` of their own, so a
    ``Message`` (the hot path) never pays for it. Not counted for its trace, but
    cancelling the trace removes it (``TraceInterrupt``).
    """

    __slots__ = ("item", "trace")

    def __init__(self, item: Any, trace: str) -> None:
        self.item = item
        self.trace = trace
