"""The A2A JSON-RPC 2.0 binding on ``POST /``: 1.0 and 0.3 method names.

The method name selects the version (the names do not overlap). Every error,
including a body that is not JSON, goes out as a JSON-RPC error with HTTP 200
(clients read the body only after checking the status).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from penguiflow._logging import get_logger

from ._body import DEFAULT_MAX_DEPTH, BodyError
from ._http import read_json, stream_subscription
from ._request import principal_of
from ._sse import data_event
from .codec import V0_3, V1_0, Codec
from .errors import (
    A2AError,
    body_error,
    internal_error,
    invalid_request,
    method_not_found,
    version_not_supported,
)
from .principals import Principal
from .push_config import render_config
from .service import A2AService
from .tasks import TaskEvent, TaskRecord

__all__ = ["METHODS", "JsonRpcRoutes", "check_version"]

_log = get_logger("penguiflow_a2a.jsonrpc")

#: method name -> (operation, codec)
METHODS: dict[str, tuple[str, Codec]] = {
    "SendMessage": ("send", V1_0),
    "SendStreamingMessage": ("stream", V1_0),
    "GetTask": ("get", V1_0),
    "CancelTask": ("cancel", V1_0),
    "SubscribeToTask": ("subscribe", V1_0),
    "ListTasks": ("list", V1_0),
    "CreateTaskPushNotificationConfig": ("push_set", V1_0),
    "GetTaskPushNotificationConfig": ("push_get", V1_0),
    "ListTaskPushNotificationConfigs": ("push_list", V1_0),
    "DeleteTaskPushNotificationConfig": ("push_delete", V1_0),
    "message/send": ("send", V0_3),
    "message/stream": ("stream", V0_3),
    "tasks/get": ("get", V0_3),
    "tasks/cancel": ("cancel", V0_3),
    "tasks/resubscribe": ("subscribe", V0_3),
    "tasks/pushNotificationConfig/set": ("push_set", V0_3),
    "tasks/pushNotificationConfig/get": ("push_get", V0_3),
    "tasks/pushNotificationConfig/list": ("push_list", V0_3),
    "tasks/pushNotificationConfig/delete": ("push_delete", V0_3),
}

_SUPPORTED_VERSIONS = {(1, 0), (0, 3)}


def check_version(header: str | None) -> None:
    """Accept a missing/empty ``A2A-Version`` or one naming 1.0 or 0.3.

    Raises:
        A2AError: ``-32009`` for any other explicit version.
    """
    if not header or not header.strip():
        return
    pieces = header.strip().split(".")
    try:
        major_minor = (int(pieces[0]), int(pieces[1]) if len(pieces) > 1 else 0)
    except ValueError:
        raise version_not_supported(header.strip()) from None
    if major_minor not in _SUPPORTED_VERSIONS:
        raise version_not_supported(header.strip())


def _request_id(body: Any) -> str | int | None:
    """The request's ``id`` when it is a valid one (string or integer), else ``None``."""
    if not isinstance(body, dict):
        return None
    request_id = body.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        return None
    if isinstance(request_id, str):
        try:
            request_id.encode("utf-8")
        except UnicodeEncodeError:
            # A lone surrogate (from a "\\ud800" escape): echoed, it would make
            # the reply invalid JSON for strict clients.
            return None
    return request_id


def _result(request_id: Any, result: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


class JsonRpcRoutes:
    """The JSON-RPC endpoint over one ``A2AService``.

    Args:
        service: the standard A2A operations.
        max_body_bytes: largest accepted request body.
        heartbeat_s: SSE heartbeat interval (see ``SSEWriter``).
        path: where the endpoint is mounted.
        max_json_depth: deepest accepted nesting of the JSON body.
    """

    def __init__(
        self,
        service: A2AService,
        *,
        max_body_bytes: int,
        heartbeat_s: float | None,
        path: str = "/",
        max_json_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.service = service
        self.path = path
        self._limit = max_body_bytes
        self._max_depth = max_json_depth
        self._heartbeat_s = heartbeat_s

    def add_to(self, app: web.Application) -> None:
        """Register ``POST <path>`` on ``app``."""
        app.router.add_post(self.path, self.handle)

    @staticmethod
    def error_response(request_id: Any, error: A2AError, codec: Codec = V1_0) -> web.Response:
        """A JSON-RPC error body with HTTP 200."""
        return web.json_response(error.jsonrpc(request_id, version=codec.version))

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Parse one JSON-RPC request and run its method."""
        try:
            body = await read_json(request, limit=self._limit, max_depth=self._max_depth)
        except BodyError as exc:
            # A refused value still names its request when the envelope decoded.
            return self.error_response(_request_id(exc.document), body_error(exc))
        if isinstance(body, list):
            return self.error_response(None, invalid_request("batch requests are not supported"))
        if not isinstance(body, dict):
            return self.error_response(None, invalid_request("request must be an object"))
        request_id = _request_id(body)
        if "id" in body and body["id"] is not None and request_id is None:
            return self.error_response(None, invalid_request("'id' must be a string or integer"))
        method = body.get("method")
        if body.get("jsonrpc") != "2.0" or not isinstance(method, str):
            return self.error_response(request_id, invalid_request())
        entry = METHODS.get(method)
        if entry is None:
            return self.error_response(request_id, method_not_found(method))
        operation, codec = entry
        params = body.get("params", {})
        try:
            check_version(request.headers.get("A2A-Version"))
            return await self._run(request, request_id, operation, codec, params)
        except A2AError as exc:
            return self.error_response(request_id, exc, codec)
        except Exception as exc:
            # Never a traceback or internals on the wire; the log has them.
            _log.exception("a2a_jsonrpc_internal_error", method=method, exception=repr(exc))
            return self.error_response(request_id, internal_error(), codec)

    async def _run(
        self, request: web.Request, request_id: Any, operation: str, codec: Codec, params: Any
    ) -> web.StreamResponse:
        service = self.service
        principal = principal_of(request)
        if operation == "send":
            blocking_key = "returnImmediately" if codec is V1_0 else "blocking"
            record = await service.send(
                params, principal, blocking_key=blocking_key, version=codec.version
            )
            return web.json_response(_result(request_id, codec.send_result(record)))
        if operation == "get":
            record, history_length = service.get(params, principal)
            task = codec.task(record, history_length=history_length)
            return web.json_response(_result(request_id, task))
        if operation == "list":
            return web.json_response(
                _result(request_id, codec.task_list(service.list_tasks(params, principal)))
            )
        if operation == "cancel":
            record = await service.cancel(params, principal)
            return web.json_response(_result(request_id, codec.task(record)))
        if operation.startswith("push_"):
            return web.json_response(
                _result(request_id, await self._push(operation, codec.version, params, principal))
            )
        if operation == "stream":
            record, queue = await service.stream(params, principal, version=codec.version)
        else:
            record, queue = service.subscribe(params, principal)
        return await self._stream(request, request_id, codec, record, queue)

    async def _push(self, operation: str, version: str, params: Any, principal: Principal) -> Any:
        service = self.service
        if operation == "push_set":
            return render_config(
                await service.set_push_config(params, principal, version=version), version
            )
        if operation == "push_get":
            return render_config(
                service.get_push_config(params, principal, version=version), version
            )
        if operation == "push_list":
            configs, next_token = service.list_push_configs(params, principal, version=version)
            rendered = [render_config(config, version) for config in configs]
            if version == "0.3":
                return rendered
            return {"configs": rendered, "nextPageToken": next_token}
        await service.delete_push_config(params, principal, version=version)
        return None

    async def _stream(
        self,
        request: web.Request,
        request_id: Any,
        codec: Codec,
        record: TaskRecord,
        queue: asyncio.Queue[TaskEvent | None],
    ) -> web.StreamResponse:
        return await stream_subscription(
            request,
            queue,
            first=data_event(_result(request_id, codec.stream_task(record))),
            frame=lambda event: data_event(_result(request_id, codec.stream_event(event))),
            unsubscribe=lambda: record.unsubscribe(queue),
            heartbeat_s=self._heartbeat_s,
        )
