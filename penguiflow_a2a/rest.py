"""The A2A 1.0 HTTP+JSON (REST) binding over the same ``A2AService``.

Routes: ``POST /message:send``, ``POST /message:stream``, ``GET /tasks/{id}``,
``POST /tasks/{id}:cancel``, ``GET|POST /tasks/{id}:subscribe`` and the push
configs: ``POST|GET /tasks/{id}/pushNotificationConfigs`` and
``GET|DELETE /tasks/{id}/pushNotificationConfigs/{configId}``. Errors
carry an HTTP status and a ``google.rpc.Status``-like body with an
``ErrorInfo`` reason, which the official client maps to its typed errors.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ._body import DEFAULT_MAX_DEPTH, BodyError
from ._http import read_json, stream_subscription
from ._request import principal_of
from ._sse import data_event
from .codec import V1_0
from .errors import A2AError, body_error, invalid_params
from .push_config import render_config
from .service import A2AService, Subscription

__all__ = ["RestRoutes"]

_TASK = "/tasks/{id:[^/:]+}"
_PUSH = _TASK + "/pushNotificationConfigs/{config:[^/]+}"


def _integer(raw: str, key: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise invalid_params(f"{key!r} must be an integer") from None


def _error(exc: A2AError) -> web.Response:
    return web.json_response(exc.rest(), status=exc.http_status)


class RestRoutes:
    """HTTP+JSON handlers over one ``A2AService``.

    Args:
        service: the standard A2A operations.
        max_body_bytes: largest accepted request body.
        heartbeat_s: SSE heartbeat interval (see ``SSEWriter``).
        max_json_depth: deepest accepted nesting of the JSON body.
    """

    def __init__(
        self,
        service: A2AService,
        *,
        max_body_bytes: int,
        heartbeat_s: float | None,
        max_json_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.service = service
        self._limit = max_body_bytes
        self._max_depth = max_json_depth
        self._heartbeat_s = heartbeat_s

    def add_to(self, app: web.Application) -> None:
        """Register the REST routes on ``app``."""
        app.router.add_post("/message:send", self.send)
        app.router.add_post("/message:stream", self.stream)
        app.router.add_get("/tasks", self.list)
        app.router.add_get(_TASK, self.get)
        app.router.add_post(_TASK + ":cancel", self.cancel)
        app.router.add_get(_TASK + ":subscribe", self.subscribe)
        app.router.add_post(_TASK + ":subscribe", self.subscribe)
        app.router.add_post(_TASK + "/pushNotificationConfigs", self.push_create)
        app.router.add_get(_TASK + "/pushNotificationConfigs", self.push_list)
        app.router.add_get(_PUSH, self.push_get)
        app.router.add_delete(_PUSH, self.push_delete)

    async def _body(self, request: web.Request) -> Any:
        try:
            return await read_json(request, limit=self._limit, max_depth=self._max_depth)
        except BodyError as exc:
            raise body_error(exc) from exc

    async def send(self, request: web.Request) -> web.StreamResponse:
        """``POST /message:send``."""
        try:
            params = await self._body(request)
            record = await self.service.send(
                params, principal_of(request), blocking_key="returnImmediately", version="1.0"
            )
            return web.json_response(V1_0.send_result(record))
        except A2AError as exc:
            return _error(exc)

    async def get(self, request: web.Request) -> web.StreamResponse:
        """``GET /tasks/{id}``."""
        params: dict[str, Any] = {"id": request.match_info["id"]}
        raw_length = request.query.get("historyLength")
        try:
            if raw_length is not None:
                params["historyLength"] = _integer(raw_length, "historyLength")
            record, history_length = self.service.get(params, principal_of(request))
            return web.json_response(V1_0.task(record, history_length=history_length))
        except A2AError as exc:
            return _error(exc)

    async def list(self, request: web.Request) -> web.StreamResponse:
        """``GET /tasks`` (ListTasks) with its parameters in the query string."""
        query = request.query
        params: dict[str, Any] = {
            k: query[k] for k in ("contextId", "status", "pageToken") if k in query
        }
        try:
            for key in ("pageSize", "historyLength"):
                if key in query:
                    params[key] = _integer(query[key], key)
            if "includeArtifacts" in query:
                params["includeArtifacts"] = query["includeArtifacts"].lower() == "true"
            page = self.service.list_tasks(params, principal_of(request))
            return web.json_response(V1_0.task_list(page))
        except A2AError as exc:
            return _error(exc)

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        """``POST /tasks/{id}:cancel``."""
        try:
            task = {"id": request.match_info["id"]}
            record = await self.service.cancel(task, principal_of(request))
            return web.json_response(V1_0.task(record))
        except A2AError as exc:
            return _error(exc)

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """``POST /message:stream``: bare StreamResponse JSON per SSE event."""
        try:
            params = await self._body(request)
            subscription = await self.service.stream(params, principal_of(request))
        except A2AError as exc:
            return _error(exc)
        return await self._sse(request, subscription)

    async def subscribe(self, request: web.Request) -> web.StreamResponse:
        """``GET|POST /tasks/{id}:subscribe``."""
        try:
            task = {"id": request.match_info["id"]}
            subscription = self.service.subscribe(task, principal_of(request))
        except A2AError as exc:
            return _error(exc)
        return await self._sse(request, subscription)

    async def push_create(self, request: web.Request) -> web.StreamResponse:
        """``POST /tasks/{id}/pushNotificationConfigs`` (a ``TaskPushNotificationConfig``)."""
        try:
            body = await self._body(request)
            if not isinstance(body, dict):
                raise invalid_params("the body must be a TaskPushNotificationConfig object")
            # The path names the task; a different taskId in the body does not.
            params = {**body, "taskId": request.match_info["id"]}
            config = await self.service.set_push_config(
                params, principal_of(request), version="1.0"
            )
            return web.json_response(render_config(config, "1.0"))
        except A2AError as exc:
            return _error(exc)

    async def push_get(self, request: web.Request) -> web.StreamResponse:
        """``GET /tasks/{id}/pushNotificationConfigs/{config}``."""
        params = {"taskId": request.match_info["id"], "id": request.match_info["config"]}
        try:
            config = self.service.get_push_config(params, principal_of(request), version="1.0")
            return web.json_response(render_config(config, "1.0"))
        except A2AError as exc:
            return _error(exc)

    async def push_list(self, request: web.Request) -> web.StreamResponse:
        """``GET /tasks/{id}/pushNotificationConfigs`` (``pageSize``, ``pageToken``)."""
        query = request.query
        params: dict[str, Any] = {"taskId": request.match_info["id"]}
        try:
            if "pageSize" in query:
                params["pageSize"] = _integer(query["pageSize"], "pageSize")
            if "pageToken" in query:
                params["pageToken"] = query["pageToken"]
            configs, next_token = self.service.list_push_configs(
                params, principal_of(request), version="1.0"
            )
            rendered = [render_config(config, "1.0") for config in configs]
            return web.json_response({"configs": rendered, "nextPageToken": next_token})
        except A2AError as exc:
            return _error(exc)

    async def push_delete(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /tasks/{id}/pushNotificationConfigs/{config}``."""
        params = {"taskId": request.match_info["id"], "id": request.match_info["config"]}
        try:
            await self.service.delete_push_config(params, principal_of(request), version="1.0")
            return web.json_response({})
        except A2AError as exc:
            return _error(exc)

    async def _sse(self, request: web.Request, subscription: Subscription) -> web.StreamResponse:
        record, queue = subscription

        return await stream_subscription(
            request,
            queue,
            first=data_event(V1_0.stream_task(record)),
            frame=lambda event: data_event(V1_0.stream_event(event)),
            unsubscribe=lambda: record.unsubscribe(queue),
            heartbeat_s=self._heartbeat_s,
        )
