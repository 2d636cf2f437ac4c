"""Assembly of the aiohttp application (imported by ``create_a2a_app`` only)."""

from __future__ import annotations

import contextlib
import hmac
import html
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from penguiflow._logging import get_logger
from penguiflow._time import Clock
from penguiflow._tracecontext import continued

from ._http import BODY_TIMEOUT_KEY, close_if_timed_out
from ._request import PRINCIPAL_KEY
from .adapter import A2AServerAdapter
from .auth import AuthHook
from .card import standard_agent_card
from .errors import A2AError, internal_error
from .jsonrpc import JsonRpcRoutes
from .legacy import LegacyRoutes
from .principals import admit
from .push import PushSettings
from .rest import RestRoutes
from .service import A2AService

__all__ = ["ADAPTER_KEY", "SERVICE_KEY", "build_app"]

_log = get_logger("penguiflow_a2a.app")

ADAPTER_KEY = web.AppKey("penguiflow_a2a.adapter", A2AServerAdapter)
SERVICE_KEY = web.AppKey("penguiflow_a2a.service", A2AService)

_CARD_PATHS = frozenset({"/agent", "/.well-known/agent-card.json", "/.well-known/agent.json"})
_RPC_PATH = "/"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_rest(path: str) -> bool:
    return path.startswith("/message:") or (path.startswith("/tasks/") and path != "/tasks/cancel")


def _unauthorized(path: str) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"}
    if path == _RPC_PATH:
        body: dict[str, Any] = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32600, "message": "authentication required"},
        }
    elif _is_rest(path):
        body = {
            "error": {
                "code": 401,
                "status": "UNAUTHENTICATED",
                "message": "authentication required",
            }
        }
    else:
        body = {"detail": "Not authenticated"}
    return web.json_response(body, status=401, headers=headers)


def _internal(path: str) -> web.Response:
    if path == _RPC_PATH:
        error: A2AError = internal_error()
        return web.json_response(error.jsonrpc(None))
    if _is_rest(path):
        error = internal_error()
        return web.json_response(error.rest(), status=500)
    return web.json_response({"detail": "Internal Server Error"}, status=500)


_REST_STATUS = {404: "NOT_FOUND", 405: "UNIMPLEMENTED", 413: "INVALID_ARGUMENT"}


def _http_error(path: str, exc: web.HTTPException) -> web.Response:
    if _is_rest(path):
        body: dict[str, Any] = {
            "error": {
                "code": exc.status,
                "status": _REST_STATUS.get(exc.status, "INVALID_ARGUMENT"),
                "message": exc.reason,
            }
        }
    else:
        # FastAPI's shape in 2.2.5 (e.g. {"detail": "Not Found"}).
        body = {"detail": exc.reason}
    headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
    return web.json_response(body, status=exc.status, headers=headers)


def _bearer_hook(token: str) -> AuthHook:
    expected = f"Bearer {token}".encode()

    def check(request: web.Request) -> bool:
        given = request.headers.get("Authorization", "").encode()
        return hmac.compare_digest(given, expected)

    return check


def _guard(hooks: list[AuthHook]) -> Any:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        try:
            if hooks and path not in _CARD_PATHS:
                verdicts = []
                for hook in hooks:
                    verdict = hook(request)
                    if inspect.isawaitable(verdict):
                        verdict = await verdict
                    verdicts.append(verdict)
                principal = admit(verdicts)
                if principal is None:
                    return _unauthorized(path)
                # Every task lookup of the handlers takes this principal.
                request[PRINCIPAL_KEY] = principal
            # A caller's W3C traceparent becomes the parent of the traces it starts.
            with continued(request.headers):
                response = await handler(request)
            await close_if_timed_out(request, response)
            return response
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            # aiohttp's own refusals (404, 405, ...) are text/plain; every
            # reply of this server is JSON, shaped as its route family expects.
            return _http_error(path, exc)
        except Exception as exc:
            # The client gets the protocol's generic error; the log gets the rest.
            _log.exception("a2a_request_failed", path=path, exception=repr(exc))
            return _internal(path)

    return guard


def _openapi(adapter: A2AServerAdapter, rest: bool) -> dict[str, Any]:
    card = adapter.agent_card

    def op(summary: str) -> dict[str, Any]:
        return {"summary": summary, "responses": {"200": {"description": "OK"}}}

    paths: dict[str, Any] = {
        "/agent": {"get": op("PenguiFlow agent card")},
        "/message/send": {"post": op("Send a message and wait for the result")},
        "/message/stream": {"post": op("Send a message and stream server-sent events")},
        "/tasks/cancel": {"post": op("Cancel a running task")},
        "/.well-known/agent-card.json": {"get": op("A2A agent card")},
        "/": {"post": op("A2A JSON-RPC 2.0 endpoint (1.0 and 0.3 methods)")},
    }
    if rest:
        paths["/message:send"] = {"post": op("A2A HTTP+JSON SendMessage")}
        paths["/message:stream"] = {"post": op("A2A HTTP+JSON SendStreamingMessage")}
        paths["/tasks/{id}"] = {"get": op("A2A HTTP+JSON GetTask")}
        paths["/tasks/{id}/pushNotificationConfigs"] = {
            "post": op("A2A HTTP+JSON CreateTaskPushNotificationConfig"),
            "get": op("A2A HTTP+JSON ListTaskPushNotificationConfigs"),
        }
        paths["/tasks/{id}/pushNotificationConfigs/{configId}"] = {
            "get": op("A2A HTTP+JSON GetTaskPushNotificationConfig"),
            "delete": op("A2A HTTP+JSON DeleteTaskPushNotificationConfig"),
        }
    return {
        "openapi": "3.1.0",
        "info": {"title": card.name, "description": card.description, "version": card.version},
        "paths": paths,
    }


_DOCS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title></head>
<body><h1>{title}</h1><p>{description}</p>
<p>OpenAPI schema: <a href="/openapi.json">/openapi.json</a>.
A2A agent card: <a href="/.well-known/agent-card.json">/.well-known/agent-card.json</a>.</p>
</body></html>
"""


def build_app(
    adapter: A2AServerAdapter,
    *,
    include_docs: bool,
    max_body_bytes: int,
    max_json_depth: int,
    body_timeout_s: float | None,
    auth: AuthHook | None,
    bearer_token: str | None,
    rest: bool,
    max_tasks: int,
    sse_heartbeat_s: float | None,
    clock: Clock,
    push_allow_hosts: Sequence[str] = (),
    push_settings: PushSettings | None = None,
    max_buffered_events: int,
    collector: Any = None,
) -> web.Application:
    """Assemble the application (see ``create_a2a_app``)."""
    hooks: list[AuthHook] = []
    if bearer_token is not None:
        hooks.append(_bearer_hook(bearer_token))
    if auth is not None:
        hooks.append(auth)
    app = web.Application(middlewares=[_guard(hooks)], client_max_size=max_body_bytes)
    # The router's inboxes (read at adapter.start()) and the task subscribers
    # share the one bound.
    adapter.max_buffered_events = max_buffered_events
    service = A2AService(
        adapter,
        clock=clock,
        max_tasks=max_tasks,
        push_allow_hosts=push_allow_hosts,
        push_settings=push_settings,
        max_buffered_events=max_buffered_events,
    )
    app[ADAPTER_KEY] = adapter
    app[SERVICE_KEY] = service
    app[BODY_TIMEOUT_KEY] = (body_timeout_s, clock)
    card = adapter.agent_card
    # 2.2.5 programs read app.title (FastAPI); plain attributes on the application.
    for name, value in (
        ("title", card.name),
        ("description", card.description),
        ("version", card.version),
    ):
        setattr(app, name, value)

    async def on_startup(_: web.Application) -> None:
        await service.start()
        await adapter.start()

    async def on_shutdown(_: web.Application) -> None:
        # on_shutdown runs before aiohttp waits for open connections, so open
        # streams end now (with the shutdown error) instead of holding it up.
        try:
            await adapter.stop()
        finally:
            await service.stop()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)

    @contextlib.asynccontextmanager
    async def lifespan_context(_: web.Application) -> AsyncIterator[None]:
        # 2.2.5 programs drove FastAPI's lifespan by hand in tests.
        await on_startup(app)
        try:
            yield
        finally:
            await on_shutdown(app)

    setattr(app.router, "lifespan_context", lifespan_context)  # noqa: B010 - not declared on UrlDispatcher

    async def agent_card(request: web.Request) -> web.Response:
        base_url = f"{request.scheme}://{request.host}/"
        return web.json_response(standard_agent_card(card, base_url=base_url, rest=rest))

    app.router.add_get("/.well-known/agent-card.json", agent_card)
    app.router.add_get("/.well-known/agent.json", agent_card)
    heartbeat_s = sse_heartbeat_s
    LegacyRoutes(
        adapter,
        max_body_bytes=max_body_bytes,
        max_json_depth=max_json_depth,
        heartbeat_s=heartbeat_s,
    ).add_to(app)
    JsonRpcRoutes(
        service,
        max_body_bytes=max_body_bytes,
        max_json_depth=max_json_depth,
        heartbeat_s=heartbeat_s,
    ).add_to(app)
    if rest:
        RestRoutes(
            service,
            max_body_bytes=max_body_bytes,
            max_json_depth=max_json_depth,
            heartbeat_s=heartbeat_s,
        ).add_to(app)
    if include_docs:
        schema = _openapi(adapter, rest)

        async def openapi(_: web.Request) -> web.Response:
            return web.json_response(schema)

        async def docs(_: web.Request) -> web.Response:
            page = _DOCS_HTML.format(
                title=html.escape(card.name), description=html.escape(card.description)
            )
            return web.Response(text=page, content_type="text/html")

        app.router.add_get("/openapi.json", openapi)
        app.router.add_get("/docs", docs)
    if collector is not None:
        from penguiflow.inspector import metrics_handler  # aiohttp is loaded already

        app.router.add_get("/metrics", metrics_handler(collector))
    return app
