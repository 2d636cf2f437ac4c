"""The attempt loop of a node actor: invoke, retry, time out, fail (runtime.md §7).

``Attempts`` is a mixin of ``NodeActor``: everything after the first attempt
(retries with backoff, timeouts, the final ``node_failed``), how a raised
exception is settled (trace cancellation, self-cancel, retry) and crash
accounting (``_poisoned``). The first attempt of the common case runs inline in
``NodeActor.receive``.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections.abc import Callable
from logging import DEBUG, INFO
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.events import LOGGER
from penguiflow._runtime.policy import backoff_delay, failure
from penguiflow._runtime.tracing import carried_trace, owning_trace
from penguiflow.errors import PenguiFlowError
from penguiflow.types import Message

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context
    from penguiflow._runtime.events import EventPipeline
    from penguiflow._runtime.flow import PenguiFlow
    from penguiflow._runtime.tracing import TraceBook
    from penguiflow._runtime.transport import Transport
    from penguiflow._time import Clock
    from penguiflow.node import Node

__all__ = ["CRASH_LIMIT", "Attempts", "TraceCancelled", "warn_message_output"]


class TraceCancelled(PenguiFlowError):
    """The trace ``trace_id`` was cancelled (``str()`` is ``trace cancelled: <id>``)."""

    def __init__(self, trace_id: str | None) -> None:
        super().__init__(trace_id)  # args carry the id, so the exception pickles
        self.trace_id = trace_id

    def __str__(self) -> str:
        return f"trace cancelled: {self.trace_id}"


CRASH_LIMIT = 2
"""Crashes one item may cause before it is failed instead of redelivered.

Below the kernel's own poison limit, so the node actor, not the kernel, settles it.
"""


class Attempts:
    """Retry and failure handling of ``NodeActor`` (a mixin: state lives there)."""

    flow: PenguiFlow
    node: Node
    ctx: Context
    _events: EventPipeline
    _traces: TraceBook
    _io: Transport
    _clock: Clock
    _monotonic: Callable[[], float]
    _func: Any
    _warn: bool
    _invoking: bool
    _self_cancel: bool

    if TYPE_CHECKING:

        async def _route(self, item: Any, result: Any) -> None: ...

    async def _poisoned(self, item: Any, trace_id: str | None, exc: Exception) -> bool:
        """Count a crash caused by ``item``; at the limit, end it with a ``FlowError``.

        Keeps "every accepted item ends exactly once" across crash loops: the item
        becomes a ``node_failed`` value (``metadata["reason"] == "crashed"``)
        instead of a silent dead letter.
        """
        crashes = self.flow._crashes
        key = id(item)  # the kernel redelivers the very same object
        count = crashes.get(key, 0) + 1
        if count < CRASH_LIMIT:
            crashes[key] = count
            return False
        crashes.pop(key, None)
        # A bare payload fails for the trace it carries: its caller gets the error.
        trace_id = owning_trace(trace_id)
        error = failure(self.node, trace_id, exc, 0, 0.0)
        error.metadata["reason"] = "crashed"
        await self._events.emit(
            "node_failed",
            self.ctx,
            trace_id,
            extra={"exception": repr(exc), "flow_error": error.to_payload()},
            exc=exc,
        )
        if self.flow._emit_errors_to_rookery and trace_id is not None:
            await self._io.to_rookery(error, source=self.node)
        return True

    async def _absorb_self_cancel(self, item: Any) -> None:
        """Settle a ``cancel_self``, delivered or still pending, and report it."""
        self._self_cancel = False
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)  # a still-pending self-cancel is delivered here
        task = asyncio.current_task()
        if task is not None and task.uncancel() > 0:
            raise asyncio.CancelledError  # stop() or an interrupt came too: it wins
        await self._report_cancel(item)

    async def _attempt_failed(
        self, item: Any, trace_id: str | None, exc: BaseException, attempt: int, latency_ms: float
    ) -> bool:
        """Settle an attempt that raised; True if another attempt follows.

        The caller has re-raised what ``_must_propagate`` selects, with a bare
        ``raise`` in its own ``except`` block: raising it here would put this
        frame, which holds ``exc``, on the traceback (a cycle keeping messages
        alive).
        """
        if self._self_cancel:
            # The node cancelled its own trace (cancel_self): whatever it raised
            # since, the attempt ends as a trace cancellation.
            await self._absorb_self_cancel(item)
            return False
        if isinstance(exc, asyncio.CancelledError | TraceCancelled):
            # TraceCancelled, or a CancelledError the node raised itself (not a
            # cancellation of this task): reported like a trace cancel.
            await self._report_cancel(item)
            return False
        assert isinstance(exc, Exception)  # see _must_propagate
        return await self._failed(item, trace_id, exc, attempt, latency_ms)

    def _must_propagate(self, exc: BaseException) -> bool:
        """True for a real cancellation (trace interrupt, ``stop()``: the kernel
        decides) and for anything that is not an ``Exception``."""
        if self._self_cancel:
            return False
        if isinstance(exc, asyncio.CancelledError):
            task = asyncio.current_task()
            return task is not None and task.cancelling() > 0
        return not isinstance(exc, Exception)

    async def _attempts(self, item: Any, trace_id: str | None, attempt: int) -> None:
        """The attempt loop from ``attempt`` on: invoke, route, report (runtime.md §7)."""
        flow = self.flow
        node = self.node
        ctx = self.ctx
        events = self._events
        monotonic = self._monotonic
        traces = self._traces
        middlewares = events._middlewares
        timeout_s = node.policy.timeout_s
        gate = flow._rate_limits.gates.get(node)  # only for a NodePolicy.rate_limit
        while True:
            # Before a retry (the first attempt was checked on arrival, with no await since).
            if attempt and trace_id is not None and traces.cancelled(trace_id):
                await self._report_cancel(item)
                return
            if gate is not None and not await gate.admit(item, trace_id):
                return  # its deadline came before its token (rate_gate)
            if middlewares or events.state_store is not None or LOGGER.isEnabledFor(DEBUG):
                await events.emit("node_start", ctx, trace_id, attempt=attempt, latency_ms=0.0)
            start = monotonic()
            try:
                self._invoking = True
                try:
                    if timeout_s is None:
                        func = self._func  # see __init__: node.invoke minus a frame
                        if func is not None:
                            result = await func(item, ctx)
                        else:
                            result = await node.invoke(item, ctx, registry=flow._registry)
                    else:
                        async with self._clock.timeout_at(start + timeout_s):
                            result = await node.invoke(item, ctx, registry=flow._registry)
                finally:
                    # Mirrors the inline first attempt in NodeActor.receive, which keeps
                    # this bookkeeping inline because it runs on every hop.
                    self._invoking = False
                    # True when the trace's items all finished while this ran (§10).
                    if (
                        trace_id is not None
                        and trace_id not in traces.counts
                        and traces.end_invocation(trace_id)
                    ):
                        await self._io.cancel_finished(trace_id)
                if self._self_cancel:
                    # The node cancelled its own trace and returned before meeting
                    # the CancelledError (cancel_self): settled by _attempt_failed.
                    raise TraceCancelled(trace_id)
                if result is not None:
                    if self._warn and not isinstance(result, Message):
                        warn_message_output(node, result)
                    await self._route(item, result)
            except BaseException as exc:
                if self._must_propagate(exc):
                    raise
                latency_ms = (monotonic() - start) * 1000.0
                if await self._attempt_failed(item, trace_id, exc, attempt, latency_ms):
                    attempt += 1
                    continue
                return
            if middlewares or events.state_store is not None or LOGGER.isEnabledFor(INFO):
                latency_ms = (monotonic() - start) * 1000.0
                await events.emit(
                    "node_success", ctx, trace_id, attempt=attempt, latency_ms=latency_ms
                )
            return

    async def _failed(
        self, item: Any, trace_id: str | None, exc: Exception, attempt: int, latency_ms: float
    ) -> bool:
        """Report a failed attempt; back off and return True if another one follows."""
        node = self.node
        policy = node.policy
        events = self._events
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
                await self._clock.sleep(delay)
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
        if self.flow._emit_errors_to_rookery and trace_id is not None:
            await self._io.to_rookery(error, source=node)
        return False

    async def _report_cancel(self, item: Any) -> None:
        # The item stays open until receive() finishes it; only report here.
        # ``item`` is the queued one (on_interrupt) or the one handed to the node:
        # a bare payload reports the trace it carries when it is known.
        await self._events.emit("node_trace_cancelled", self.ctx, carried_trace(item))


def warn_message_output(node: Node, result: Any) -> None:
    warnings.warn(
        f"Node '{node.name}' is registered for Message -> Message outputs but returned "
        f"{type(result).__name__}. Return a penguiflow.types.Message to preserve headers, "
        "trace_id, and meta.",
        RuntimeWarning,
        stacklevel=2,
    )
