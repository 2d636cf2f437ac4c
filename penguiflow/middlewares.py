"""Middlewares: async observers of the ``FlowEvent`` stream, and ``log_flow_events``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol, TypeAlias

from penguiflow.metrics import FlowEvent

__all__ = ["Middleware", "FlowEvent", "log_flow_events", "LatencyCallback"]  # noqa: RUF022 - the 2.2.5 order

LatencyCallback: TypeAlias = Callable[[str, float, FlowEvent], None]
"""``callback(event_type, latency_ms, event)``; synchronous."""

_LOGGED = frozenset({"node_start", "node_success", "node_error"})


class Middleware(Protocol):
    """Any async callable taking one ``FlowEvent``."""

    async def __call__(self, event: FlowEvent) -> None: ...


def log_flow_events(
    logger: logging.Logger | None = None,
    *,
    start_level: int = logging.INFO,
    success_level: int = logging.INFO,
    error_level: int = logging.ERROR,
    latency_callback: LatencyCallback | None = None,
) -> Middleware:
    """Return a middleware logging ``node_start``/``node_success``/``node_error`` events.

    Records go to ``logger`` (default ``logging.getLogger("penguiflow.flow")``)
    with the event name as message and ``event.to_payload()`` as ``extra``.
    ``latency_callback`` is called for success and error events that carry a
    latency; its exceptions are logged and swallowed.
    """
    log = logger if logger is not None else logging.getLogger("penguiflow.flow")
    levels = {"node_start": start_level, "node_success": success_level, "node_error": error_level}

    async def _middleware(event: FlowEvent) -> None:
        event_type = event.event_type
        if event_type not in _LOGGED:
            return
        payload: dict[str, Any] = event.to_payload()
        if event_type == "node_error":
            error_payload = event.error_payload
            if error_payload is not None:
                payload["error_payload"] = dict(error_payload)
        log.log(levels[event_type], event_type, extra=payload)
        if (
            latency_callback is not None
            and event_type != "node_start"
            and event.latency_ms is not None
        ):
            try:
                latency_callback(event_type, float(event.latency_ms), event)
            except Exception:
                log.exception(
                    "log_flow_events_latency_callback_error",
                    extra={
                        "event": "log_flow_events_latency_callback_error",
                        "node_name": event.node_name,
                        "node_id": event.node_id,
                        "trace_id": event.trace_id,
                    },
                )

    return _middleware
