"""``call_playbook``: run a subflow for one message and return its first result."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from penguiflow._runtime.signals import TraceCancelled
from penguiflow.types import Message

if TYPE_CHECKING:
    from penguiflow._runtime.flow import PenguiFlow

__all__ = ["PlaybookFactory", "call_playbook"]

PlaybookFactory: TypeAlias = Callable[[], "tuple[PenguiFlow, Any]"]
"""A zero-argument callable returning ``(flow, registry_or_None)``."""


async def call_playbook(
    playbook: PlaybookFactory,
    parent_msg: Any,
    timeout: float | None = None,
    *,
    runtime: PenguiFlow | None = None,
) -> Any:
    """Run ``playbook()``'s flow on ``parent_msg`` and return its first Rookery item.

    The subflow receives the very ``parent_msg`` object (same trace id, headers
    and meta). A ``Message`` result is unwrapped to its payload; anything else,
    a ``FlowError`` included, is returned as is. With ``runtime``, cancelling
    the parent trace cancels the subflow's work for it, and the subflow's keyed
    rate limits draw from ``runtime``'s buckets. The subflow is always stopped
    before this returns or raises.

    Raises:
        TraceCancelled: the parent trace was already cancelled.
        TimeoutError: no result within ``timeout`` seconds.
    """
    flow, registry = playbook()
    caller = getattr(runtime, "_run", None)  # a PenguiFlow's RunState
    if caller is not None:  # keyed rate limits are the calling flow's (rate_gate)
        flow._run.rate_limits.share(caller.rate_limits.shared)
    flow.run(registry=registry)
    trace_id = getattr(parent_msg, "trace_id", None)
    watcher: asyncio.Task[None] | None = None
    try:
        if runtime is not None and trace_id is not None:
            flag = runtime.ensure_trace_event(trace_id)
            if flag.is_set():
                raise TraceCancelled(trace_id)
            watcher = asyncio.get_running_loop().create_task(_mirror_cancel(flag, flow, trace_id))
        try:
            await flow.emit(parent_msg)
            if timeout is None:
                item = await flow.fetch()
            else:
                async with asyncio.timeout(timeout):
                    item = await flow.fetch()
        except (asyncio.CancelledError, TraceCancelled):
            if trace_id is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(flow.cancel(trace_id))
            raise
        return item.payload if isinstance(item, Message) else item
    finally:
        try:
            if watcher is not None:
                watcher.cancel()
                # gather, not suppress(CancelledError): a cancel of this task
                # arriving meanwhile must still propagate.
                await asyncio.gather(watcher, return_exceptions=True)
        finally:
            await _shielded_stop(flow)


async def _mirror_cancel(flag: asyncio.Event, flow: PenguiFlow, trace_id: str) -> None:
    await flag.wait()
    with contextlib.suppress(Exception):
        await flow.cancel(trace_id)


async def _shielded_stop(flow: PenguiFlow) -> None:
    stop = asyncio.ensure_future(flow.stop())
    try:
        await asyncio.shield(stop)
    except asyncio.CancelledError:
        # Finish stopping even though our caller was cancelled, then re-raise.
        await stop
        raise
