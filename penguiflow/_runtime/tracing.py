"""Per-trace bookkeeping: outstanding items, in-flight invocations, cancel flags.

A trace is *active* while it has outstanding items (queued anywhere, or being
handled by a node) or in-flight invocations. When it becomes inactive its cancel
flag and WM memo are discarded, so a later message reusing the id starts fresh.
Trace-less items (no ``trace_id`` attribute) are never counted,
not even when they carry the trace that produced them (``Carried``).

In-flight invocations are not counted per hop: they are read off the node
actors themselves (``Invoker``), which know whether their node function runs
and for which trace. Only the rare readers pay (an event being built, a count
reaching zero, ``cancel()``), and the hot path pays nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any, Protocol

from pydantic import BaseModel

from penguiflow._carried import Carried, Journaled
from penguiflow._runtime.events import LOGGER
from penguiflow.types import Message

__all__ = [
    "PRODUCING_TRACE",
    "CancelFlag",
    "Carried",
    "Invoker",
    "Journaled",
    "TraceBook",
    "carried_trace",
    "owning_trace",
    "trace_id_of",
]

#: Trace of the item the current node actor is handling: the item's own
#: ``trace_id``, or the trace a bare payload carries (``Carried``). Set per item by
#: the node actor (child tasks a node spawns inherit it), read by the transport,
#: which makes every trace-less item sent while it is set carry it.
PRODUCING_TRACE: ContextVar[str | None] = ContextVar("penguiflow_producing_trace", default=None)


def owning_trace(trace_id: str | None) -> str | None:
    """``trace_id``, or, for a trace-less item, the trace it was produced for.

    Inside a node actor a bare payload that arrived ``Carried`` belongs to the trace
    set in ``PRODUCING_TRACE``; an item that came from outside any trace has none.
    """
    return trace_id if trace_id is not None else PRODUCING_TRACE.get()


def carried_trace(item: Any) -> str | None:
    """The trace ``item`` belongs to: its own ``trace_id``, or the one it carries."""
    kind = type(item)
    if kind is Carried or kind is Journaled:
        return item.trace  # type: ignore[no-any-return]
    return trace_id_of(item)


def trace_id_of(item: Any) -> str | None:
    """``getattr(item, "trace_id", None)``, minus the cost of a failing pydantic lookup.

    Reading a missing attribute of a pydantic model goes through its
    ``__getattr__``, which raises (about 2 µs) before ``getattr`` falls back to the
    default; the transport reads an item's trace several times per hop. A model
    class that cannot have the attribute is recognised once and remembered.
    """
    kind = type(item)
    if kind is Message:
        return item.trace_id  # type: ignore[no-any-return]
    traceless = _TRACELESS.get(kind)
    if traceless is None:
        traceless = _traceless(kind)
    if traceless:
        return None
    return getattr(item, "trace_id", None)


# Class -> "instances never have a trace_id": bounded, so classes made on the fly
# are not pinned forever (past the bound they are classified on every call).
_TRACELESS: dict[type, bool] = {Carried: True}  # a wrapper has no trace of its own
_TRACELESS_MAX = 256


def _traceless(kind: type) -> bool:
    """True for a pydantic model class without a ``trace_id`` field, attribute or extra."""
    traceless = (
        issubclass(kind, BaseModel)
        and "trace_id" not in kind.model_fields
        and not hasattr(kind, "trace_id")  # a property or class attribute
        and kind.model_config.get("extra") != "allow"
        # A custom __getattr__/__getattribute__ might answer: ask it every time.
        and getattr(kind, "__getattr__", None) is getattr(BaseModel, "__getattr__", None)
        and kind.__getattribute__ is BaseModel.__getattribute__
    )
    if len(_TRACELESS) < _TRACELESS_MAX:
        _TRACELESS[kind] = traceless
    return traceless


class Invoker(Protocol):
    """What ``TraceBook`` reads of a node actor (the current incarnation)."""

    _invoking: bool  # the node function is running now
    _trace_id: str | None  # the trace of the item in hand (or the last one)


class CancelFlag:
    """Set when ``cancel()`` cancels its trace; its holder keeps it after the trace ends.

    What ``TraceBook.watch`` hands out: a flag for code that must learn of a
    cancel later (``join_k``'s partial buckets) without the node actors testing
    a flag of every trace per hop, as they do for ``events``.
    """

    __slots__ = ("_set",)

    def __init__(self) -> None:
        self._set = False

    def is_set(self) -> bool:
        """True once the trace was cancelled."""
        return self._set

    def set(self) -> None:
        """Mark the trace cancelled (``cancel_trace``)."""
        self._set = True


class TraceBook:
    """Counts and flags of every active trace of one flow.

    ``events`` is the flow's ``_trace_events`` (compat surface): programs may
    pre-seed a set event there to simulate an already-cancelled trace.
    ``watched`` holds the ``CancelFlag``s handed out by ``watch``; both go when
    the trace ends.
    """

    __slots__ = ("counts", "events", "handlers", "listeners", "memo", "waiters", "watched")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        # Node -> its actor's current incarnation (a new one replaces the old).
        self.handlers: dict[Any, Invoker] = {}
        self.events: dict[str, asyncio.Event] = {}
        self.memo: dict[str, int] = {}  # last WM hops streamed to Rookery per trace
        self.watched: dict[str, CancelFlag] = {}
        # Per-trace capacity waiters: key -> (one future per waiting producer, the
        # limit). Woken only once the count is below the limit again, not on every
        # finished item.
        self.waiters: dict[str, tuple[list[asyncio.Future[None]], int]] = {}
        # Called with a trace id when that trace becomes inactive (add_trace_listener).
        # Empty unless an observer is attached, so retiring stays off the hot path.
        self.listeners: list[Callable[[str], None]] = []

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
        if not (self.memo or self.events or self.listeners or self.watched) or self.invoking(
            trace_id
        ):
            return False  # nothing to discard (the usual case), or not over yet
        return self._retire(trace_id)

    def _retire(self, trace_id: str) -> bool:
        if self.listeners:
            self._tell(trace_id)
        if self.memo:
            self.memo.pop(trace_id, None)
        if self.watched:
            self.watched.pop(trace_id, None)
        if not self.events:
            return False
        flag = self.events.pop(trace_id, None)
        return flag is not None and flag.is_set()

    def end_invocation(self, trace_id: str) -> bool:
        """An invocation of ``trace_id`` whose items all finished while it ran ended.

        Called (with the caller's ``_invoking`` already cleared) only when
        ``trace_id`` has no outstanding items left, e.g. after ``stop()`` forgot
        the item in hand. If no other invocation of it runs, the trace is retired
        here. Returns True when that ended a cancelled trace (the caller then
        emits ``trace_cancel_finish``).
        """
        if (
            not (self.memo or self.events or self.listeners or self.watched)
            or trace_id in self.counts
            or self.invoking(trace_id)
        ):
            return False
        return self._retire(trace_id)

    def invoking(self, trace_id: str) -> int:
        """Node invocations of ``trace_id`` running now (``FlowEvent.trace_inflight``).

        One pass over the flow's node actors.
        """
        count = 0
        for handler in self.handlers.values():
            if handler._invoking and handler._trace_id == trace_id:
                count += 1
        return count

    def pending(self, trace_id: str) -> int:
        """Outstanding items of ``trace_id`` (0 when unknown)."""
        return self.counts.get(trace_id, 0)

    def active(self, trace_id: str) -> bool:
        """True while the trace has outstanding items or invocations."""
        return self.counts.get(trace_id, 0) > 0 or self.invoking(trace_id) > 0

    def cancelled(self, trace_id: str) -> bool:
        """True if the trace's cancel flag is set."""
        events = self.events
        if not events:
            return False  # the common case: no flag exists at all
        flag = events.get(trace_id)
        return flag is not None and flag.is_set()

    def ensure_event(self, trace_id: str) -> asyncio.Event:
        """The trace's cancel flag, created if absent."""
        flag = self.events.get(trace_id)
        if flag is None:
            flag = self.events[trace_id] = asyncio.Event()
        return flag

    def watch(self, trace_id: str) -> CancelFlag:
        """The trace's ``CancelFlag``, created if absent (set by ``cancel_trace``)."""
        flag = self.watched.get(trace_id)
        if flag is None:
            flag = self.watched[trace_id] = CancelFlag()
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

    def _tell(self, trace_id: str) -> None:
        """Tell every trace listener that ``trace_id`` ended; their errors are logged."""
        for listener in tuple(self.listeners):
            try:
                listener(trace_id)
            except Exception:
                LOGGER.exception(
                    "trace_listener_error",
                    extra={"event": "trace_listener_error", "trace_id": trace_id},
                )

    def clear(self) -> None:
        """Forget everything (``stop()``); capacity waiters are released.

        Traces still active end here, as far as trace listeners are concerned.
        """
        if self.listeners:
            for trace_id in tuple(self.counts):
                self._tell(trace_id)
        for futures, _ in self.waiters.values():
            _wake(futures)
        self.waiters.clear()
        self.counts.clear()
        self.events.clear()
        self.memo.clear()
        self.watched.clear()


def _wake(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():  # a cancelled waiter leaves its future behind
            future.set_result(None)
