"""The event pipeline: build a ``FlowEvent``, log it, store it, hand it to middlewares.

Every step is awaited inline and in this order (events-errors.md). When nobody
listens (level disabled, no store, no middleware) the event is not even built,
which keeps per-hop DEBUG events free on the hot path. One exception: on a
durable flow whose journal shares the state store (``step_events``), an event
emitted inside a node's step is stored with the step's commit, in its
transaction, instead of being saved on its own (docs/durability.md).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from penguiflow.metrics import FlowEvent

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context
    from penguiflow._runtime.tracing import TraceBook
    from penguiflow._time import Clock

__all__ = ["LEVELS", "LOGGER", "EventListener", "EventPipeline", "save_stored"]

# The FlowEvent record shape is fixed by the 2.2.5 contract (message = event name,
# payload keys as record attributes), so these records use the stdlib logger
# directly: a structlog wrapper cannot set a record attribute named ``event``.
LOGGER = logging.getLogger("penguiflow.core")

LEVELS: dict[str, int] = {
    "node_start": logging.DEBUG,
    "node_success": logging.INFO,
    "node_error": logging.ERROR,
    "node_timeout": logging.WARNING,
    "node_retry": logging.INFO,
    "node_failed": logging.ERROR,
    "deadline_skip": logging.INFO,
    "trace_cancel_drop": logging.INFO,
    "node_trace_cancelled": logging.INFO,
    "node_cancelled": logging.DEBUG,
    "trace_cancel_start": logging.INFO,
    "trace_cancel_finish": logging.INFO,
}

Middleware = Callable[[FlowEvent], Awaitable[None]]
EventListener = Callable[[FlowEvent], None]
"""A synchronous listener (``hosting.observe_events``): unlike a middleware, it
does not turn the per-hop events on and never sees ``node_start``/``node_success``."""

_PER_HOP = frozenset(("node_start", "node_success"))


class EventPipeline:
    """Emits the events of one flow; holds references, not copies, of its config."""

    __slots__ = (
        "_clock",
        "_maxsize",
        "_middlewares",
        "_traces",
        "listeners",
        "state_store",
        "step_events",
    )

    def __init__(
        self,
        *,
        clock: Clock,
        traces: TraceBook,
        middlewares: list[Middleware],
        state_store: Any,
        maxsize: int,
    ) -> None:
        self._clock = clock
        self._traces = traces
        self._middlewares = middlewares
        self.state_store = state_store
        self._maxsize = maxsize
        self.listeners: list[EventListener] = []  # hosting.observe_events
        # A durable flow whose journal shares the state store (durable.DurableTransport):
        # the open step's list of events (they are saved with its commit), else None.
        self.step_events: Callable[[], list[Any] | None] | None = None

    def listening(self, event_type: str) -> bool:
        """True if an ``event_type`` event would reach anyone (a log level, store or middleware)."""
        return (
            bool(self._middlewares)
            or self.state_store is not None
            or LOGGER.isEnabledFor(LEVELS[event_type])
        )

    async def emit(
        self,
        event_type: str,
        ctx: Context,
        trace_id: str | None,
        *,
        attempt: int = 0,
        latency_ms: float | None = None,
        extra: Mapping[str, Any] | None = None,
        exc: BaseException | None = None,
        level: int | None = None,
    ) -> None:
        """Build and dispatch one event emitted from ``ctx`` about ``trace_id``."""
        if level is None:
            level = LEVELS[event_type]
        log_enabled = LOGGER.isEnabledFor(level)
        middlewares = self._middlewares
        store = self.state_store
        listeners = self.listeners if event_type not in _PER_HOP else None
        if not (middlewares or store is not None or listeners):
            if log_enabled:
                # Only the log record wants it: its attributes straight away, with
                # no FlowEvent in between (a frozen dataclass of 15 fields).
                self._log(
                    level,
                    event_type,
                    self._payload(event_type, ctx, trace_id, attempt, latency_ms, extra),
                    exc,
                )
            return
        event = self.build(
            event_type, ctx, trace_id, attempt=attempt, latency_ms=latency_ms, extra=extra
        )
        if log_enabled:
            self._log(level, event_type, event.to_payload(), exc)
        if listeners:
            for listener in tuple(listeners):
                try:
                    listener(event)
                except Exception as error:
                    LOGGER.exception(
                        "listener_error",
                        extra={"event": "listener_error", "exception": error},
                    )
        if store is not None:
            joined = self.step_events
            pending = joined() if joined is not None else None
            if pending is not None:
                pending.append(_stored(event))  # saved in the step's transaction
            else:
                await _save(store, event)
        for middleware in tuple(middlewares):
            try:
                await middleware(event)
            except Exception as error:
                LOGGER.exception(
                    "middleware_error",
                    extra={
                        "event": "middleware_error",
                        "node_name": event.node_name,
                        "node_id": event.node_id,
                        "exception": error,
                    },
                )

    def _log(
        self, level: int, event_type: str, payload: dict[str, Any], exc: BaseException | None
    ) -> None:
        """Hand one ``penguiflow.core`` record (message = event name) to the logger."""
        exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
        # What LOGGER.log(level, event_type, extra=..., exc_info=...) does, minus
        # its findCaller() stack walk (a few µs per record, e.g. on every retry):
        # the caller it would find is emit(), one frame up, so the record is the same.
        here = sys._getframe(1)
        code = here.f_code
        record = LOGGER.makeRecord(
            LOGGER.name,
            level,
            code.co_filename,
            here.f_lineno,
            event_type,
            (),
            exc_info,
            code.co_name,
            payload,
        )
        LOGGER.handle(record)

    def _payload(
        self,
        event_type: str,
        ctx: Context,
        trace_id: str | None,
        attempt: int,
        latency_ms: float | None,
        extra: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """What ``self.build(...).to_payload()`` returns, without the ``FlowEvent``."""
        owner = ctx.owner
        depth_in = ctx.queue_depth_in()
        depth_out = ctx.queue_depth_out()
        payload: dict[str, Any] = {
            "ts": self._clock.time(),
            "event": event_type,
            "node_name": owner.name,
            "node_id": getattr(owner, "node_id", owner.name),
            "trace_id": trace_id,
            "latency_ms": latency_ms,
            "q_depth_in": depth_in,
            "q_depth_out": depth_out,
            "q_depth_total": depth_in + depth_out,
            "outgoing": ctx.outgoing_count(),
            "queue_maxsize": self._maxsize,
            "attempt": attempt,
        }
        traces = self._traces
        if trace_id is None:
            payload["trace_inflight"] = 0
            payload["trace_cancelled"] = False
        else:
            payload["trace_inflight"] = traces.invoking(trace_id)
            payload["trace_cancelled"] = traces.cancelled(trace_id)
            payload["trace_pending"] = traces.pending(trace_id)
        if extra:
            payload.update(extra)
        return payload

    def build(
        self,
        event_type: str,
        ctx: Context,
        trace_id: str | None,
        *,
        attempt: int = 0,
        latency_ms: float | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> FlowEvent:
        """The ``FlowEvent`` for ``ctx`` and ``trace_id`` as of now."""
        owner = ctx.owner
        traces = self._traces
        if trace_id is None:
            pending, inflight, cancelled = None, 0, False
        else:
            pending = traces.pending(trace_id)
            inflight = traces.invoking(trace_id)
            cancelled = traces.cancelled(trace_id)
        return FlowEvent(
            event_type,
            self._clock.time(),
            owner.name,
            getattr(owner, "node_id", owner.name),
            trace_id,
            attempt,
            latency_ms,
            ctx.queue_depth_in(),
            ctx.queue_depth_out(),
            ctx.outgoing_count(),
            self._maxsize,
            pending,
            inflight,
            cancelled,
            extra if extra is not None else {},
        )


def _stored(event: FlowEvent) -> Any:
    from penguiflow.state import StoredEvent  # contract C; loaded only with a store

    return StoredEvent.from_flow_event(event)


async def _save(store: Any, event: FlowEvent) -> None:
    await save_stored(store, _stored(event))


async def save_stored(store: Any, stored: Any) -> None:
    """Save a ``StoredEvent``; a failure is logged (``state_store_save_failed``), never raised."""
    try:
        await store.save_event(stored)
    except Exception as exc:
        LOGGER.exception(
            "state_store_save_failed",
            extra={
                "event": "state_store_save_failed",
                "trace_id": stored.trace_id,
                "kind": stored.kind,
                "exception": repr(exc),
            },
        )
