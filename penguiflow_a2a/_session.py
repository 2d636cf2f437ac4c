"""One request's view of the shared flow: its trace, its inbox, its cancel flag."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from pydantic import BaseModel

from penguiflow.errors import FlowError
from penguiflow.types import Message, StreamChunk

from ._routing import CANCELLED, OVERFLOW, SHUTDOWN, DispatchFailed, RookeryRouter

__all__ = [
    "SessionCancelled",
    "SessionOverflow",
    "SessionShutdown",
    "TraceSession",
    "chunk_of",
    "is_flow_error",
    "jsonable",
    "payload_of",
]


class SessionCancelled(Exception):
    """The request's trace was cancelled while the request waited."""


class SessionOverflow(Exception):
    """The request's consumer fell too far behind; its trace was cancelled."""


class SessionShutdown(Exception):
    """The adapter stopped while the request waited."""

    def __init__(self) -> None:
        super().__init__("flow is shutting down")


class TraceSession:
    """A reserved request: emits its message and yields its trace's Rookery items.

    Created by the adapter after validation and reservation; ``close`` (always
    called, by the adapter) releases the reservation.
    """

    def __init__(
        self,
        *,
        flow: Any,
        router: RookeryRouter,
        message: Message,
        task_id: str,
        context_id: str,
        target: Any,
        on_close: Callable[[TraceSession], None],
        principal: Hashable,
        idempotency_key: str | None = None,
    ) -> None:
        self.flow = flow
        self.message = message
        self.trace_id: str = message.trace_id
        self.task_id = task_id
        self.context_id = context_id
        #: who opened the request (``penguiflow_a2a.principals``)
        self.principal = principal
        self._router = router
        self._target = target
        self._on_close = on_close
        self._inbox = router.register(self.trace_id)
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False
        self.finished = False
        #: the key of the emit on a durable flow (the task id): a second emit does nothing
        self.idempotency_key = idempotency_key

    async def start(self) -> None:
        """Watch the trace's cancel flag, then emit the message into the flow."""
        flag = self.flow.ensure_trace_event(self.trace_id)
        if isinstance(flag, asyncio.Event):
            self._watcher = asyncio.get_running_loop().create_task(
                self._watch(flag), name=f"penguiflow-a2a-cancel-watch-{self.trace_id}"
            )
        if self.idempotency_key is None:
            await self.flow.emit(self.message, to=self._target)
        else:
            await self.flow.emit(
                self.message, to=self._target, idempotency_key=self.idempotency_key
            )

    async def _watch(self, flag: asyncio.Event) -> None:
        await flag.wait()
        self._inbox.put_nowait(CANCELLED)

    def cancel_local(self) -> None:
        """End the wait with the cancelled outcome (after ``flow.cancel``)."""
        self._inbox.put_nowait(CANCELLED)

    async def next_item(self) -> Any:
        """Return the trace's next Rookery item.

        Raises:
            SessionCancelled: the trace was cancelled.
            SessionOverflow: more items waited than the router's inbox limit.
            SessionShutdown: the adapter is stopping.
            Exception: the dispatcher could not fetch from the flow (its error).
        """
        item = await self._inbox.get()
        if item is CANCELLED:
            raise SessionCancelled
        if item is SHUTDOWN:
            raise SessionShutdown
        if item is OVERFLOW:
            raise SessionOverflow
        if isinstance(item, DispatchFailed):
            raise item.error
        return item

    def close(self) -> None:
        """Release the reservation and stop watching; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
        self._router.unregister(self.trace_id)
        self._on_close(self)

    async def aclose(self) -> None:
        """``close`` and wait for the cancel watcher to end."""
        self.close()
        if self._watcher is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher


def chunk_of(item: Any) -> StreamChunk | None:
    """The ``StreamChunk`` an item carries (a chunk ``Message`` or a bare chunk)."""
    if isinstance(item, StreamChunk):
        return item
    payload = getattr(item, "payload", None)
    return payload if isinstance(payload, StreamChunk) else None


def is_flow_error(item: Any) -> bool:
    """Whether the item is a ``FlowError`` delivered to Rookery."""
    return isinstance(item, FlowError)


def payload_of(item: Any) -> Any:
    """``item.payload`` for an envelope (anything with ``payload``), else the item."""
    return item.payload if hasattr(item, "payload") else item


def jsonable(value: Any) -> Any:
    """Convert a result into JSON-ready data (models dumped, containers copied)."""
    if isinstance(value, BaseModel):
        return value.model_dump()
    if isinstance(value, Mapping):
        return {key: jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(item) for item in value]
    return value
