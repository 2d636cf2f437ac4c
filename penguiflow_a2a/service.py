"""The standard A2A operations over one adapter, shared by the JSON-RPC and REST bindings.

Each method validates its params, works on the task store and returns
neutral records; the bindings render them with a ``codec.Codec``. Errors are
``errors.A2AError`` (a JSON-RPC code the bindings translate).

Every operation takes the caller's ``principal`` (``principals.principal_of``)
and reaches tasks only through ``find`` or the store's principal-aware
lookups, so a task of another principal is "task not found" everywhere.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from penguiflow._time import SYSTEM_CLOCK, Clock

from .adapter import A2AServerAdapter
from .codec import V1_0, message_payload, parse_message
from .errors import (
    A2AError,
    internal_error,
    invalid_params,
    task_not_cancelable,
    task_not_found,
    unsupported_operation,
)
from .models import A2AMessagePayload, A2ARequestError, A2ATaskCancelRequest
from .principals import Principal
from .tasks import TaskEvent, TaskManager, TaskPage, TaskRecord, TaskStoreFull

__all__ = ["A2AService", "Subscription"]

Subscription = tuple[TaskRecord, "asyncio.Queue[TaskEvent | None]"]


class A2AService:
    """SendMessage, streaming, GetTask, CancelTask and SubscribeToTask for one adapter.

    Args:
        adapter: the ``A2AServerAdapter`` whose flow serves the tasks.
        clock: source of status timestamps.
        max_tasks: capacity of the in-memory task store.
        cancel_wait_s: how long CancelTask waits for the task to settle.
        max_buffered_events: most unread events per stream subscriber.
    """

    def __init__(
        self,
        adapter: A2AServerAdapter,
        *,
        clock: Clock = SYSTEM_CLOCK,
        max_tasks: int = 1000,
        cancel_wait_s: float = 5.0,
        max_buffered_events: int = 1024,
    ) -> None:
        self.adapter = adapter
        self.tasks = TaskManager(clock=clock, max_tasks=max_tasks, max_buffered=max_buffered_events)
        self._cancel_wait_s = cancel_wait_s

    async def stop(self) -> None:
        """Cancel the runners of unfinished tasks."""
        await self.tasks.stop()

    # -- sending -----------------------------------------------------------------------------

    async def open_task(self, params: Any, principal: Principal) -> TaskRecord:
        """Validate a SendMessageRequest and start its task, owned by ``principal``.

        Raises:
            A2AError: invalid params, unknown or finished ``taskId``, a full
                store, or the adapter refusing the request.
        """
        if not isinstance(params, dict):
            raise invalid_params("params must be an object")
        message = parse_message(params.get("message"))
        task_id = message.get("taskId")
        if task_id is not None:
            existing = self.tasks.get(task_id, principal)
            if existing is None:
                raise task_not_found(task_id)
            state = "a terminal state" if existing.terminal else "progress"
            raise unsupported_operation(f"Task {task_id} is in {state}; send a new message")
        meta = dict(message.get("metadata") or {})
        headers = meta.pop("headers", None) or {}
        if not isinstance(headers, dict):
            raise invalid_params("'message.metadata.headers' must be an object")
        tenant = params.get("tenant")
        if isinstance(tenant, str) and tenant:
            headers = {**headers, "tenant": tenant}
        request = A2AMessagePayload(
            payload=message_payload(message),
            headers=headers,
            meta=meta,
            context_id=message.get("contextId"),
        )
        try:
            self.tasks.reserve_slot()
            session = await self.adapter.open_session(request, principal=principal)
        except TaskStoreFull as exc:
            raise internal_error(str(exc)) from exc
        except A2ARequestError as exc:
            raise _from_request_error(exc) from exc
        metadata = params.get("metadata")
        try:
            return self.tasks.launch(
                session,
                user_message=message,
                metadata=dict(metadata) if isinstance(metadata, dict) else {},
                principal=principal,
            )
        except TaskStoreFull as exc:
            # Filled up while the session was being opened: give the reservation back.
            session.close()
            raise internal_error(str(exc)) from exc

    async def send(self, params: Any, principal: Principal, *, blocking_key: str) -> TaskRecord:
        """SendMessage: start the task and, unless told not to block, wait for its end.

        ``blocking_key`` is where the version says "do not wait":
        ``returnImmediately`` (1.0, true means do not wait) or ``blocking``
        (0.3, false means do not wait).
        """
        record = await self.open_task(params, principal)
        configuration = params.get("configuration") if isinstance(params, dict) else None
        wait = True
        if isinstance(configuration, dict):
            flag = configuration.get(blocking_key)
            # 1.0: returnImmediately=true means do not wait; 0.3: blocking=false.
            wait = flag is not (blocking_key == "returnImmediately")
        if wait:
            await record.done.wait()
        return record

    async def stream(self, params: Any, principal: Principal) -> Subscription:
        """SendStreamingMessage: start the task and subscribe before it runs."""
        record = await self.open_task(params, principal)
        # The runner has not run yet (it was only scheduled), so no event is missed.
        return record, record.subscribe()

    # -- task operations ---------------------------------------------------------------------

    def find(self, params: Any, principal: Principal) -> TaskRecord:
        """The task of ``principal`` named by ``params["id"]``.

        The one lookup of every task method (push-notification configs
        included): a task of another principal is ``-32001`` like an unknown id.

        Raises:
            A2AError: ``-32602`` without a string id, ``-32001`` for an unknown
                one or one of another principal.
        """
        if not isinstance(params, dict) or not isinstance(params.get("id"), str):
            raise invalid_params("'id' must be a string")
        task_id = params["id"]
        record = self.tasks.get(task_id, principal)
        if record is None:
            raise task_not_found(task_id)
        return record

    def get(self, params: Any, principal: Principal) -> tuple[TaskRecord, int | None]:
        """GetTask: the task and the requested history length."""
        history_length = params.get("historyLength") if isinstance(params, dict) else None
        if history_length is not None and (
            not isinstance(history_length, int) or isinstance(history_length, bool)
        ):
            raise invalid_params("'historyLength' must be an integer")
        return self.find(params, principal), history_length

    async def cancel(self, params: Any, principal: Principal) -> TaskRecord:
        """CancelTask: cancel the trace and wait (bounded) until the task is canceled.

        Raises:
            A2AError: ``-32001`` unknown task, ``-32002`` already terminal.
        """
        record = self.find(params, principal)
        if record.terminal:
            raise task_not_cancelable(record.id, record.state)
        session = record.session
        try:
            await self.adapter.cancel(A2ATaskCancelRequest(task_id=record.id), principal=principal)
        except A2ARequestError as exc:
            raise _from_request_error(exc) from exc
        if session is not None:
            # Also when the runtime no longer counts the trace as active (its
            # result is already routed): the task ends canceled, not hanging.
            session.cancel_local()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._cancel_wait_s):
                await record.done.wait()
        return record

    def list_tasks(self, params: Any, principal: Principal) -> TaskPage:
        """ListTasks: the stored tasks of ``principal``, most recent first, filtered and paged.

        Params (all optional): ``contextId``, ``status`` (``TASK_STATE_*``),
        ``pageSize`` (1-100, default 50), ``pageToken`` (from the previous
        page), ``historyLength``, ``includeArtifacts``.

        Raises:
            A2AError: ``-32602`` for params of the wrong type or a bad page token.
        """
        params = {} if params is None else params
        if not isinstance(params, dict):
            raise invalid_params("params must be an object")
        context_id = _optional(params, "contextId", str)
        status = _optional(params, "status", str)
        page_size = _optional(params, "pageSize", int)
        page_size = 50 if page_size is None else page_size
        history_length = _optional(params, "historyLength", int)
        artifacts = bool(_optional(params, "includeArtifacts", bool))
        token = _optional(params, "pageToken", str) or "0"
        if not token.isdigit() or not 1 <= page_size <= 100:
            raise invalid_params("invalid 'pageToken' or 'pageSize' (1-100)")
        records = [
            r
            for r in self.tasks.records(principal)
            if (context_id is None or r.context_id == context_id)
            and (status is None or V1_0.state(r.state) == status)
        ]
        start = int(token)
        end = start + page_size
        return TaskPage(
            records=records[start:end],
            next_page_token=str(end) if end < len(records) else "",
            page_size=page_size,
            total_size=len(records),
            history_length=history_length,
            artifacts=artifacts,
        )

    def subscribe(self, params: Any, principal: Principal) -> Subscription:
        """SubscribeToTask: the task and a queue of its later events.

        Raises:
            A2AError: ``-32001`` unknown task, ``-32004`` task already terminal.
        """
        record = self.find(params, principal)
        if record.terminal:
            raise unsupported_operation(f"Task {record.id} is in terminal state {record.state}")
        return record, record.subscribe()


def _optional(params: dict[str, Any], key: str, kind: type) -> Any:
    value = params.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise invalid_params(f"{key!r} must be of type {kind.__name__}")
    return value


def _from_request_error(exc: A2ARequestError) -> A2AError:
    if exc.status_code == 422:
        return invalid_params(exc.detail)
    if exc.status_code == 409:
        return unsupported_operation(exc.detail)
    return internal_error(exc.detail)
