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

from penguiflow import hosting
from penguiflow.errors import InterruptTokenError, JournalError
from penguiflow.inspector._interrupts import interrupt_id
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

#: Actions (cancel, resume) must carry this header: a cross-site form cannot set it, so a
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

    async def resume(self, interrupt: str, value: Any) -> None:
        """Resume the parked interrupt the page names ``interrupt`` with ``value`` (live only).

        Raises:
            LookupError: no such interrupt waits (resumed, withdrawn, never parked).
            InterruptTokenError: it was resumed meanwhile (or is being resumed).
            RuntimeError: the flow is not running.
        """
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
        self._resuming: set[str] = set()  # ids whose resume is under way

    async def state(self) -> dict[str, Any]:
        return live_state(self._flow, self._traces)

    async def trace(self, trace_id: str) -> dict[str, Any] | None:
        record = self._traces.get(trace_id)
        if record is None:
            return None
        status = record.status
        if status == "running" and any(
            p.trace_id == trace_id for p in hosting.parked_interrupts(self._flow)
        ):
            status = "parked"
        return {"trace_id": trace_id, "status": status, "events": list(record.events)}

    async def cancel(self, trace_id: str) -> bool:
        return bool(await self._flow.cancel(trace_id))

    async def resume(self, interrupt: str, value: Any) -> None:
        if not hosting.is_running(self._flow):
            raise RuntimeError("PenguiFlow is not running")
        tokens = {interrupt_id(p.token): p.token for p in hosting.parked_interrupts(self._flow)}
        token = tokens.get(interrupt)
        if token is None:
            raise LookupError(interrupt)
        if interrupt in self._resuming:
            # A durable resume awaits its journal while the interrupt is still
            # listed: a second click meanwhile must not reach flow.resume.
            raise InterruptTokenError("this interrupt is being resumed", token=token)
        self._resuming.add(interrupt)
        try:
            await self._flow.resume(token, value)
        finally:
            self._resuming.discard(interrupt)
            self._traces.changed.set()  # the parked list changed: tell the stream

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
    ``POST /api/traces/{id}/cancel`` and ``POST /api/interrupts/{id}/resume``
    (the body: the JSON value ``ctx.interrupt`` returns; both need the
    ``X-Penguiflow-Inspector`` header and pass ``auth``), and ``GET /metrics``
    with a ``collector``. The state lists the parked interrupts
    (``hosting.parked_interrupts``) by an id that is not their token.

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

    async def refused(request: web.Request) -> web.Response | None:
        """Why an action may not run (read-only, no action header, auth), or None."""
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
        return None

    async def cancel(request: web.Request) -> web.Response:
        refusal = await refused(request)
        if refusal is not None:
            return refusal
        try:
            cancelled = await source.cancel(request.match_info["trace_id"])
        except RuntimeError as exc:  # the flow is not running
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response({"cancelled": cancelled})

    async def resume(request: web.Request) -> web.Response:
        refusal = await refused(request)
        if refusal is not None:
            return refusal
        try:
            # Bytes, not request.text(): JSON is UTF-8 whatever charset the client names.
            value = json.loads(await request.read())
        except ValueError:  # not JSON, or not UTF-8
            return web.json_response({"error": "the body must be one JSON value"}, status=400)
        try:
            await source.resume(request.match_info["interrupt_id"], value)
        except LookupError:
            error = "no such parked interrupt (resumed, withdrawn or never parked)"
            return web.json_response({"error": error}, status=404)
        except InterruptTokenError:  # its message may name the token: not repeated here
            error = "this interrupt was resumed or withdrawn meanwhile"
            return web.json_response({"error": error}, status=409)
        except JournalError:  # nothing stored: the interrupt still waits
            error = "the journal did not store the value; the trace still waits"
            return web.json_response({"error": error}, status=503)
        except RuntimeError as exc:  # the flow is not running
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response({"resumed": True})

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
    app.router.add_post("/api/interrupts/{interrupt_id}/resume", resume)
    if collector is not None:
        app.router.add_get("/metrics", metrics_handler(collector))
    return app


def _secured(response: web.Response) -> web.Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
