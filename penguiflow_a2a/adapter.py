"""``A2AServerAdapter``: a running flow behind the A2A request/response contract.

The adapter owns the flow's lifecycle (``start``/``stop``), one dispatcher
task that drains Rookery (see ``_routing``), and the reservations of the
requests being served. It needs no HTTP stack; ``create_a2a_app`` puts it
behind aiohttp routes.

It stays one module past ~400 lines: the lifecycle, the reservations (new
and re-attached sessions) and the 2.2.5 operations share the adapter's state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from typing import Any

from pydantic import ValidationError

from penguiflow._logging import get_logger
from penguiflow.interrupts import Interrupt
from penguiflow.state import RemoteBinding
from penguiflow.types import Headers, Message

from ._routing import SHUTDOWN, RookeryRouter
from ._session import (
    SessionCancelled,
    SessionOverflow,
    SessionShutdown,
    TraceSession,
    chunk_of,
    is_flow_error,
    jsonable,
    payload_of,
)
from ._sse import chunk_event, named_event
from ._strict_json import NotJsonError, strict_value
from .models import A2AAgentCard, A2AMessagePayload, A2ARequestError, A2ATaskCancelRequest
from .principals import SHARED_PRINCIPAL, Principal

__all__ = ["INPUT_REQUIRED_ERROR", "STREAM_OVERFLOW_MESSAGE", "A2AServerAdapter"]

_log = get_logger("penguiflow_a2a.adapter")

#: The error text of a request whose client fell too far behind its stream.
STREAM_OVERFLOW_MESSAGE = "stream client too slow: too many undelivered events; trace cancelled"
#: The error of a 2.2.5-route request whose flow asked for input (``ctx.interrupt``):
#: those routes have no way to answer, so the trace is cancelled.
INPUT_REQUIRED_ERROR = {
    "code": "INPUT_REQUIRED",
    "message": "the flow asked for input; the 2.2.5 routes cannot answer (use an A2A task)",
}


class A2AServerAdapter:
    """Serve a ``PenguiFlow`` to A2A callers: message/send, message/stream, tasks/cancel.

    Args:
        flow: a ``PenguiFlow`` that is not running yet (or a duck-typed object
            with ``run``, ``stop``, ``emit``, ``fetch``, ``cancel``,
            ``save_remote_binding`` and ``ensure_trace_event``).
        agent_card: an ``A2AAgentCard`` or a mapping validated into one.
        agent_url: this agent's URL, recorded in every ``RemoteBinding``.
        target: forwarded as ``to=`` of ``flow.emit`` (default: all ingress nodes).
        registry: forwarded to ``flow.run(registry=...)``.
        default_headers: merged under each request's ``headers``.
        max_buffered_events: most items held for one request that has not
            taken them yet (``create_a2a_app(max_buffered_events=...)`` sets
            it); one more ends that request (see ``_routing``). Read by
            ``start()``.
    """

    def __init__(
        self,
        flow: Any,
        *,
        agent_card: A2AAgentCard | Mapping[str, Any],
        agent_url: str,
        target: Any = None,
        registry: Any = None,
        default_headers: Mapping[str, Any] | None = None,
        max_buffered_events: int = 1024,
    ) -> None:
        self.flow = flow
        self.agent_card = (
            agent_card
            if isinstance(agent_card, A2AAgentCard)
            else A2AAgentCard.model_validate(agent_card)
        )
        self.agent_url = agent_url
        self.target = target
        self.registry = registry
        self.default_headers: dict[str, Any] = dict(default_headers or {})
        self.max_buffered_events = max_buffered_events
        self._router: RookeryRouter | None = None
        self._by_task: dict[str, TraceSession] = {}
        self._by_trace: dict[str, TraceSession] = {}
        self._reserved_tasks: set[str] = set()

    # -- lifecycle ---------------------------------------------------------------------

    @property
    def started(self) -> bool:
        """Whether ``start()`` ran and ``stop()`` has not."""
        return self._router is not None

    async def start(self) -> None:
        """Run the flow and start the Rookery dispatcher; idempotent."""
        if self._router is not None:
            return
        self.flow.run(registry=self.registry)
        router = RookeryRouter(self.flow, inbox_limit=self.max_buffered_events)
        router.start()
        self._router = router

    async def stop(self) -> None:
        """Stop the dispatcher and the flow, failing waiting requests; idempotent."""
        router, self._router = self._router, None
        if router is None:
            return
        try:
            await router.stop()
            await self.flow.stop()
        finally:
            router.signal_all(SHUTDOWN)
            router.clear()
            self._by_task.clear()
            self._by_trace.clear()
            self._reserved_tasks.clear()

    # -- request preparation -------------------------------------------------------------

    async def open_session(
        self,
        request: A2AMessagePayload,
        *,
        principal: Principal = SHARED_PRINCIPAL,
        keyed: bool = False,
    ) -> TraceSession:
        """Validate and reserve a request of ``principal``; the caller must close it.

        ``keyed`` (A2A tasks on a durable flow): the message is emitted with the
        task id as ``idempotency_key``.

        Raises:
            A2ARequestError: 503 when not started, 422 for invalid headers, 409
                when the task or trace is already being served.
        """
        router = self._router
        if router is None:
            raise A2ARequestError(status_code=503, detail="flow is not running")
        try:
            headers = Headers(**{**self.default_headers, **dict(request.headers)})
        except ValidationError as exc:
            raise A2ARequestError(status_code=422, detail=str(exc)) from exc
        fields: dict[str, Any] = {"payload": request.payload, "headers": headers}
        if request.trace_id is not None:
            fields["trace_id"] = request.trace_id
        if request.deadline_s is not None:
            fields["deadline_s"] = request.deadline_s
        message = Message(**fields)
        message.meta.update(request.meta)
        trace_id = message.trace_id
        context_id = request.context_id or trace_id
        task_id = request.task_id or trace_id
        if task_id in self._reserved_tasks:
            raise A2ARequestError(status_code=409, detail=f"task {task_id!r} already active")
        # Reserve before awaiting the store, so a concurrent duplicate sees it.
        self._reserved_tasks.add(task_id)
        try:
            await self.flow.save_remote_binding(
                RemoteBinding(
                    trace_id=trace_id,
                    context_id=context_id,
                    task_id=task_id,
                    agent_url=self.agent_url,
                )
            )
            if self._router is not router:  # stopped while the binding was saved
                raise A2ARequestError(status_code=503, detail="flow is shutting down")
            if trace_id in self._by_trace:
                raise A2ARequestError(status_code=409, detail=f"trace {trace_id!r} already active")
        except BaseException:
            self._reserved_tasks.discard(task_id)
            raise
        key = task_id if keyed and getattr(self.flow, "durable", False) else None
        return self._register(router, message, task_id, context_id, principal, key)

    def attach_session(
        self, message: Message, *, task_id: str, context_id: str, principal: Principal
    ) -> TraceSession:
        """A session for a durable task read back after a restart; the caller must close it.

        Its ``start`` emits ``message`` again with ``task_id`` as idempotency
        key (nothing happens if the journal holds it) and it receives the
        trace's items as any session does.

        Raises:
            A2ARequestError: 503 when not started, 409 when the task or trace is served.

        .. versionadded:: 3.0
        """
        router = self._router
        if router is None:
            raise A2ARequestError(status_code=503, detail="flow is not running")
        trace_id = message.trace_id
        if task_id in self._reserved_tasks or trace_id in self._by_trace:
            raise A2ARequestError(status_code=409, detail=f"task {task_id!r} already active")
        self._reserved_tasks.add(task_id)
        return self._register(router, message, task_id, context_id, principal, task_id)

    def _register(
        self,
        router: Any,
        message: Message,
        task_id: str,
        context_id: str,
        principal: Principal,
        idempotency_key: str | None,
    ) -> TraceSession:
        """A session for ``message``, served from now on under its task and trace ids."""
        session = TraceSession(
            flow=self.flow,
            router=router,
            message=message,
            task_id=task_id,
            context_id=context_id,
            target=self.target,
            on_close=self._release,
            principal=principal,
            idempotency_key=idempotency_key,
        )
        self._by_task[task_id] = session
        self._by_trace[message.trace_id] = session
        return session

    def _release(self, session: TraceSession) -> None:
        if self._by_task.get(session.task_id) is session:
            del self._by_task[session.task_id]
            self._reserved_tasks.discard(session.task_id)
        if self._by_trace.get(session.trace_id) is session:
            del self._by_trace[session.trace_id]

    def session_for_task(
        self, task_id: str, principal: Principal = SHARED_PRINCIPAL
    ) -> TraceSession | None:
        """The active session of ``principal`` serving ``task_id``, if any."""
        session = self._by_task.get(task_id)
        if session is None or session.principal != principal:
            return None
        return session

    # -- message/send ----------------------------------------------------------------------

    async def handle_send(
        self, request: A2AMessagePayload, *, principal: Principal = SHARED_PRINCIPAL
    ) -> dict[str, Any]:
        """Run one request of ``principal`` to its first non-chunk result (``message/send``).

        Returns:
            ``{"status": "succeeded" | "cancelled" | "failed", "taskId", "contextId",
            "traceId", ...}`` as the spec lists.

        Raises:
            A2ARequestError: preparation errors; 503 when the adapter stops
                while waiting; 500 for unexpected failures.
        """
        session = await self.open_session(request, principal=principal)
        ids = {
            "taskId": session.task_id,
            "contextId": session.context_id,
            "traceId": session.trace_id,
        }
        try:
            await session.start()
            while True:
                item = await session.next_item()
                if type(item) is Interrupt:
                    await self.flow.cancel(session.trace_id)
                    error = {**INPUT_REQUIRED_ERROR, "trace_id": session.trace_id}
                    return {"status": "failed", **ids, "error": error}
                if chunk_of(item) is None:
                    return _send_reply(item, ids)
        except SessionCancelled:
            return {"status": "cancelled", **ids}
        except SessionOverflow as exc:
            raise A2ARequestError(status_code=503, detail=STREAM_OVERFLOW_MESSAGE) from exc
        except SessionShutdown as exc:
            raise A2ARequestError(status_code=503, detail="flow is shutting down") from exc
        except Exception as exc:
            # The 2.2.5 contract puts the flow's exception text in the detail
            # (spec/a2a.md); bodies the server cannot answer never get this far
            # (_body.decode_json refuses them), and the log has the traceback.
            _log.exception("a2a_send_failed", trace_id=session.trace_id, exception=repr(exc))
            raise A2ARequestError(status_code=500, detail=f"flow execution failed: {exc}") from exc
        finally:
            await session.aclose()

    # -- message/stream --------------------------------------------------------------------

    async def stream(
        self, request: A2AMessagePayload, *, principal: Principal = SHARED_PRINCIPAL
    ) -> tuple[AsyncIterator[bytes], str, str]:
        """Prepare a streamed request of ``principal``; returns ``(events, task_id, context_id)``.

        The message is emitted when iteration starts. Each element is one
        complete SSE event (UTF-8). Closing the iterator releases the
        reservation, also when it was never iterated.

        Raises:
            A2ARequestError: preparation errors (503, 422, 409).
        """
        session = await self.open_session(request, principal=principal)
        return _LegacyEventStream(session), session.task_id, session.context_id

    # -- tasks/cancel ----------------------------------------------------------------------

    async def cancel(
        self, request: A2ATaskCancelRequest, *, principal: Principal = SHARED_PRINCIPAL
    ) -> dict[str, Any]:
        """Cancel the trace serving ``request.task_id`` for ``principal`` (``tasks/cancel``).

        A task of another principal is answered as an unknown one
        (``cancelled: false``) and keeps running.

        Raises:
            A2ARequestError: 503 when the adapter is not started.
        """
        if self._router is None:
            raise A2ARequestError(status_code=503, detail="flow is not running")
        session = self.session_for_task(request.task_id, principal)
        if session is None:
            return {"taskId": request.task_id, "cancelled": False}
        cancelled = bool(await self.flow.cancel(session.trace_id))
        return {
            "taskId": request.task_id,
            "cancelled": cancelled,
            "traceId": session.trace_id,
            "contextId": session.context_id,
        }


def _send_reply(item: Any, ids: dict[str, str]) -> dict[str, Any]:
    """The ``handle_send`` reply for the trace's first non-chunk item."""
    if is_flow_error(item):
        error = item.to_payload()
        error.setdefault("trace_id", ids["traceId"])
        return {"status": "failed", **ids, "error": error}
    try:
        output = jsonable(payload_of(item))
    except RecursionError:
        # Raised as the spec's "flow execution failed: <error>", with a safe error.
        raise NotJsonError("a result", "nested too deep to convert") from None
    reply: dict[str, Any] = {"status": "succeeded", **ids, "output": output}
    meta = getattr(item, "meta", None)
    if meta:
        reply["meta"] = dict(meta)
    return reply


class _LegacyEventStream:
    """The 2.2.5 ``message/stream`` event sequence as an async iterator of bytes.

    A class rather than an async generator so that ``aclose()`` releases the
    reservation even when iteration never started.
    """

    def __init__(self, session: TraceSession) -> None:
        self.session = session
        self._events = self._produce()

    def __aiter__(self) -> _LegacyEventStream:
        return self

    async def __anext__(self) -> bytes:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Stop producing events and release the reservation."""
        await self._events.aclose()
        # A never-started generator skips its finally block, so release here too.
        await self.session.aclose()

    async def _produce(self) -> AsyncGenerator[bytes, None]:
        session = self.session
        ids = {"taskId": session.task_id, "contextId": session.context_id}
        unwanted = False
        try:
            try:
                await session.start()
                yield named_event("status", {"status": "accepted", **ids})
                while True:
                    item = await session.next_item()
                    if type(item) is Interrupt:
                        break
                    chunk = chunk_of(item)
                    if chunk is None:
                        break
                    meta = dict(chunk.meta)
                    meta.setdefault("taskId", session.task_id)
                    meta.setdefault("contextId", session.context_id)
                    yield chunk_event(chunk.model_copy(update={"meta": meta}))
                # Encoded here, so a result no frame can carry is an error event.
                if type(item) is Interrupt:
                    last = named_event("error", {**ids, **INPUT_REQUIRED_ERROR})
                    unwanted = True  # the session is cancelled when the stream closes
                elif is_flow_error(item):
                    error = strict_value(item.to_payload(), what="an error")
                    last = named_event("error", {**error, **ids})
                else:
                    output = strict_value(payload_of(item), what="a result", convert=jsonable)
                    last = named_event("artifact", {**ids, "output": output})
            except SessionCancelled:
                last = named_event(
                    "error",
                    {**ids, "code": "TRACE_CANCELLED", "message": "Trace cancelled"},
                )
            except SessionOverflow:
                # The router already cancelled the trace and freed the buffer.
                last = named_event(
                    "error", {**ids, "code": "STREAM_OVERFLOW", "message": STREAM_OVERFLOW_MESSAGE}
                )
            except asyncio.CancelledError:
                raise
            except NotJsonError as exc:
                # Nothing of the value was written: the stream ends with an
                # error event, and the rest of the trace is not wanted.
                _log.warning("a2a_output_not_json", trace_id=session.trace_id, detail=exc.detail)
                last = _internal_error_event(ids, exc)
                unwanted = True
            except Exception as exc:
                # As 2.2.5 (spec/a2a.md): the message is the exception's text.
                _log.exception("a2a_stream_failed", trace_id=session.trace_id, exception=repr(exc))
                last = _internal_error_event(ids, exc)
            yield last
            # An unfinished session is cancelled in the flow when the stream closes.
            session.finished = not unwanted
            yield named_event("done", ids)
        finally:
            await session.aclose()


def _internal_error_event(ids: dict[str, str], exc: Exception) -> bytes:
    message = str(exc) or type(exc).__name__
    try:
        return named_event("error", {**ids, "code": "INTERNAL_ERROR", "message": message})
    except NotJsonError:
        # The exception's text itself cannot be sent (a lone surrogate).
        return named_event(
            "error", {**ids, "code": "INTERNAL_ERROR", "message": type(exc).__name__}
        )
