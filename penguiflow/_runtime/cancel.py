"""Cancelling one trace: drop its queued items, interrupt its invocations, report it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from penguiflow._runtime.graph import OPEN_SEA
from penguiflow._runtime.signals import HANDLER, TraceInterrupt
from penguiflow.actors import SELF_LANE

if TYPE_CHECKING:
    from penguiflow._runtime.run_state import RunState

__all__ = ["cancel_trace"]


async def cancel_trace(run: RunState, trace_id: str) -> bool:
    """Cancel ``trace_id`` in ``run``; False if the trace was not active (nothing happens).

    Sets the trace's cancel flags (``trace_cancel_start``), purges its items from
    every mailbox lane but the kernel's system lane, interrupts node actors
    handling it, forgets its stream sequence numbers and ends the dropped items
    for trace accounting (``trace_cancel_finish`` once nothing of it is left).
    """
    traces = run.traces
    if not traces.active(trace_id):
        return False
    flag = traces.ensure_event(trace_id)
    watched = traces.watched.get(trace_id) if traces.watched else None
    if watched is not None:
        watched.set()
    if not flag.is_set():
        flag.set()
        await run.events.emit(
            "trace_cancel_start",
            run.contexts[OPEN_SEA],
            trace_id,
            extra={"pending": traces.pending(trace_id)},
        )
    reason = TraceInterrupt(trace_id)
    matches = reason.matches
    dropped: list[Any] = []
    for mailbox in (*run.mailboxes.values(), run.rookery):
        # Self lanes hold controller self-edges and the Rookery buffer, which
        # are edge queues too; the system lane is the kernel's own.
        lanes = (SELF_LANE, *range(mailbox.lanes))
        dropped.extend(d.item for d in mailbox.purge(matches, lanes=lanes))
    for ref in run.refs.values():
        ref.interrupt(reason, when=matches)
    if run.parking is not None:  # parked invocations are not in a node's hands
        dropped.extend(run.parking.cancel_trace(trace_id))
    # A stream cut before its ``done`` chunk would keep its sequence counter
    # for the life of the flow; the trace starts afresh once it is retired.
    for ctx in run.contexts.values():
        ctx._stream_seq.pop(trace_id, None)
    for item in dropped:
        await run.io.finish(item)
    # A node cancelling its own trace: interrupt() will not cancel the calling
    # task, so its actor aborts the node function itself. Last, after every
    # await here, so the CancelledError lands in the node's code.
    handler = HANDLER.get()
    if handler is not None:
        handler.cancel_self(run, trace_id)
    return True
