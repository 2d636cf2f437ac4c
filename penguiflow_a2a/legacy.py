"""The PenguiFlow 2.2.5 HTTP routes: /agent, /message/send, /message/stream, /tasks/cancel.

Byte-compatible with the FastAPI app of 2.2.5: bodies are encoded as FastAPI
encoded them (``_legacy_json``), JSON errors are ``{"detail": ...}``, invalid
bodies answer 422 with a list of validation errors located under ``"body"``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from penguiflow._logging import get_logger

from ._body import DEFAULT_MAX_DEPTH, BodyError
from ._http import SSEWriter, read_json
from ._legacy_json import fastapi_dumps
from ._request import principal_of
from ._strict_json import NotJsonError
from .adapter import A2AServerAdapter, _LegacyEventStream
from .models import A2AMessagePayload, A2ARequestError, A2ATaskCancelRequest

__all__ = ["LegacyRoutes"]

_M = TypeVar("_M", bound=BaseModel)

_log = get_logger("penguiflow_a2a.legacy")


def _detail(status: int, detail: Any) -> web.Response:
    return web.json_response({"detail": detail}, status=status, dumps=fastapi_dumps)


def _body_error(exc: BodyError) -> web.Response:
    # A body that is not JSON, or that no reply could carry (non-finite
    # numbers, lone surrogates, too deep), is FastAPI's undecodable body: 422.
    if exc.kind == "too_large":
        return _detail(413, exc.message)
    if exc.kind == "timeout":
        return _detail(408, exc.message)
    if exc.kind == "content_type":
        return _detail(
            422,
            [
                {
                    "type": "model_attributes_type",
                    "loc": ["body"],
                    "msg": "Input should be a valid dictionary or object to extract fields from",
                    "input": None,
                }
            ],
        )
    return _detail(
        422,
        [
            {
                "type": "json_invalid",
                "loc": ["body"],
                "msg": "JSON decode error",
                "input": {},
                "ctx": {"error": exc.message},
            }
        ],
    )


def _validation_error(exc: ValidationError) -> web.Response:
    errors = json.loads(exc.json(include_url=False))
    for error in errors:
        error["loc"] = ["body", *error.get("loc", [])]
    return _detail(422, errors)


class LegacyRoutes:
    """Handlers of the 2.2.5 routes over one adapter.

    Args:
        adapter: the adapter serving the flow.
        max_body_bytes: largest accepted request body.
        heartbeat_s: SSE heartbeat interval (see ``SSEWriter``).
        max_json_depth: deepest accepted nesting of the JSON body.
    """

    def __init__(
        self,
        adapter: A2AServerAdapter,
        *,
        max_body_bytes: int,
        heartbeat_s: float | None,
        max_json_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        self.adapter = adapter
        self._limit = max_body_bytes
        self._max_depth = max_json_depth
        self._heartbeat_s = heartbeat_s

    def add_to(self, app: web.Application) -> None:
        """Register the four routes on ``app``."""
        app.router.add_get("/agent", self.agent)
        app.router.add_post("/message/send", self.send)
        app.router.add_post("/message/stream", self.stream)
        app.router.add_post("/tasks/cancel", self.cancel)

    async def agent(self, request: web.Request) -> web.Response:
        """``GET /agent``: the 2.2.5 card."""
        return web.json_response(self.adapter.agent_card.to_payload(), dumps=fastapi_dumps)

    async def _parse(self, request: web.Request, model: type[_M]) -> _M | web.Response:
        try:
            body = await read_json(request, limit=self._limit, max_depth=self._max_depth)
        except BodyError as exc:
            return _body_error(exc)
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            return _validation_error(exc)

    async def send(self, request: web.Request) -> web.Response:
        """``POST /message/send``."""
        payload = await self._parse(request, A2AMessagePayload)
        if isinstance(payload, web.Response):
            return payload
        try:
            reply = await self.adapter.handle_send(payload, principal=principal_of(request))
        except A2ARequestError as exc:
            return _detail(exc.status_code, exc.detail)
        try:
            # Encoded as FastAPI did in 2.2.5 (datetimes, UUIDs, ... become JSON text).
            text = fastapi_dumps(reply)
        except NotJsonError as exc:
            # A result no reply can carry is a failure of the flow: the
            # spec's 500 "flow execution failed: <error>", with a safe error.
            _log.warning("a2a_output_not_json", trace_id=reply.get("traceId"), detail=exc.detail)
            return _detail(500, f"flow execution failed: {exc}")
        return web.Response(text=text, content_type="application/json")

    async def stream(self, request: web.Request) -> web.StreamResponse:
        """``POST /message/stream``: server-sent events."""
        payload = await self._parse(request, A2AMessagePayload)
        if isinstance(payload, web.Response):
            return payload
        try:
            events, task_id, context_id = await self.adapter.stream(
                payload, principal=principal_of(request)
            )
        except A2ARequestError as exc:
            return _detail(exc.status_code, exc.detail)
        assert isinstance(events, _LegacyEventStream)
        writer = SSEWriter(request, heartbeat_s=self._heartbeat_s)
        try:
            await writer.open(
                {
                    "Content-Type": "text/event-stream; charset=utf-8",
                    "Cache-Control": "no-cache",
                    "X-A2A-Task-Id": task_id,
                    "X-A2A-Context-Id": context_id,
                }
            )
            await writer.pump(events)
        finally:
            await self._close(events)
        await writer.finish()
        return writer.response

    async def _close(self, events: _LegacyEventStream) -> None:
        abandoned = not events.session.finished
        await events.aclose()
        if abandoned:
            # The client left mid-stream: stop the work it started, so nothing
            # of this trace stays in the flow.
            with contextlib.suppress(Exception):
                await self.adapter.flow.cancel(events.session.trace_id)

    async def cancel(self, request: web.Request) -> web.Response:
        """``POST /tasks/cancel``."""
        body = await self._parse(request, A2ATaskCancelRequest)
        if isinstance(body, web.Response):
            return body
        try:
            reply = await self.adapter.cancel(body, principal=principal_of(request))
            return web.json_response(reply, dumps=fastapi_dumps)
        except A2ARequestError as exc:
            return _detail(exc.status_code, exc.detail)
