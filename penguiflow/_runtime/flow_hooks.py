"""Trace cancellation and the hooks remote nodes and adapters call (runtime.md §11, §13, §14)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.events import LOGGER
from penguiflow._runtime.graph import OPEN_SEA
from penguiflow._runtime.node_actor import HANDLER, TraceInterrupt
from penguiflow.actors import SELF_LANE
from penguiflow.metrics import FlowEvent

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context
    from penguiflow._runtime.events import EventPipeline
    from penguiflow._runtime.tracing import TraceBook
    from penguiflow._runtime.transport import Transport
    from penguiflow.actors import ActorRef, Mailbox
    from penguiflow.node import Node

__all__ = ["FlowHooks"]


class FlowHooks:
    """The part of ``PenguiFlow`` that deals with traces, stores and observers."""

    _running: bool
    _traces: TraceBook
    _events: EventPipeline
    _io: Transport
    _contexts: dict[Any, Context]
    _mailboxes: dict[Node, Mailbox]
    _rookery: Mailbox
    _refs: dict[Node, ActorRef]
    _external: set[asyncio.Future[Any]]
    _middlewares: list[Callable[[FlowEvent], Awaitable[None]]]
    _state_store: Any

    def add_middleware(self, middleware: Callable[[FlowEvent], Awaitable[None]]) -> None:
        """Append a middleware; it receives every later event, even while running."""
        self._middlewares.append(middleware)

    def add_trace_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(trace_id)`` each time a trace becomes inactive.

        A trace is inactive once its last outstanding item finished (fetched from
        Rookery, dropped by ``cancel``, or ended by a node) and no invocation of it
        runs (runtime.md §10); ``stop()`` ends the traces still active. Called
        synchronously from the runtime: keep it short, never await. Its exceptions
        are logged (``trace_listener_error``) and swallowed. Observers such as
        ``penguiflow.otel`` use it to end a trace's span.

        .. versionadded:: 3.0
        """
        self._traces.listeners.append(listener)

    def remove_trace_listener(self, listener: Callable[[str], None]) -> None:
        """Stop calling ``listener`` (no-op if it was not added).

        .. versionadded:: 3.0
        """
        with contextlib.suppress(ValueError):
            self._traces.listeners.remove(listener)

    async def cancel(self, trace_id: str) -> bool:
        """Cancel one trace: drop its queued items and abort its running invocations.

        Returns:
            True if the trace was active, False otherwise (nothing happens).

        Raises:
            RuntimeError: the flow is not running.
        """
        if not self._running:
            raise RuntimeError("PenguiFlow is not running")
        traces = self._traces
        if not traces.active(trace_id):
            return False
        flag = traces.ensure_event(trace_id)
        if not flag.is_set():
            flag.set()
            await self._events.emit(
                "trace_cancel_start",
                self._contexts[OPEN_SEA],
                trace_id,
                extra={"pending": traces.pending(trace_id)},
            )
        reason = TraceInterrupt(trace_id)
        matches = reason.matches
        dropped: list[Any] = []
        for mailbox in (*self._mailboxes.values(), self._rookery):
            # Self lanes hold controller self-edges and the Rookery buffer, which
            # are edge queues too; the system lane is the kernel's own.
            lanes = (SELF_LANE, *range(mailbox.lanes))
            dropped.extend(d.item for d in mailbox.purge(matches, lanes=lanes))
        for ref in self._refs.values():
            ref.interrupt(reason, when=matches)
        # A stream cut before its ``done`` chunk would keep its sequence counter
        # for the life of the flow; the trace starts afresh once it is retired.
        for ctx in self._contexts.values():
            ctx._stream_seq.pop(trace_id, None)
        for item in dropped:
            await self._io.finish(item)
        # A node cancelling its own trace: interrupt() will not cancel the calling
        # task, so its actor aborts the node function itself. Last, after every
        # await here, so the CancelledError lands in the node's code.
        handler = HANDLER.get()
        if handler is not None:
            handler.cancel_self(self, trace_id)
        return True

    def ensure_trace_event(self, trace_id: str) -> asyncio.Event:
        """Return the trace's cancel flag, creating it if absent (set by ``cancel``)."""
        return self._traces.ensure_event(trace_id)

    def register_external_task(self, trace_id: str | None, task: asyncio.Future[Any]) -> None:
        """Track ``task`` so ``stop()`` cancels and awaits it; ignored without a trace."""
        if trace_id is None:
            return
        self._external.add(task)
        task.add_done_callback(self._external.discard)

    async def save_remote_binding(self, binding: Any) -> None:
        """Persist a remote binding in the state store (no-op without one)."""
        store = self._state_store
        if store is None:
            return
        try:
            await store.save_remote_binding(binding)
        except Exception as exc:
            LOGGER.exception(
                "state_store_binding_failed",
                extra={
                    "event": "state_store_binding_failed",
                    "trace_id": getattr(binding, "trace_id", None),
                    "context_id": getattr(binding, "context_id", None),
                    "task_id": getattr(binding, "task_id", None),
                    "agent_url": getattr(binding, "agent_url", None),
                    "exception": repr(exc),
                },
            )

    async def load_history(self, trace_id: str) -> Any:
        """Return the stored events of ``trace_id``.

        Raises:
            RuntimeError: the flow has no state store.
        """
        store = self._state_store
        if store is None:
            raise RuntimeError("PenguiFlow was created without a state_store")
        return await store.load_history(trace_id)

    async def record_remote_event(
        self,
        *,
        event: str,
        node: Node,
        context: Context,
        trace_id: str | None,
        latency_ms: float | None,
        level: int = logging.INFO,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Emit a ``FlowEvent`` named ``event`` for ``node`` (remote telemetry)."""
        await self._events.emit(
            event,
            context,
            trace_id,
            latency_ms=latency_ms,
            extra=dict(extra or {}),
            level=level,
        )
