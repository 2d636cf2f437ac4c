"""The inspector: a self-contained web page showing a live flow (or a store's history).

``create_inspector_app(flow)`` returns an aiohttp application (needs the
``a2a`` extra's aiohttp). Nothing here is imported by ``import penguiflow``.
"""

from __future__ import annotations

from penguiflow.inspector._metrics import METRICS_CONTENT_TYPE, metrics_handler

__all__ = ["METRICS_CONTENT_TYPE", "metrics_handler"]
