"""The standard A2A operations over one adapter, shared by the JSON-RPC and REST bindings.

Each method validates its params, works on the task store and returns
neutral records; the bindings render them with a ``codec.Codec``. Errors are
``errors.A2AError`` (a JSON-RPC code the bindings translate).

Every operation takes the caller's ``principal`` (``principals.principal_of``)
and reaches tasks only through ``find`` or the store's principal-aware
lookups, so a task of another principal is "task not found" everywhere.

It stays one module past ~400 lines: one method per A2A operation, all over the
same store and the same principal checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterable
from typing import Any

from penguiflow._time import SYSTEM_CLOCK, Clock
from penguiflow.errors import InterruptTokenError

from ._task_recovery import recover_tasks
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
from .principals import Principal, UnpersistablePrincipal, encode_principal
from .push import PushSender, PushSettings
from .push_config import PushConfig, parse_config_03, parse_config_10
from .push_guard import WebhookGuard, WebhookRefused
from .task_store import task_store_for
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
        push_allow_hosts: webhook hosts, addresses or networks admitted by
            the SSRF guard although not public.
        push_settings: the limits of push delivery.

    When the adapter's flow is durable, tasks are written to its state store
    (``task_store.task_store_for``) and ``start`` brings them back
    (docs/a2a.md, "Durable tasks").

    Raises:
        TypeError: the flow is durable but its state store keeps no A2A tasks.
    """

    def __init__(
        self,
        adapter: A2AServerAdapter,
        *,
        clock: Clock = SYSTEM_CLOCK,
        max_tasks: int = 1000,
        cancel_wait_s: float = 5.0,
        push_allow_hosts: Iterable[str] = (),
        push_settings: PushSettings | None = None,
        max_buffered_events: int = 1024,
    ) -> None:
        self.adapter = adapter
        self.push = PushSender(WebhookGuard(push_allow_hosts), settings=push_settings, clock=clock)
        self.tasks = TaskManager(
            clock=clock,
            max_tasks=max_tasks,
            max_buffered=max_buffered_events,
            on_event=self.push.notify,
            store=task_store_for(adapter.flow),
            on_restore=self._restore_push,
        )
        self._cancel_wait_s = cancel_wait_s

    @property
    def durable(self) -> bool:
        """Whether tasks are written to the durable flow's state store."""
        return self.tasks.store is not None

    async def start(self) -> None:
        """Open the push sender's HTTP session; for a durable flow, bring the tasks back.

        Durable: the adapter is started, then ``flow.recover()`` is called and
        the stored tasks are restored (do not call ``recover()`` yourself).
        """
        await self.push.start()
        if self.durable:
            await self.adapter.start()
            await recover_tasks(self.tasks, self.adapter)

    async def stop(self) -> None:
        """Cancel the runners of unfinished tasks, then stop the push sender."""
        try:
            await self.tasks.stop()
        finally:
            # After the runners: their last (canceled) updates are counted as dropped.
            await self.push.stop()

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
            existing = self.lookup(task_id, principal)
            if (
                existing.interrupted
                and existing.session is not None
                and existing.resume_token is not None
            ):
                return await self._resume(existing, message)
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
        if self.durable:
            try:
                encode_principal(principal)
            except UnpersistablePrincipal as exc:
                raise internal_error(str(exc)) from exc
        try:
            self.tasks.reserve_slot()
            session = await self.adapter.open_session(
                request, principal=principal, keyed=self.durable
            )
        except TaskStoreFull as exc:
            raise internal_error(str(exc)) from exc
        except A2ARequestError as exc:
            raise _from_request_error(exc) from exc
        metadata = params.get("metadata")
        try:
            return await self.tasks.launch(
                session,
                user_message=message,
                metadata=dict(metadata) if isinstance(metadata, dict) else {},
                principal=principal,
            )
        except TaskStoreFull as exc:
            # Filled up while the session was being opened: give the reservation back.
            session.close()
            raise internal_error(str(exc)) from exc
        except BaseException:
            session.close()  # the store refused the task: nothing was started
            raise

    async def _resume(self, record: TaskRecord, message: dict[str, Any]) -> TaskRecord:
        """A message for an ``input-required`` task: resume its trace with the message."""
        try:
            await self.tasks.resume(record, message, message_payload(message))
        except InterruptTokenError as exc:
            raise unsupported_operation(f"Task {record.id} no longer waits for input") from exc
        return record

    async def _inline_push(self, params: Any, version: str) -> PushConfig | None:
        """The push config a send carries in ``configuration``, checked by the guard."""
        configuration = params.get("configuration") if isinstance(params, dict) else None
        if not isinstance(configuration, dict):
            return None
        key = "pushNotificationConfig" if version == "0.3" else "taskPushNotificationConfig"
        raw = configuration.get(key)
        if raw is None:
            return None
        where = f"configuration.{key}."
        parse = parse_config_03 if version == "0.3" else parse_config_10
        config = parse(raw, task_id="", where=where)
        await self._check_url(config.url)
        return config

    def _restore_push(self, record: TaskRecord, configs: list[PushConfig]) -> None:
        # A durable task read back after a restart: its webhooks hear of it again.
        for config in configs:
            self.push.register(record, config)

    async def _attach_inline(self, record: TaskRecord, config: PushConfig | None) -> None:
        # Called right after the launch, before the runner ran: no event is missed.
        if config is not None:
            self.push.register(
                record, dataclasses.replace(config, task_id=record.id, id=config.id or record.id)
            )
            await self._persist_configs(record)

    async def _persist_configs(self, record: TaskRecord) -> None:
        """Write a durable task's push configs (a restart registers them again).

        Raises:
            Exception: what the task store raised, as for a launch.
        """
        await self.tasks.persist(record)

    async def send(
        self, params: Any, principal: Principal, *, blocking_key: str, version: str = "1.0"
    ) -> TaskRecord:
        """SendMessage: start (or resume) the task and, unless told not to block, wait.

        A blocking send returns once the task is over or ``input-required``.

        ``blocking_key`` is where the version says "do not wait":
        ``returnImmediately`` (1.0, true means do not wait) or ``blocking``
        (0.3, false means do not wait). A push config in ``configuration``
        is registered before the task runs.
        """
        push = await self._inline_push(params, version)
        record = await self.open_task(params, principal)
        await self._attach_inline(record, push)
        configuration = params.get("configuration") if isinstance(params, dict) else None
        wait = True
        if isinstance(configuration, dict):
            flag = configuration.get(blocking_key)
            # 1.0: returnImmediately=true means do not wait; 0.3: blocking=false.
            wait = flag is not (blocking_key == "returnImmediately")
        if wait:
            await record.settled.wait()
        return record

    async def stream(
        self, params: Any, principal: Principal, *, version: str = "1.0"
    ) -> Subscription:
        """SendStreamingMessage: start the task and subscribe before it runs."""
        push = await self._inline_push(params, version)
        record = await self.open_task(params, principal)
        await self._attach_inline(record, push)
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
        return self.lookup(params["id"], principal)

    def lookup(self, task_id: str, principal: Principal) -> TaskRecord:
        """The task ``task_id`` of ``principal``: the one lookup every task operation goes through.

        Raises:
            A2AError: ``-32001`` for an unknown task or one of another principal
                (the same answer, so ids cannot be probed).
        """
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

    # -- push notification configs -------------------------------------------------------

    async def _check_url(self, url: str) -> None:
        try:
            await self.push.guard.check(url)
        except WebhookRefused as exc:
            raise invalid_params(f"push notification URL refused: {exc.reason}") from exc

    async def set_push_config(
        self, params: Any, principal: Principal, *, version: str
    ) -> PushConfig:
        """Create or replace a task's push config (1.0 Create..., 0.3 ``set``).

        1.0 params are a flat ``TaskPushNotificationConfig`` (``taskId``,
        ``id``, ``url``, ...); 0.3 params nest it under
        ``pushNotificationConfig``. The webhook then receives the task as it
        is now, and every later update.

        Raises:
            A2AError: ``-32602`` for invalid params, a refused URL or too many
                configs; ``-32001`` for an unknown task.
        """
        task_id = _task_id(params, "taskId")
        self.lookup(task_id, principal)
        if version == "0.3":
            config = parse_config_03(
                params.get("pushNotificationConfig"),
                task_id=task_id,
                where="pushNotificationConfig.",
            )
        else:
            config = parse_config_10(params, task_id=task_id)
        await self._check_url(config.url)
        # Looked up again: the task may have been evicted while the URL resolved.
        record = self.lookup(task_id, principal)
        limit = self.push.settings.max_configs_per_task
        if config.id not in record.push_configs and len(record.push_configs) >= limit:
            raise invalid_params(f"a task holds at most {limit} push notification configs")
        self.push.register(record, config)
        await self._persist_configs(record)
        return config

    def get_push_config(self, params: Any, principal: Principal, *, version: str) -> PushConfig:
        """One push config of a task (0.3 without a config id: the task's default one).

        Raises:
            A2AError: ``-32001`` unknown task, ``-32602`` unknown config.
        """
        record, config_id = self._config_ref(params, principal, version, required=version != "0.3")
        if config_id is None:
            config = record.push_configs.get(record.id) or next(
                iter(record.push_configs.values()), None
            )
        else:
            config = record.push_configs.get(config_id)
        if config is None:
            raise invalid_params(f"push notification config not found: {config_id or record.id}")
        return config

    def list_push_configs(
        self, params: Any, principal: Principal, *, version: str
    ) -> tuple[list[PushConfig], str]:
        """A task's push configs and the next page token (1.0 pages, 0.3 lists all).

        Raises:
            A2AError: ``-32001`` unknown task, ``-32602`` bad paging.
        """
        key = "id" if version == "0.3" else "taskId"
        record = self.lookup(_task_id(params, key), principal)
        configs = list(record.push_configs.values())
        if version == "0.3":
            return configs, ""
        page_size = _optional(params, "pageSize", int) or 100
        token = _optional(params, "pageToken", str) or "0"
        if not token.isdigit() or not 1 <= page_size <= 100:
            raise invalid_params("invalid 'pageToken' or 'pageSize' (1-100)")
        start = int(token)
        end = start + page_size
        return configs[start:end], str(end) if end < len(configs) else ""

    async def delete_push_config(self, params: Any, principal: Principal, *, version: str) -> None:
        """Delete a push config; its undelivered updates are dropped.

        Raises:
            A2AError: ``-32001`` unknown task, ``-32602`` unknown config.
        """
        record, config_id = self._config_ref(params, principal, version, required=True)
        if not self.push.unregister(record, str(config_id)):
            raise invalid_params(f"push notification config not found: {config_id}")
        await self._persist_configs(record)

    def _config_ref(
        self, params: Any, principal: Principal, version: str, *, required: bool
    ) -> tuple[TaskRecord, str | None]:
        task_key, config_key = (
            ("id", "pushNotificationConfigId")
            if version == "0.3"
            else (
                "taskId",
                "id",
            )
        )
        record = self.lookup(_task_id(params, task_key), principal)
        config_id = params.get(config_key)
        if config_id is None and not required:
            return record, None
        if not isinstance(config_id, str) or not config_id:
            raise invalid_params(f"{config_key!r} must be a non-empty string")
        return record, config_id


def _task_id(params: Any, key: str) -> str:
    if not isinstance(params, dict):
        raise invalid_params("params must be an object")
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise invalid_params(f"{key!r} must be a non-empty string")
    return value


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
