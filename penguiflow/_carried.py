"""``Carried`` and ``Journaled``: how items wear runtime-private facts on an edge.

``Carried`` is a trace-less item on its way between nodes, with its producer's
trace; ``Journaled`` an item of a durable flow with its journal entry.

A leaf module (it imports nothing of penguiflow) because two layers need the
type: the flow runtime (``penguiflow._runtime.tracing``), which wraps and unwraps
it, and the item codec (``penguiflow._codec``), which carries it across a process
boundary for the distributed transport and the journal.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Carried", "Journaled"]


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


class Journaled:
    """An item on an edge of a durable flow, with the journal entry it is.

    Runtime-private and never shown, like ``Carried``: the node actor unwraps it
    and opens a step for ``entry`` (``penguiflow._runtime.durable``); fetches mark
    the Rookery entry delivered and return ``item``. ``item`` is what the edge
    would carry without the journal (a ``Message``, a ``Carried`` bare payload, or
    a bare payload without a trace). ``trace_id`` is ``item``'s own trace (what
    trace accounting counts, ``None`` for a bare payload); ``trace`` the trace it
    belongs to (its own or the one it carries: what cancellation matches).
    ``attempt`` is the retry count journaled for it (``Journal.hold``).
    """

    __slots__ = ("attempt", "entry", "item", "trace", "trace_id")

    def __init__(
        self, item: Any, entry: int, trace_id: str | None, trace: str | None, attempt: int = 0
    ) -> None:
        self.item = item
        self.entry = entry
        self.trace_id = trace_id
        self.trace = trace
        self.attempt = attempt
