"""What remote nodes and adapters ask of a flow's state store and event pipeline."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.events import LOGGER

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context
    from penguiflow._runtime.run_state import RunState

__all__ = ["load_history", "record_remote_event", "save_remote_binding"]


async def save_remote_binding(run: RunState, binding: Any) -> None:
    """Persist a remote binding in the state store (no-op without one); errors are logged."""
    store = run.state_store
    if store is None:
        return
    try:
        await store.save_remote_binding(binding)
    except Exception as exc:
        LOGGER.exception(
            "state_store_binding_failed",
            extra={
                "event": "state_store_binding_failed",
                "trace_id": getattr(binding, "trace_id", None),
                "context_id": getattr(binding, "context_id", None),
                "task_id": getattr(binding, "task_id", None),
                "agent_url": getattr(binding, "agent_url", None),
                "exception": repr(exc),
            },
        )


async def load_history(run: RunState, trace_id: str) -> Any:
    """Return the stored events of ``trace_id``.

    Raises:
        RuntimeError: the flow has no state store.
    """
    store = run.state_store
    if store is None:
        raise RuntimeError("PenguiFlow was created without a state_store")
    return await store.load_history(trace_id)


async def record_remote_event(
    run: RunState,
    *,
    event: str,
    context: Context,
    trace_id: str | None,
    latency_ms: float | None,
    level: int = logging.INFO,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Emit a ``FlowEvent`` named ``event`` through the run's pipeline (remote telemetry)."""
    await run.events.emit(
        event,
        context,
        trace_id,
        latency_ms=latency_ms,
        extra=dict(extra or {}),
        level=level,
    )
