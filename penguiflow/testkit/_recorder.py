"""The 2.2.5 recording model behind ``run_one`` and ``assert_node_sequence``.

One module-global, bounded history keeps the events of the 64 most recently
registered traces. A flow gets one :class:`FlowRecorder` middleware (attached by
the first ``run_one`` and reused afterwards); each ``run_one`` opens a new
recording *session* on it. Within a session the first event of a trace (or the
explicit registration of the ``run_one`` message's trace) starts that trace's
history afresh, so a trace's history holds only the events since the latest
session that touched it.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from penguiflow.metrics import FlowEvent

__all__ = [
    "HISTORY_LIMIT",
    "FlowRecorder",
    "clear_recorded_events",
    "ensure_recorder",
    "recorded_history",
    "register_trace",
]

HISTORY_LIMIT = 64
"""How many traces the module-global history keeps (oldest registration evicted first)."""

# trace_id -> events in emission order. Insertion order is registration order, so
# the first key is always the oldest registration (the one to evict).
_HISTORY: OrderedDict[str, list[FlowEvent]] = OrderedDict()


def register_trace(trace_id: str) -> list[FlowEvent]:
    """Start ``trace_id``'s history afresh as the most recent registration."""
    _HISTORY.pop(trace_id, None)
    events: list[FlowEvent] = []
    _HISTORY[trace_id] = events
    while len(_HISTORY) > HISTORY_LIMIT:
        _HISTORY.popitem(last=False)
    return events


def recorded_history(trace_id: str) -> list[FlowEvent] | None:
    """The live event list of ``trace_id``, or ``None`` if it is not (or no longer) recorded."""
    return _HISTORY.get(trace_id)


def clear_recorded_events() -> None:
    """Forget every recorded trace (test isolation helper).

    .. versionadded:: 3.0
    """
    _HISTORY.clear()


class FlowRecorder:
    """Middleware that copies every traced ``FlowEvent`` of one flow into the history.

    The recorder stays attached after ``run_one`` returns and keeps recording,
    so events of a later manual ``flow.run()``/``emit`` land in the current
    session.
    """

    __slots__ = ("_session",)

    def __init__(self) -> None:
        # Traces whose history was (re)started in the current session.
        self._session: set[str] = set()

    def begin_session(self, trace_id: str) -> None:
        """Open a new session and register ``trace_id`` with an empty history."""
        self._session = {trace_id}
        register_trace(trace_id)

    async def __call__(self, event: FlowEvent) -> None:
        trace_id = event.trace_id
        if trace_id is None:
            return
        events = recorded_history(trace_id)
        if trace_id not in self._session or events is None:
            # First event of this trace in the session (or its history was evicted
            # by newer registrations meanwhile): start it afresh.
            self._session.add(trace_id)
            events = register_trace(trace_id)
        events.append(event)


def ensure_recorder(flow: Any) -> FlowRecorder:
    """Return the flow's recorder, adding one as a middleware the first time."""
    recorder = _RECORDERS.get(flow)
    if recorder is None:
        recorder = _RECORDERS[flow] = FlowRecorder()
        flow.add_middleware(recorder)
    return recorder


# One recorder per flow, held weakly: a test's flow is not kept alive by the testkit.
_RECORDERS: weakref.WeakKeyDictionary[Any, FlowRecorder] = weakref.WeakKeyDictionary()
