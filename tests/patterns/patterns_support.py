"""Helpers for pattern unit tests: a recording node context and a middleware-only runtime."""

from __future__ import annotations

from typing import Any

from penguiflow.metrics import FlowEvent
from penguiflow.node import Node


class RecordingContext:
    """A node context with a fixed successor map; ``emit`` records instead of sending."""

    def __init__(self, *successors: Node, runtime: Any = None) -> None:
        self._outgoing = {node: object() for node in successors}
        self.runtime = runtime
        self.emitted: list[tuple[Any, Any]] = []

    async def emit(self, msg: Any, to: Any = None) -> None:
        self.emitted.append((msg, to))


class MiddlewareRuntime:
    """The part of ``PenguiFlow`` join_k uses: ``add_middleware`` and event delivery."""

    def __init__(self) -> None:
        self._middlewares: list[Any] = []

    def add_middleware(self, middleware: Any) -> None:
        self._middlewares.append(middleware)

    async def publish(self, event: FlowEvent) -> None:
        for middleware in list(self._middlewares):
            await middleware(event)


def flow_event(
    event_type: str, *, trace_id: str | None = None, node_id: str | None = None
) -> FlowEvent:
    return FlowEvent(
        event_type=event_type,
        ts=0.0,
        node_name=None,
        node_id=node_id,
        trace_id=trace_id,
        attempt=0,
        latency_ms=None,
        queue_depth_in=0,
        queue_depth_out=0,
        outgoing_edges=0,
        queue_maxsize=64,
        trace_pending=None if trace_id is None else 1,
        trace_inflight=0,
        trace_cancelled=event_type == "trace_cancel_start",
    )


async def _noop(message: Any, ctx: Any) -> None:
    return None


def make_node(name: str) -> Node:
    return Node(_noop, name=name)
