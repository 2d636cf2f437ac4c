"""Helpers for pattern unit tests: a recording node context and a hook-only runtime."""

from __future__ import annotations

import asyncio
from typing import Any

from penguiflow.node import Node


class RecordingContext:
    """A node context with a fixed successor map; ``emit`` records instead of sending."""

    def __init__(self, *successors: Node, runtime: Any = None) -> None:
        self._outgoing = {node: object() for node in successors}
        self.runtime = runtime
        self.emitted: list[tuple[Any, Any]] = []

    async def emit(self, msg: Any, to: Any = None) -> None:
        self.emitted.append((msg, to))


class HookRuntime:
    """The flow hooks join_k uses: per-trace cancel flags and owned external tasks."""

    def __init__(self) -> None:
        self.flags: dict[str, asyncio.Event] = {}
        self.external: set[asyncio.Future[Any]] = set()

    def ensure_trace_event(self, trace_id: str) -> asyncio.Event:
        return self.flags.setdefault(trace_id, asyncio.Event())

    def register_external_task(self, trace_id: str | None, task: asyncio.Future[Any]) -> None:
        assert trace_id is not None
        self.external.add(task)
        task.add_done_callback(self.external.discard)

    def trace_finished(self, trace_id: str) -> None:
        """What the runtime does when a trace's outstanding count reaches zero."""
        self.flags.pop(trace_id, None)

    async def cancel(self, trace_id: str) -> None:
        """Set the trace's cancel flag, as ``PenguiFlow.cancel`` does first."""
        self.ensure_trace_event(trace_id).set()

    async def stop(self) -> None:
        tasks = list(self.external)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _noop(message: Any, ctx: Any) -> None:
    return None


def make_node(name: str) -> Node:
    return Node(_noop, name=name)
