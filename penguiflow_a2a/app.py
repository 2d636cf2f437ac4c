"""``create_a2a_app``: the aiohttp application serving an ``A2AServerAdapter``.

This module imports without aiohttp; the server stack loads when the factory
is called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from penguiflow._time import SYSTEM_CLOCK, Clock

from ._body import DEFAULT_MAX_DEPTH, MAX_DEPTH_LIMIT
from .auth import AuthHook

if TYPE_CHECKING:
    from aiohttp import web

    from .adapter import A2AServerAdapter
    from .push import PushSettings

__all__ = ["DEFAULT_MAX_BUFFERED_EVENTS", "AuthHook", "create_a2a_app"]

#: Default of ``create_a2a_app(max_buffered_events=...)``.
DEFAULT_MAX_BUFFERED_EVENTS = 1024

_MISSING_STACK = (
    "create_a2a_app needs the A2A server stack (aiohttp); "
    "install it with: pip install 'penguiflow[a2a-server]'"
)


def create_a2a_app(
    adapter: A2AServerAdapter,
    *,
    include_docs: bool = True,
    max_body_bytes: int = 1024 * 1024,
    max_json_depth: int = DEFAULT_MAX_DEPTH,
    body_timeout_s: float | None = 30.0,
    auth: AuthHook | None = None,
    bearer_token: str | None = None,
    rest: bool = True,
    max_tasks: int = 1000,
    sse_heartbeat_s: float | None = 15.0,
    clock: Clock = SYSTEM_CLOCK,
    push_allow_hosts: Sequence[str] = (),
    push_settings: PushSettings | None = None,
    max_buffered_events: int = DEFAULT_MAX_BUFFERED_EVENTS,
    collector: Any = None,
) -> web.Application:
    """Build the aiohttp application serving ``adapter`` (2.2.5 routes and standard A2A).

    Routes: ``GET /agent``, ``POST /message/send``, ``POST /message/stream``,
    ``POST /tasks/cancel`` (2.2.5); ``GET /.well-known/agent-card.json`` and
    ``/.well-known/agent.json``; JSON-RPC 2.0 on ``POST /`` (A2A 1.0 and 0.3);
    with ``rest``, the HTTP+JSON routes (``/message:send``, ``/tasks/{id}``, ...);
    with ``include_docs``, ``/openapi.json`` and ``/docs``. The push-notification
    config methods of both versions are served and advertised
    (``capabilities.pushNotifications``); task updates are POSTed to the
    registered webhooks (see ``penguiflow_a2a.push``). Application
    startup awaits ``adapter.start()`` and shutdown awaits ``adapter.stop()``.
    ``app.title``, ``app.description`` and ``app.version`` come from the card.

    Args:
        adapter: the adapter to serve.
        include_docs: serve ``/docs`` and ``/openapi.json``.
        max_body_bytes: larger request bodies are refused (413 on the 2.2.5
            routes, a JSON-RPC ``-32600`` on ``POST /``).
        max_json_depth: request bodies nesting objects and arrays deeper
            than this are refused as malformed (1 to 256).
        body_timeout_s: a request body that has not fully arrived this many
            seconds after its handler started reading it is refused (408 on
            the 2.2.5 and REST routes, a JSON-RPC ``-32600`` on ``POST /``)
            and its connection closed; ``None`` waits forever.
        auth: called for every request except the agent cards; it returns
            the caller's principal (any hashable, e.g. a user or tenant id),
            ``True`` (the one shared principal) or ``False``/``None`` (401).
            A task is visible only to the principal that created it: for
            any other, every task method answers "task not found".
        bearer_token: shorthand for an ``auth`` hook requiring
            ``Authorization: Bearer <token>`` (both may be given; the
            principal is then ``auth``'s).
        rest: serve the HTTP+JSON binding.
        max_tasks: capacity of the in-memory A2A task store.
        sse_heartbeat_s: idle interval after which streams send an SSE
            comment (detects clients that left); ``None`` disables it.
        clock: source of task status timestamps, of push retry backoff and of the body timeout.
        push_allow_hosts: webhook hosts (names, IP addresses or networks such
            as ``"10.0.0.0/8"``) the SSRF guard admits although they are not
            public; ``["127.0.0.1"]`` for a receiver on this machine.
        push_settings: limits of push delivery (``penguiflow_a2a.push.PushSettings``).
        max_buffered_events: how many events one stream may hold for a
            client that does not read them; one more ends that stream with
            an error event, cancels its trace and frees the buffer
            (docs/a2a.md, "Slow stream clients"). At least 1.
        collector: a ``penguiflow.metrics.PrometheusCollector``; when given,
            ``GET /metrics`` serves its registry in Prometheus text format
            (behind ``auth`` like every other route).

    Raises:
        RuntimeError: aiohttp is not installed.
        ValueError: ``max_json_depth`` outside 1-256, ``body_timeout_s`` not
            positive, or ``max_buffered_events`` below 1.

    .. versionadded:: 3.0 ``max_body_bytes``, ``max_json_depth``, ``body_timeout_s``,
       ``auth``, ``bearer_token``,
       ``rest``, ``max_tasks``, ``sse_heartbeat_s``, ``clock`` and the
       standard A2A routes; ``push_allow_hosts``, ``push_settings``,
       ``collector``, push notifications; ``max_buffered_events``; ``auth``
       returning a principal.
    """
    if not 1 <= max_json_depth <= MAX_DEPTH_LIMIT:
        raise ValueError(f"max_json_depth must be between 1 and {MAX_DEPTH_LIMIT}")
    if body_timeout_s is not None and not body_timeout_s > 0:
        raise ValueError("body_timeout_s must be positive (or None)")
    if max_buffered_events < 1:
        raise ValueError("max_buffered_events must be at least 1")
    try:
        from ._aiohttp_app import build_app
    except ImportError as exc:  # pragma: no cover - exercised without aiohttp only
        raise RuntimeError(_MISSING_STACK) from exc
    return build_app(
        adapter,
        include_docs=include_docs,
        max_body_bytes=max_body_bytes,
        max_json_depth=max_json_depth,
        body_timeout_s=body_timeout_s,
        auth=auth,
        bearer_token=bearer_token,
        rest=rest,
        max_tasks=max_tasks,
        sse_heartbeat_s=sse_heartbeat_s,
        clock=clock,
        push_allow_hosts=push_allow_hosts,
        push_settings=push_settings,
        max_buffered_events=max_buffered_events,
        collector=collector,
    )
