"""Per-trace bookkeeping: outstanding items, in-flight invocations, cancel flags.

A trace is *active* while it has outstanding items (queued anywhere, or being
handled by a node) or in-flight invocations. When it becomes inactive its cancel
flag and WM memo are discarded, so a later message reusing the id starts fresh.
Trace-less items (no ``trace_id`` attribute) are never counted.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

__all__ = ["PRODUCING_TRACE", "TraceBook"]

#: Trace of the item the current node actor is handling. Set per item by the node
#: actor, read by the transport so a trace-less result delivered to Rookery (a bare
#: dict a node returned) can still be attributed to its trace (``fetch_traced``).
PRODUCING_TRACE: ContextVar[str | None] = ContextVar("penguiflow_producing_trace", default=None)


class TraceBook:
    """Counts and flags of every active trace of one flow.

    ``events`` is the flow's ``_trace_events`` (compat surface): programs may
    pre-seed a set event there to simulate an already-cancelled trace.
    """

    __slots__ = ("counts", "events", "inflight", "memo", "waiters")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.inflight: dict[str, int] = {}
        self.events: dict[str, asyncio.Event] = {}
        self.memo: dict[str, int] = {}  # last WM hops streamed to Rookery per trace
        # Per-trace capacity waiters: key -> (one future per waiting producer, the
        # limit). Woken only once the count is below the limit again, not on every
        # finished item.
        self.waiters: dict[str, tuple[list[asyncio.Future[None]], int]] = {}

    def add(self, trace_id: str) -> None:
        """One more outstanding item of ``trace_id``."""
        counts = self.counts
        counts[trace_id] = counts.get(trace_id, 0) + 1

    def done(self, trace_id: str) -> bool:
        """One outstanding item of ``trace_id`` finished.

        Returns True when this ended a cancelled trace (the caller then emits
        ``trace_cancel_finish``).
        """
        counts = self.counts
        left = counts.get(trace_id, 0) - 1
        if self.waiters:
            waiter = self.waiters.get(trace_id)
            if waiter is not None and left - 1 < waiter[1]:
                del self.waiters[trace_id]
                _wake(waiter[0])
        if left > 0:
            counts[trace_id] = left
            return False
        counts.pop(trace_id, None)
        if self.inflight.get(trace_id):
            return False
        return self._retire(trace_id)

    def _retire(self, trace_id: str) -> bool:
        if self.memo:
            self.memo.pop(trace_id, None)
        if not self.events:
            return False
        flag = self.events.pop(trace_id, None)
        return flag is not None and flag.is_set()

    def end_invocation(self, trace_id: str) -> bool:
        """One in-flight invocation of ``trace_id`` ended.

        If it was the trace's last activity (its items were all finished while it
        ran), the trace is retired here. Returns True when that ended a cancelled
        trace (the caller then emits ``trace_cancel_finish``).
        """
        inflight = self.inflight
        left = inflight.pop(trace_id, 1) - 1
        if left > 0:
            inflight[trace_id] = left
            return False
        if trace_id in self.counts:
            return False  # the usual case: the invoked item itself is still counted
        return self._retire(trace_id)

    def pending(self, trace_id: str) -> int:
        return self.counts.get(trace_id, 0)

    def active(self, trace_id: str) -> bool:
        return self.counts.get(trace_id, 0) > 0 or self.inflight.get(trace_id, 0) > 0

    def cancelled(self, trace_id: str) -> bool:
        events = self.events
        if not events:
            return False  # the common case: no flag exists at all
        flag = events.get(trace_id)
        return flag is not None and flag.is_set()

    def ensure_event(self, trace_id: str) -> asyncio.Event:
        flag = self.events.get(trace_id)
        if flag is None:
            flag = self.events[trace_id] = asyncio.Event()
        return flag

    async def wait_capacity(self, key: str, maxsize: int) -> None:
        """Wait while ``key`` has ``maxsize`` or more outstanding items besides one.

        The one excluded is the item the emitting node is processing.
        """
        if maxsize <= 0:
            return
        while self.counts.get(key, 0) - 1 >= maxsize:
            waiter = self.waiters.get(key)
            if waiter is None:
                waiter = self.waiters[key] = ([], maxsize)
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            waiter[0].append(future)
            await future

    def clear(self) -> None:
        """Forget everything (``stop()``); capacity waiters are released."""
        for futures, _ in self.waiters.values():
            _wake(futures)
        self.waiters.clear()
        self.counts.clear()
        self.inflight.clear()
        self.events.clear()
        self.memo.clear()


def _wake(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():  # a cancelled waiter leaves its future behind
            future.set_result(None)
