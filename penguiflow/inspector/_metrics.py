"""``GET /metrics``: a ``PrometheusCollector``'s registry in Prometheus text format."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

__all__ = ["METRICS_CONTENT_TYPE", "metrics_handler"]

#: The Prometheus text exposition format, version 0.0.4.
METRICS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_handler(collector: Any) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp handler serving ``collector.exposition()``.

    .. versionadded:: 3.0
    """

    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=collector.exposition())
        response.headers["Content-Type"] = METRICS_CONTENT_TYPE
        return response

    return metrics
