"""Route every Rookery item of a shared flow to the request serving its trace.

One dispatcher task is the sole consumer of ``flow.fetch()``. Each request
registers an inbox for its trace before emitting; the dispatcher puts each
item into the inbox of the trace that produced it.

Trace attribution: when the flow offers ``fetch_traced()`` (an awaitable
returning a record with ``item`` and ``trace_id``) the dispatcher takes the
trace from it: ``PenguiFlow`` names the trace of every item, a bare payload
(a dict a node returned) included, however many bare hops after the request's
``Message`` it was made. A duck-typed flow without ``fetch_traced`` is routed by
the item's own ``trace_id`` attribute. Nothing is guessed: an item whose trace
is still unknown (a bare payload from such a flow, or one emitted from outside
any node) is logged (``a2a_untraced_item_dropped``, WARNING) and dropped, never
handed to another request.

Bounded inboxes: the dispatcher never waits for a request (that would stall
every other trace), so an inbox holds at most ``inbox_limit`` items. When one
more arrives for a full inbox the router gives up on that trace: the items
are dropped (the buffer is freed), ``OVERFLOW`` takes their place, the trace is
cancelled (``flow.cancel``) and its later items are discarded. The request
then ends with its protocol's error (``SessionOverflow``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import Any

from penguiflow._logging import get_logger

__all__ = ["CANCELLED", "OVERFLOW", "SHUTDOWN", "DispatchFailed", "RookeryRouter"]

_log = get_logger("penguiflow_a2a.routing")


class _Signal:
    """A sentinel put into an inbox in place of an item."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


#: the trace was cancelled (its cancel flag was set, or the adapter cancelled it)
CANCELLED = _Signal("cancelled")
#: the adapter is stopping; no more items will come
SHUTDOWN = _Signal("shutdown")
#: the inbox overflowed: its items were dropped and the trace cancelled
OVERFLOW = _Signal("overflow")


class DispatchFailed:
    """Put into every inbox when ``flow.fetch()`` itself failed."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


Fetch = Callable[[], Awaitable[tuple[str | None, Any]]]


def _resolve_fetch(flow: Any) -> tuple[Fetch, bool]:
    """Return the fetch function to use and whether it reports traces itself."""
    traced = getattr(flow, "fetch_traced", None)
    if callable(traced):

        async def fetch_traced() -> tuple[str | None, Any]:
            record = await traced()
            return record.trace_id, record.item

        return fetch_traced, True

    async def fetch_plain() -> tuple[str | None, Any]:
        item = await flow.fetch()
        return getattr(item, "trace_id", None), item

    return fetch_plain, False


class RookeryRouter:
    """Owns the dispatcher task and the per-trace inboxes.

    Args:
        flow: the running flow (or any object with an async ``fetch()``).
        hold_limit: at most this many items of traces nobody waits for are
            held (oldest dropped first), so a stray producer cannot grow memory.
        finished_limit: how many recently finished traces are remembered, so
            their late items are dropped instead of held.
        inbox_limit: most items one inbox holds (see the module docstring).
    """

    def __init__(
        self,
        flow: Any,
        *,
        hold_limit: int = 1024,
        finished_limit: int = 4096,
        inbox_limit: int = 1024,
    ) -> None:
        self._flow = flow
        self._hold_limit = hold_limit
        self._finished_limit = finished_limit
        self._inbox_limit = inbox_limit
        self._overflowed: set[str] = set()
        self._inboxes: dict[str, asyncio.Queue[Any]] = {}
        self._held: deque[tuple[str, Any]] = deque()
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._failure: DispatchFailed | None = None

    def start(self) -> None:
        """Start the dispatcher task (owned by this router until ``stop``)."""
        self._failure = None
        fetch, _ = _resolve_fetch(self._flow)
        self._task = asyncio.get_running_loop().create_task(
            self._run(fetch), name="penguiflow-a2a-dispatcher"
        )

    async def stop(self) -> None:
        """Cancel the dispatcher and wait for it; its errors are logged, never raised."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        # The dispatcher's own failures were logged where they happened; stop()
        # must not raise them (spec: errors inside the dispatcher never
        # propagate out of stop()).
        with contextlib.suppress(BaseException):
            await task
        if task.cancelled() and _current_task_cancelling():
            raise asyncio.CancelledError

    def register(self, trace_id: str) -> asyncio.Queue[Any]:
        """Create the inbox of ``trace_id``; items held for it move in."""
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        if self._failure is not None:
            # The dispatcher is dead: nothing will ever arrive for this trace.
            inbox.put_nowait(self._failure)
        self._inboxes[trace_id] = inbox
        self._finished.pop(trace_id, None)
        self._overflowed.discard(trace_id)
        if self._held:
            keep: deque[tuple[str, Any]] = deque()
            for held_trace, item in self._held:
                if held_trace == trace_id:
                    inbox.put_nowait(item)
                else:
                    keep.append((held_trace, item))
            self._held = keep
        return inbox

    def unregister(self, trace_id: str) -> None:
        """Drop the inbox of a finished request; its later items are discarded."""
        self._overflowed.discard(trace_id)
        if self._inboxes.pop(trace_id, None) is None:
            return
        self._finished[trace_id] = None
        while len(self._finished) > self._finished_limit:
            self._finished.popitem(last=False)

    def signal_all(self, signal: object) -> None:
        """Put ``signal`` into every inbox (shutdown, dispatcher failure)."""
        for inbox in self._inboxes.values():
            inbox.put_nowait(signal)

    def clear(self) -> None:
        """Forget every inbox and held item (after ``stop``)."""
        self._inboxes.clear()
        self._held.clear()
        self._finished.clear()
        self._overflowed.clear()

    def route(self, trace_id: str | None, item: Any) -> bool:
        """Deliver one fetched item to its trace's inbox (or hold/drop it).

        Returns:
            ``True`` when this item overflowed the inbox (the caller cancels
            the trace), else ``False``.
        """
        if trace_id is None:
            # Whose it is cannot be known: giving it to some waiting request would
            # answer that request with another one's result.
            _log.warning("a2a_untraced_item_dropped", item_type=type(item).__name__)
            return False
        inbox = self._inboxes.get(trace_id)
        if inbox is not None:
            if trace_id in self._overflowed:
                return False
            if inbox.qsize() < self._inbox_limit:
                inbox.put_nowait(item)
                return False
            # The request stopped reading: free its buffer now, not when it reads.
            while not inbox.empty():
                inbox.get_nowait()
            inbox.put_nowait(OVERFLOW)
            self._overflowed.add(trace_id)
            _log.warning("a2a_stream_overflow", trace_id=trace_id, limit=self._inbox_limit)
            return True
        if trace_id in self._finished:
            return False
        self._held.append((trace_id, item))
        if len(self._held) > self._hold_limit:
            dropped_trace, _ = self._held.popleft()
            _log.warning("a2a_held_item_dropped", trace_id=dropped_trace)
        return False

    async def _run(self, fetch: Fetch) -> None:
        while True:
            try:
                trace_id, item = await fetch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # The flow cannot be drained any more: fail every waiter
                # instead of leaving it hanging, and end the dispatcher.
                _log.exception("a2a_dispatcher_failed", exception=repr(exc))
                self._failure = DispatchFailed(exc)
                self.signal_all(self._failure)
                return
            if self.route(trace_id, item) and trace_id is not None:
                await self._cancel(trace_id)

    async def _cancel(self, trace_id: str) -> None:
        # Awaited here, once per overflowing trace: flow.cancel only sets the
        # trace's flag and purges its queued items, it never waits for a node.
        try:
            await self._flow.cancel(trace_id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _log.warning("a2a_overflow_cancel_failed", trace_id=trace_id, exception=repr(exc))


def _current_task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
