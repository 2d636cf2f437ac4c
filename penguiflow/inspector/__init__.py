"""The inspector: a self-contained web page showing a live flow (or a store's history).

``create_inspector_app(flow)`` returns an aiohttp application (aiohttp comes
with the ``a2a`` extra); ``serve_inspector`` runs it on 127.0.0.1. Nothing here
is imported by ``import penguiflow``.
"""

from __future__ import annotations

from typing import Any

from penguiflow.inspector._app import (
    ACTION_HEADER,
    AuthHook,
    StateSource,
    build_app,
    create_inspector_app,
)
from penguiflow.inspector._history import StoreSource
from penguiflow.inspector._metrics import METRICS_CONTENT_TYPE, metrics_handler
from penguiflow.inspector._traces import TraceLog, TraceRecord

__all__ = [
    "ACTION_HEADER",
    "METRICS_CONTENT_TYPE",
    "AuthHook",
    "StateSource",
    "StoreSource",
    "TraceLog",
    "TraceRecord",
    "build_app",
    "create_inspector_app",
    "create_store_inspector_app",
    "metrics_handler",
]


def create_store_inspector_app(store: object, *, max_traces: int = 100) -> Any:
    """The inspector page over ``store``'s history (read-only: no cancel, no resume).

    Lists recent traces when the store has ``list_traces`` (``SQLiteStateStore``
    does); any trace can be looked up by id. The traces parked in
    ``ctx.interrupt`` are listed from the store's journal when it keeps one.

    .. versionadded:: 3.0
    """
    return build_app(StoreSource(store, max_traces=max_traces), refresh_s=2.0)
