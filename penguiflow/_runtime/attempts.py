"""How a node attempt ends badly: report it, back off and retry, or fail the item.

``Attempts`` belongs to one node actor incarnation and owns what follows a
failed attempt of its node: the ``node_error``/``node_timeout`` event, the
retry decision and backoff of the node's policy, the final ``node_failed``
``FlowError`` (delivered to Rookery when the flow says so), the item that
crashed the actor too often, and the ``node_trace_cancelled`` report. The
attempt loop itself (one implementation, fast in the common case) is
``NodeActor.receive``.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.policy import backoff_delay, failure
from penguiflow._runtime.signals import CRASH_LIMIT, TraceCancelled
from penguiflow._runtime.tracing import carried_trace, owning_trace

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context
    from penguiflow._runtime.run_state import RunState
    from penguiflow.node import Node

__all__ = ["CRASH_LIMIT", "Attempts", "TraceCancelled", "warn_message_output"]


class Attempts:
    """The failure side of one node's attempts, reported through the run's events."""

    __slots__ = ("ctx", "node", "run")

    def __init__(self, run: RunState, node: Node, ctx: Context) -> None:
        self.run = run
        self.node = node
        self.ctx = ctx

    async def failed(
        self, item: Any, trace_id: str | None, exc: Exception, attempt: int, latency_ms: float
    ) -> bool:
        """Report a failed attempt; back off and return True if another one follows."""
        node = self.node
        policy = node.policy
        run = self.run
        events = run.events
        kind = "node_timeout" if isinstance(exc, TimeoutError) else "node_error"
        extra = {"exception": repr(exc)}
        await events.emit(
            kind, self.ctx, trace_id, attempt=attempt, latency_ms=latency_ms, extra=extra, exc=exc
        )
        if attempt < policy.max_retries:
            delay = backoff_delay(policy, attempt + 1)
            if events.listening("node_retry"):  # else not even its extra is built
                await events.emit(
                    "node_retry",
                    self.ctx,
                    trace_id,
                    attempt=attempt + 1,
                    extra={"sleep_s": delay, "exception": repr(exc)},
                )
            if delay > 0:  # backoff_base=0: retry at once, no turn of the loop
                await run.clock.sleep(delay)
            return True
        trace_id = owning_trace(trace_id)  # a bare payload: the trace it carries
        error = failure(node, trace_id, exc, attempt, latency_ms)
        await events.emit(
            "node_failed",
            self.ctx,
            trace_id,
            attempt=attempt,
            latency_ms=latency_ms,
            extra={"exception": repr(exc), "flow_error": error.to_payload()},
            exc=exc,
        )
        if run.emit_errors_to_rookery and trace_id is not None:
            await run.io.to_rookery(error, source=node)
        return False

    async def poisoned(self, item: Any, trace_id: str | None, exc: Exception) -> bool:
        """Count a crash caused by ``item``; at the limit, end it with a ``FlowError``.

        Keeps "every accepted item ends exactly once" across crash loops: the item
        becomes a ``node_failed`` value (``metadata["reason"] == "crashed"``)
        instead of a silent dead letter. False: crash (the kernel redelivers it).
        """
        run = self.run
        if not run.crashed(item):
            return False
        # A bare payload fails for the trace it carries: its caller gets the error.
        trace_id = owning_trace(trace_id)
        error = failure(self.node, trace_id, exc, 0, 0.0)
        error.metadata["reason"] = "crashed"
        await run.events.emit(
            "node_failed",
            self.ctx,
            trace_id,
            extra={"exception": repr(exc), "flow_error": error.to_payload()},
            exc=exc,
        )
        if run.emit_errors_to_rookery and trace_id is not None:
            await run.io.to_rookery(error, source=self.node)
        return True

    async def report_cancel(self, item: Any) -> None:
        """Report ``node_trace_cancelled`` for ``item`` (it stays open: the actor ends it).

        ``item`` is the queued one (on interrupt) or the one handed to the node:
        a bare payload reports the trace it carries when it is known.
        """
        await self.run.events.emit("node_trace_cancelled", self.ctx, carried_trace(item))


def warn_message_output(node: Node, result: Any) -> None:
    """Warn that a node registered for ``Message`` outputs returned something else."""
    warnings.warn(
        f"Node '{node.name}' is registered for Message -> Message outputs but returned "
        f"{type(result).__name__}. Return a penguiflow.types.Message to preserve headers, "
        "trace_id, and meta.",
        RuntimeWarning,
        stacklevel=2,
    )
