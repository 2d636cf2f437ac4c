"""The inspector's aiohttp application: the page, its JSON API and the live SSE stream."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from html import escape
from typing import Any

from aiohttp import web

from penguiflow.inspector._metrics import metrics_handler
from penguiflow.inspector._page import CSP, PAGE, SCRIPT, STYLE
from penguiflow.inspector._state import flow_edges, flow_names, live_state
from penguiflow.inspector._svg import graph_svg
from penguiflow.inspector._traces import TraceLog

__all__ = [
    "ACTION_HEADER",
    "TRACE_LOG_KEY",
    "AuthHook",
    "StateSource",
    "build_app",
    "create_inspector_app",
]

#: ``auth(request) -> bool`` (or an awaitable of it), as for ``create_a2a_app``.
AuthHook = Callable[[web.Request], "bool | Awaitable[bool]"]

#: Actions (cancel) must carry this header: a cross-site form cannot set it, so a
#: page elsewhere cannot make a visitor's browser cancel traces.
ACTION_HEADER = "X-Penguiflow-Inspector"

TRACE_LOG_KEY = web.AppKey("penguiflow.inspector.traces", TraceLog)


class StateSource:
    """Where the page's data comes from: a live flow, or a store's history."""

    mode = "live"

    async def state(self) -> dict[str, Any]:
        """The page state."""
        raise NotImplementedError

    async def trace(self, trace_id: str) -> dict[str, Any] | None:
        """One trace's status and events, or None if unknown."""
        raise NotImplementedError

    async def cancel(self, trace_id: str) -> bool:
        """Cancel a trace (live only)."""
        raise NotImplementedError

    def svg(self) -> str:
        """The graph."""
        return ""

    async def wait_change(self, timeout: float) -> None:
        """Return when something may have changed, or after ``timeout`` seconds."""
        await asyncio.sleep(timeout)


class _LiveSource(StateSource):
    def __init__(self, flow: Any, traces: TraceLog) -> None:
        self._flow = flow
        self._traces = traces

    async def state(self) -> dict[str, Any]:
        return live_state(self._flow, self._traces)

    async def trace(self, trace_id: str) -> dict[str, Any] | None:
        record = self._traces.get(trace_id)
        if record is None:
            return None
        return {"trace_id": trace_id, "status": record.status, "events": list(record.events)}

    async def cancel(self, trace_id: str) -> bool:
        return bool(await self._flow.cancel(trace_id))

    def svg(self) -> str:
        capacities = {name: box.capacity for name, box in self._flow.mailboxes().items()}
        capacities["OpenSea"] = 0
        return graph_svg(flow_names(self._flow), flow_edges(self._flow), capacities=capacities)

    async def wait_change(self, timeout: float) -> None:
        changed = self._traces.changed
        # Mailbox depths change without any event (a stalled consumer): the
        # timeout bounds how stale the page can be.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await changed.wait()
        changed.clear()


def create_inspector_app(
    flow: Any,
    *,
    collector: Any = None,
    auth: AuthHook | None = None,
    max_traces: int = 100,
    refresh_s: float = 0.25,
) -> web.Application:
    """An aiohttp application showing ``flow`` live; mountable with ``add_subapp``.

    Routes: ``GET /`` (the page), ``GET /api/state``, ``GET /api/stream`` (SSE:
    the current state first, then each changed state), ``GET /api/traces/{id}``,
    ``POST /api/traces/{id}/cancel`` (needs the ``X-Penguiflow-Inspector``
    header and passes ``auth``), and ``GET /metrics`` with a ``collector``.

    Args:
        flow: the ``PenguiFlow`` to show (its events are recorded from now on).
        collector: a ``penguiflow.metrics.PrometheusCollector`` to serve.
        auth: called for the actions; a false result answers 401.
        max_traces: how many recent traces the page remembers.
        refresh_s: the longest the stream waits before re-reading mailbox depths.

    .. versionadded:: 3.0
    """
    traces = TraceLog(max_traces=max_traces)
    traces.attach(flow)
    app = build_app(_LiveSource(flow, traces), collector=collector, auth=auth, refresh_s=refresh_s)
    app[TRACE_LOG_KEY] = traces
    return app


def build_app(
    source: StateSource,
    *,
    collector: Any = None,
    auth: AuthHook | None = None,
    refresh_s: float = 0.25,
) -> web.Application:
    """The application over any ``StateSource`` (live flow or store history)."""
    hooks: Sequence[AuthHook] = (auth,) if auth is not None else ()
    app = web.Application()

    async def page(_: web.Request) -> web.Response:
        body = PAGE.format(mode=escape(source.mode), svg=source.svg())
        return _secured(web.Response(text=body, content_type="text/html"))

    async def stylesheet(_: web.Request) -> web.Response:
        return _secured(web.Response(text=STYLE, content_type="text/css"))

    async def script(_: web.Request) -> web.Response:
        return _secured(web.Response(text=SCRIPT, content_type="text/javascript"))

    async def state(_: web.Request) -> web.Response:
        return web.json_response(await source.state())

    async def trace(request: web.Request) -> web.Response:
        found = await source.trace(request.match_info["trace_id"])
        if found is None:
            return web.json_response({"error": "unknown trace"}, status=404)
        return web.json_response(found)

    async def cancel(request: web.Request) -> web.Response:
        if source.mode != "live":
            return web.json_response({"error": "read-only"}, status=405)
        if request.headers.get(ACTION_HEADER) != "1":
            return web.json_response({"error": f"missing {ACTION_HEADER} header"}, status=403)
        for hook in hooks:
            verdict = hook(request)
            if inspect.isawaitable(verdict):
                verdict = await verdict
            if not verdict:
                return web.json_response({"error": "unauthorized"}, status=401)
        try:
            cancelled = await source.cancel(request.match_info["trace_id"])
        except RuntimeError as exc:  # the flow is not running
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response({"cancelled": cancelled})

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        last: str | None = None
        try:
            while True:
                body = json.dumps(await source.state(), separators=(",", ":"))
                if body != last:
                    await response.write(f"event: state\ndata: {body}\n\n".encode())
                    last = body
                await source.wait_change(refresh_s)
        except ConnectionResetError:  # the page was closed
            pass
        return response

    app.router.add_get("/", page)
    app.router.add_get("/inspector.css", stylesheet)
    app.router.add_get("/inspector.js", script)
    app.router.add_get("/api/state", state)
    app.router.add_get("/api/stream", stream)
    app.router.add_get("/api/traces/{trace_id}", trace)
    app.router.add_post("/api/traces/{trace_id}/cancel", cancel)
    if collector is not None:
        app.router.add_get("/metrics", metrics_handler(collector))
    return app


def _secured(response: web.Response) -> web.Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
