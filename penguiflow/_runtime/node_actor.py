"""The node actor: one kernel actor per ``Node``, handling one queued item at a time.

The actor's mailbox belongs to the flow (one lane per incoming edge), so a
restart or a ``stop()``/``run()`` cycle keeps queued items. Each item runs the
§7 pipeline inline in the actor's task: deadline check, cancellation check,
then the attempt loop (retries, timeout, backoff: ``attempts.Attempts``),
routing and events.
Trace cancellation interrupts the handler through ``ActorRef.interrupt``; the
kernel then calls ``on_interrupt`` and the actor goes on with its next item.
"""

from __future__ import annotations

import asyncio
import time
from contextvars import ContextVar
from logging import DEBUG, INFO
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.attempts import (
    CRASH_LIMIT,
    Attempts,
    TraceCancelled,
    warn_message_output,
)
from penguiflow._runtime.events import LOGGER
from penguiflow._runtime.policy import DEADLINE_EXCEEDED_TEXT, controller_step, with_final
from penguiflow._runtime.tracing import PRODUCING_TRACE, Carried, carried_trace, trace_id_of
from penguiflow._time import SYSTEM_CLOCK
from penguiflow.actors import Actor
from penguiflow.node import Node
from penguiflow.types import WM, FinalAnswer, Message

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context
    from penguiflow._runtime.flow import PenguiFlow
    from penguiflow.actors import ActorContext

__all__ = ["CRASH_LIMIT", "HANDLER", "STOPPING", "NodeActor", "TraceCancelled", "TraceInterrupt"]


STOPPING = "penguiflow.stop"
"""The ``interrupt`` reason ``stop()`` gives to node actors handling an item."""

#: The node actor whose task this is (set in ``on_start``). Child tasks inherit
#: it, so ``NodeActor.cancel_self`` also checks that the caller is that task.
HANDLER: ContextVar[NodeActor | None] = ContextVar("penguiflow_node_handler", default=None)


# Payloads _route handles specially (controller loop, finals); a tuple, built once.
# (Message tests below try ``type(x) is Message`` first: isinstance on a pydantic
# model class goes through ABCMeta.)
_ROUTED_PAYLOADS = (WM, FinalAnswer)
# type(payload) -> isinstance(payload, _ROUTED_PAYLOADS): one dict lookup instead of
# two ABCMeta instance checks per result. A class cannot change its bases, so the
# answer per type never changes; bounded (see _routed).
_ROUTED_TYPES: dict[type, bool] = {}
_UNSET = object()


class TraceInterrupt:
    """The reason given to ``ActorRef.interrupt`` when a trace is cancelled."""

    __slots__ = ("trace_id",)

    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id

    def matches(self, message: Any) -> bool:
        """True if ``message`` belongs to the cancelled trace (or carries it)."""
        return carried_trace(message) == self.trace_id


class NodeActor(Attempts, Actor):
    """Runs one ``Node`` of a flow; a new instance per incarnation."""

    poison_limit = 3  # redelivered after a crash: Attempts fails it at CRASH_LIMIT (2)

    def __init__(self, flow: PenguiFlow, node: Node) -> None:
        self.flow = flow
        self.node = node
        self.ctx: Context = flow._contexts[node]
        self._open = False  # an item was taken and is not yet finished
        # Self-cancel (cancel_self): the trace in hand, the actor's task, whether the
        # node function is running now, and whether it cancelled its own trace.
        self._trace_id: str | None = None
        # What this task last set PRODUCING_TRACE to. Unset at first: the task's
        # context is copied from whoever started the flow (a parent flow's node
        # running a playbook, say), so the first item always sets it.
        self._producing: object = _UNSET
        self._task: asyncio.Task[Any] | None = None
        self._invoking = False
        self._self_cancel = False
        # Bound once per incarnation: the per-item path reads these many times.
        self._events = flow._events
        self._traces = flow._traces
        # In-flight invocations are read off the current incarnations (TraceBook.invoking).
        flow._traces.handlers[node] = self
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
        self._inline = policy.timeout_s is None and policy.rate_limit is None
        # Calling node.func directly is what Node.invoke does in that case; a Node
        # subclass overriding invoke is always called through it.
        direct = type(node).invoke is Node.invoke and (
            flow._registry is None or policy.validate == "none"
        )
        self._func: Any = node.func if direct else None
        # Latency only (no timer is armed from it): the builtin skips a Python frame.
        self._latency_clock = time.monotonic if clock is SYSTEM_CLOCK else clock.monotonic

    async def on_start(self, ctx: ActorContext) -> None:
        """Mark the node as started and bind this incarnation's task."""
        # stop() reports node_cancelled for every node whose worker got to run.
        self.flow._started.add(self.node)
        self._task = asyncio.current_task()
        HANDLER.set(self)

    async def on_stop(self, reason: object) -> None:
        """Close the busy period of an item cut short by the stop."""
        self._close()

    async def on_restart(self, reason: object) -> None:
        """Close the crashed incarnation's busy period before its replacement starts."""
        # The kernel redelivers the in-flight item to the next incarnation.
        self._close()

    async def on_interrupt(self, message: Any, reason: object, ctx: ActorContext) -> None:
        """Finish an item whose invocation a trace cancel interrupted."""
        if reason is STOPPING:
            # stop() cancels in-flight invocations and drops their items, as 2.2.5 does.
            self._close()
            return
        if self._close():  # else the cancel landed after the item was finished
            await self._report_cancel(message)
            await self._io.finish(message)

    async def receive(self, message: Any, ctx: ActorContext) -> None:
        """Process one queued item: arrival checks, attempts, routing, accounting."""
        flow = self.flow
        if flow._stopping:
            # Take nothing new while stop() is under way: park until cancelled, and
            # the kernel puts this item back at the front of its lane.
            await asyncio.get_running_loop().create_future()
        self._open = True
        flow._busy += 1
        traces = self._traces
        dropped = False  # a bare item of a cancelled trace
        # trace_id_of's own first test, without the call (most items are Messages).
        trace_id: str | None
        producing: str | None
        if type(message) is Message:
            trace_id = producing = message.trace_id
        else:
            trace_id = producing = trace_id_of(message)
            if type(message) is Carried:
                # A bare payload and the trace that produced it: the node gets the
                # payload; what it produces belongs to that trace.
                producing = message.trace
                message = message.item
                dropped = bool(traces.events) and traces.cancelled(producing)
        # The actor's own task context: whatever this item produces is its trace's.
        if producing is not self._producing:  # a set per item costs more than this test
            PRODUCING_TRACE.set(producing)
            self._producing = producing
        self._trace_id = trace_id
        handed_over = False  # the item's trace count went to its forwarded result
        try:
            # Arrival checks run only when the item has a deadline or its trace a
            # set cancel flag (join_k keeps a flag per live trace: test the item's
            # own); a bare item is dropped above if the trace it carries is cancelled.
            if dropped:
                await self._events.emit("trace_cancel_drop", self.ctx, producing)
            elif (
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
                            warn_message_output(self.node, result)
                        if type(result) is Message or isinstance(result, Message):
                            routed = _ROUTED_TYPES.get(type(result.payload))
                            if routed is None:
                                routed = _routed(result.payload)
                        else:
                            routed = False
                        if routed:
                            await self._route(message, result)
                        else:
                            io = self._io
                            out = self.ctx._out_list
                            if (
                                not info
                                and len(out) == 1
                                and trace_id is not None
                                and (
                                    result is message
                                    or (type(result) is Message and result.trace_id == trace_id)
                                )
                                # Put on the one edge without counting (the result takes over
                                # the count of the item in hand); a full edge, a bus or the
                                # self lane go the offer/send way below.
                                and io._bus is None
                                and (floe := out[0]).lane >= 0
                                and floe.mailbox is not None
                                and floe.mailbox.put_nowait(result, floe.lane)
                            ):
                                # The result took over the count of the item in hand:
                                # nothing awaits from here to the end, so no one sees
                                # the count between a +1 and a -1 that net out.
                                handed_over = True
                            else:
                                for floe in out:
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
            if not flow._busy and flow._idle is not None:
                flow._busy_changed(0)  # wakes wait_idle()
            # Transport.finish inlined: no coroutine, and TraceBook.done's common
            # case (the trace has other items, nobody waits for capacity) in place.
            if trace_id is not None and not handed_over:
                counts = traces.counts
                left = counts.get(trace_id, 0) - 1
                if left > 0 and not traces.waiters:
                    counts[trace_id] = left
                elif traces.done(trace_id):
                    await self._io.cancel_finished(trace_id)
        elif handed_over and trace_id is not None:  # pragma: no cover - see below
            # Unreachable today (only a cancelled receive is closed early); if it
            # ever happens, the item was finished elsewhere: its result needs a count.
            traces.add(trace_id)

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


def _routed(payload: Any) -> bool:
    """Whether ``_route`` must look at ``payload`` (a WM or FinalAnswer); cached per type."""
    routed = isinstance(payload, _ROUTED_PAYLOADS)
    if len(_ROUTED_TYPES) < _ROUTED_TYPES_MAX:  # classes made on the fly are not pinned forever
        _ROUTED_TYPES[type(payload)] = routed
    return routed


_ROUTED_TYPES_MAX = 256
