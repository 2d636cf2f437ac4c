"""The node actor: one kernel actor per ``Node``, handling one queued item at a time.

The actor's mailbox belongs to the flow (one lane per incoming edge), so a
restart or a ``stop()``/``run()`` cycle keeps queued items. Each item runs the
§7 pipeline inline in the actor's task: deadline check, cancellation check,
then the attempt loop (retries, timeout, backoff), routing and events.
Trace cancellation interrupts the handler through ``ActorRef.interrupt``; the
kernel then calls ``on_interrupt`` and the actor goes on with its next item.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import warnings
from contextvars import ContextVar
from logging import DEBUG, INFO
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.events import LOGGER
from penguiflow._runtime.policy import (
    DEADLINE_EXCEEDED_TEXT,
    backoff_delay,
    controller_step,
    failure,
    with_final,
)
from penguiflow._runtime.tracing import PRODUCING_TRACE
from penguiflow._time import SYSTEM_CLOCK
from penguiflow.actors import Actor
from penguiflow.errors import PenguiFlowError
from penguiflow.node import Node
from penguiflow.types import WM, FinalAnswer, Message

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context
    from penguiflow._runtime.flow import PenguiFlow
    from penguiflow.actors import ActorContext

__all__ = ["CRASH_LIMIT", "HANDLER", "STOPPING", "NodeActor", "TraceCancelled", "TraceInterrupt"]


class TraceCancelled(PenguiFlowError):
    """The trace ``trace_id`` was cancelled (``str()`` is ``trace cancelled: <id>``)."""

    def __init__(self, trace_id: str | None) -> None:
        super().__init__(trace_id)  # args carry the id, so the exception pickles
        self.trace_id = trace_id

    def __str__(self) -> str:
        return f"trace cancelled: {self.trace_id}"


STOPPING = "penguiflow.stop"
"""The ``interrupt`` reason ``stop()`` gives to node actors handling an item."""

#: The node actor whose task this is (set in ``on_start``). Child tasks inherit
#: it, so ``NodeActor.cancel_self`` also checks that the caller is that task.
HANDLER: ContextVar[NodeActor | None] = ContextVar("penguiflow_node_handler", default=None)


# Payloads _route handles specially (controller loop, finals); a tuple, built once.
# (Message tests below try ``type(x) is Message`` first: isinstance on a pydantic
# model class goes through ABCMeta.)
_ROUTED_PAYLOADS = (WM, FinalAnswer)

CRASH_LIMIT = 2
"""Crashes one item may cause before it is failed instead of redelivered.

Below the kernel's own poison limit, so the node actor, not the kernel, settles it.
"""


class TraceInterrupt:
    """The reason given to ``ActorRef.interrupt`` when a trace is cancelled."""

    __slots__ = ("trace_id",)

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id

    def matches(self, message: Any) -> bool:
        return getattr(message, "trace_id", None) == self.trace_id


class NodeActor(Actor):
    """Runs one ``Node`` of a flow; a new instance per incarnation."""

    def __init__(self, flow: PenguiFlow, node: Node) -> None:
        self.flow = flow
        self.node = node
        self.ctx: Context = flow._contexts[node]
        self._open = False  # an item was taken and is not yet finished
        # Self-cancel (cancel_self): the trace in hand, the actor's task, whether the
        # node function is running now, and whether it cancelled its own trace.
        self._trace_id: str | None = None
        self._task: asyncio.Task[Any] | None = None
        self._invoking = False
        self._self_cancel = False
        # Bound once per incarnation: the per-item path reads these many times.
        self._events = flow._events
        self._traces = flow._traces
        self._io = flow._io
        self._clock = flow._clock
        clock = flow._clock
        # The system clock's monotonic() is the loop's time(); skip two calls per read.
        self._monotonic = (
            asyncio.get_running_loop().time if clock is SYSTEM_CLOCK else clock.monotonic
        )
        self._warn = node in flow._warn_nodes  # fixed for the run that started us
        # Fast path (receive): the first attempt runs inline when no timer is needed
        # and the node function can be called without validation.
        policy = node.policy
        self._inline = policy.timeout_s is None
        # Calling node.func directly is what Node.invoke does in that case; a Node
        # subclass overriding invoke is always called through it.
        direct = type(node).invoke is Node.invoke and (
            flow._registry is None or policy.validate == "none"
        )
        self._func: Any = node.func if direct else None
        # Latency only (no timer is armed from it): the builtin skips a Python frame.
        self._latency_clock = time.monotonic if clock is SYSTEM_CLOCK else clock.monotonic

    async def on_start(self, ctx: ActorContext) -> None:
        # stop() reports node_cancelled for every node whose worker got to run.
        self.flow._started.add(self.node)
        self._task = asyncio.current_task()
        HANDLER.set(self)

    async def on_stop(self, reason: object) -> None:
        self._close()

    async def on_restart(self, reason: object) -> None:
        # The kernel redelivers the in-flight item to the next incarnation.
        self._close()

    async def on_interrupt(self, message: Any, reason: object, ctx: ActorContext) -> None:
        if reason is STOPPING:
            # stop() cancels in-flight invocations and drops their items, as 2.2.5 does.
            self._close()
            return
        if self._close():  # else the cancel landed after the item was finished
            await self._report_cancel(message)
            await self._io.finish(message)

    async def receive(self, message: Any, ctx: ActorContext) -> None:
        flow = self.flow
        if flow._stopping:
            # Take nothing new while stop() is under way: park until cancelled, and
            # the kernel puts this item back at the front of its lane.
            await asyncio.get_running_loop().create_future()
        self._open = True
        flow._busy += 1
        trace_id = getattr(message, "trace_id", None)
        # The actor's own task context: whatever this item produces is its trace's.
        PRODUCING_TRACE.set(trace_id)
        self._trace_id = trace_id
        traces = self._traces
        try:
            # Arrival checks run only when the item has a deadline or its trace a
            # set cancel flag (join_k keeps a flag per live trace: test the item's
            # own); trace-less items are never deadline-checked nor cancellable.
            if (
                trace_id is not None
                and (
                    (
                        traces.events
                        and (flag := traces.events.get(trace_id)) is not None
                        and flag.is_set()
                    )
                    or (
                        (type(message) is Message or isinstance(message, Message))
                        and message.deadline_s is not None
                    )
                )
                and not await self._admit(message, trace_id)
            ):
                pass
            elif not self._inline:
                await self._attempts(message, trace_id, 0)
            else:
                # Attempt 0 inlined (no timer needed): the steps and events of one turn
                # of _attempts. Per-hop events nobody listens to are not even built,
                # and results go out through Transport.offer: no coroutine, no task,
                # unless an edge is full.
                events = self._events
                observed = events.state_store is not None or len(events._middlewares) > 0
                info = observed or LOGGER.isEnabledFor(INFO)  # INFO off: DEBUG off too
                if observed or (info and LOGGER.isEnabledFor(DEBUG)):
                    await events.emit("node_start", self.ctx, trace_id, attempt=0, latency_ms=0.0)
                clock = self._latency_clock
                start = clock()
                try:
                    if trace_id is not None:
                        inflight = traces.inflight
                        inflight[trace_id] = inflight.get(trace_id, 0) + 1
                    self._invoking = True
                    try:
                        func = self._func
                        if func is not None:
                            result = await func(message, self.ctx)
                        else:
                            result = await self.node.invoke(
                                message, self.ctx, registry=flow._registry
                            )
                    finally:
                        self._invoking = False
                        # True when the trace's items all finished while this ran (§10).
                        if trace_id is not None and traces.end_invocation(trace_id):
                            await self._io.cancel_finished(trace_id)
                    if self._self_cancel:
                        # The node cancelled its own trace and returned before meeting
                        # the CancelledError (cancel_self): settled by _attempt_failed.
                        raise TraceCancelled(trace_id)
                    if result is not None:
                        if self._warn and not isinstance(result, Message):
                            _warn_message_output(self.node, result)
                        if (type(result) is Message or isinstance(result, Message)) and isinstance(
                            result.payload, _ROUTED_PAYLOADS
                        ):
                            await self._route(message, result)
                        else:
                            io = self._io
                            for floe in self.ctx._out_list:
                                if not io.offer(floe, result):
                                    await io.send(floe, result)
                except BaseException as exc:
                    if self._must_propagate(exc):
                        raise
                    latency_ms = (clock() - start) * 1000.0
                    if await self._attempt_failed(message, trace_id, exc, 0, latency_ms):
                        await self._attempts(message, trace_id, 1)
                else:
                    if info:
                        latency_ms = (clock() - start) * 1000.0
                        await events.emit(
                            "node_success", self.ctx, trace_id, attempt=0, latency_ms=latency_ms
                        )
        except Exception as exc:
            # A fault outside the node function: crash (the supervisor restarts us and
            # the kernel redelivers the item), until the item has crashed us too often.
            if not await self._poisoned(message, trace_id, exc):
                raise
        if flow._crashes:
            flow._crashes.pop(id(message), None)  # settled: forget its crash count
        if self._open:  # not closed by an interrupt meanwhile (see on_interrupt)
            self._open = False
            flow._busy -= 1
            if not flow._busy:
                flow._busy_changed(0)
            # Transport.finish inlined: no coroutine, and TraceBook.done's common
            # case (the trace has other items, nobody waits for capacity) in place.
            if trace_id is not None:
                counts = traces.counts
                left = counts.get(trace_id, 0) - 1
                if left > 0 and not traces.waiters:
                    counts[trace_id] = left
                elif traces.done(trace_id):
                    await self._io.cancel_finished(trace_id)

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

    def _close(self) -> bool:
        """End the current item's busy period; False if none was open."""
        if not self._open:
            return False
        self._open = False
        self.flow._busy_changed(-1)
        return True

    def cancel_self(self, flow: Any, trace_id: str) -> None:
        """Abort the running node function if it is cancelling its own trace.

        ``ActorRef.interrupt`` will not cancel the calling task, so when a node
        calls ``flow.cancel()`` on the trace it is handling, ``cancel()`` ends here:
        as in 2.2.5 the node sees ``CancelledError`` at its next await and the
        runtime reports ``node_trace_cancelled`` (runtime.md §11 step 3). Does
        nothing unless the caller is this actor's task, inside the node function,
        handling ``trace_id`` for ``flow``.
        """
        task = self._task
        if (
            not self._invoking
            or self._self_cancel
            or flow is not self.flow
            or self._trace_id != trace_id
            or task is None
            or task is not asyncio.current_task()
        ):
            return
        self._self_cancel = True
        task.cancel()

    async def _absorb_self_cancel(self, item: Any) -> None:
        """Settle a ``cancel_self``, delivered or still pending, and report it."""
        self._self_cancel = False
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)  # a still-pending self-cancel is delivered here
        task = asyncio.current_task()
        if task is not None and task.uncancel() > 0:
            raise asyncio.CancelledError  # stop() or an interrupt came too: it wins
        await self._report_cancel(item)

    async def _admit(self, item: Any, trace_id: str) -> bool:
        """Deadline and cancellation checks on arrival; False if the item ends here."""
        flow = self.flow
        if isinstance(item, Message):
            deadline = item.deadline_s
            if deadline is not None and flow._clock.time() > deadline:
                await self._events.emit(
                    "deadline_skip", self.ctx, trace_id, extra={"deadline_s": deadline}
                )
                if isinstance(item.payload, FinalAnswer):
                    final = item.model_copy()
                else:
                    final = with_final(item, DEADLINE_EXCEEDED_TEXT)
                await self._io.to_rookery(final, source=self.node)
                return False
        if self._traces.cancelled(trace_id):
            await self._events.emit("trace_cancel_drop", self.ctx, trace_id)
            return False
        return True

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
        inflight = traces.inflight
        middlewares = events._middlewares
        timeout_s = node.policy.timeout_s
        while True:
            # Before a retry (the first attempt was checked on arrival, with no await since).
            if attempt and trace_id is not None and traces.cancelled(trace_id):
                await self._report_cancel(item)
                return
            if middlewares or events.state_store is not None or LOGGER.isEnabledFor(DEBUG):
                await events.emit("node_start", ctx, trace_id, attempt=attempt, latency_ms=0.0)
            start = monotonic()
            try:
                if trace_id is not None:
                    inflight[trace_id] = inflight.get(trace_id, 0) + 1
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
                    self._invoking = False
                    # True when the trace's items all finished while this ran (§10).
                    if trace_id is not None and traces.end_invocation(trace_id):
                        await self._io.cancel_finished(trace_id)
                if self._self_cancel:
                    # The node cancelled its own trace and returned before meeting
                    # the CancelledError (cancel_self): settled by _attempt_failed.
                    raise TraceCancelled(trace_id)
                if result is not None:
                    if self._warn and not isinstance(result, Message):
                        _warn_message_output(node, result)
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
        await self._events.emit("node_trace_cancelled", self.ctx, getattr(item, "trace_id", None))

    async def _route(self, item: Any, result: Any) -> None:
        """Deliver a node's non-None result (runtime.md §8, §9)."""
        if isinstance(result, Message):
            payload = result.payload
            if isinstance(payload, WM):
                await self._controller(item, result, payload)
                return
            if isinstance(payload, FinalAnswer):
                await self._io.to_rookery(result, source=self.node)
                return
        # Inline Context.emit(result) for the common case: every outgoing edge.
        io = self._io
        for floe in self.ctx._out_list:
            if not io.offer(floe, result):  # no coroutine unless the edge is full
                await io.send(floe, result)

    async def _controller(self, item: Any, result: Message, wm: WM) -> None:
        flow = self.flow
        step = controller_step(item, result, wm, flow._clock.time())
        if step.final is not None:
            await flow._io.to_rookery(step.final, source=self.node)
            return
        forward = step.forward
        assert forward is not None
        self_floe = self.ctx._self_floe
        if self_floe is None:
            name = self.node.name
            raise KeyError(f"Unknown target {name} for {name}")
        await flow._io.send(self_floe, forward)
        if step.stream:
            flow._traces.memo[forward.trace_id] = forward.payload.hops
            await flow._io.to_rookery(forward.model_copy(deep=True), source=self.node)


def _warn_message_output(node: Node, result: Any) -> None:
    warnings.warn(
        f"Node '{node.name}' is registered for Message -> Message outputs but returned "
        f"{type(result).__name__}. Return a penguiflow.types.Message to preserve headers, "
        "trace_id, and meta.",
        RuntimeWarning,
        stacklevel=2,
    )
