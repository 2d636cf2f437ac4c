"""The node actor: one kernel actor per ``Node``, handling one queued item at a time.

The actor's mailbox belongs to the flow (one lane per incoming edge), so a
restart or a ``stop()``/``run()`` cycle keeps queued items. Each item runs
inline in the actor's task: deadline and cancellation checks on arrival, then
the attempt loop (invoke, route the result, retry with backoff, time out), then
trace accounting. The loop is written once, in ``receive``, with the common
case (no timer, nobody listening to per-hop events, one outgoing edge with
room) costing no coroutine beyond the node function's own. What follows a
failed attempt is ``attempts.Attempts``; where a result goes, ``routing.Router``.
Trace cancellation interrupts the handler through ``ActorRef.interrupt``; the
kernel then calls ``on_interrupt`` and the actor goes on with its next item.
A node that parks (``ctx.interrupt``: ``park``) detaches its invocation: this
instance finishes that one item in its own task while a successor instance,
with fresh per-item state, takes the receive loop (``ActorContext.detach``).

It stays one module past ~400 lines because the hot path is one function: splitting
``receive`` across modules would add a call (or a coroutine) per hop, which the
benchmarks measure.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from logging import DEBUG, INFO
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.attempts import Attempts, warn_message_output
from penguiflow._runtime.durable import open_step
from penguiflow._runtime.events import LOGGER
from penguiflow._runtime.policy import DEADLINE_EXCEEDED_TEXT, with_final
from penguiflow._runtime.routing import ROUTED_TYPES, Router, routed
from penguiflow._runtime.signals import (
    CRASH_LIMIT,
    HANDLER,
    STOPPING,
    TraceCancelled,
    TraceInterrupt,
)
from penguiflow._runtime.tracing import PRODUCING_TRACE, Carried, Journaled, trace_id_of
from penguiflow._time import SYSTEM_CLOCK
from penguiflow.actors import Actor
from penguiflow.actors.mailbox import absorb_rearmed_cancel
from penguiflow.node import Node
from penguiflow.types import FinalAnswer, Message

if TYPE_CHECKING:
    from penguiflow._runtime.durable import Step
    from penguiflow._runtime.run_state import RunState
    from penguiflow.actors import ActorContext

__all__ = ["CRASH_LIMIT", "HANDLER", "STOPPING", "NodeActor", "TraceCancelled", "TraceInterrupt"]

_UNSET = object()


class NodeActor(Actor):
    """Runs one ``Node`` of a flow; a new instance per incarnation."""

    # Redelivered after a crash: Attempts.poisoned fails the item at CRASH_LIMIT (2),
    # before the kernel would dead-letter it.
    poison_limit = 3

    def __init__(self, run: RunState, node: Node) -> None:
        self.run = run
        self.node = node
        self.ctx = run.contexts[node]
        self._name = str(node.name)  # durable flows: the journal's holder of an entry
        self._step: Step | None = None  # durable flows: the step of the item in hand
        # Made on first use (_failures, _routes): an idle flow of many nodes that
        # never fail nor loop pays nothing for them.
        self._attempts: Attempts | None = None
        self._router: Router | None = None
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
        # hosting.observe_attempts: the observers of the attempt under way and their
        # tokens, until it ends (here, or in on_interrupt/on_stop if it was cut short).
        self._observed: tuple[tuple[Any, ...], list[Any]] | None = None
        # Parking (ctx.interrupt): this incarnation's kernel context, and whether
        # this instance detached (it then runs only the invocation that parked).
        self._kernel: ActorContext | None = None
        self._detached = False
        self._lane = 0  # the lane of the item that detached
        # In-flight invocations are read off the current incarnations (TraceBook.invoking).
        run.traces.handlers[node] = self
        clock = run.clock
        # The system clock's monotonic() is the loop's time(); skip two calls per read.
        self._monotonic = (
            asyncio.get_running_loop().time if clock is SYSTEM_CLOCK else clock.monotonic
        )
        # Latency only (no timer is armed from it): the builtin skips a Python frame.
        self._latency_clock = time.monotonic if clock is SYSTEM_CLOCK else clock.monotonic
        self._warn = node in run.warn_nodes  # fixed for the run that started us
        self._timeout_s = node.policy.timeout_s
        # Only for a NodePolicy.rate_limit: a token before each attempt (rate_gate).
        self._gate = run.rate_limits.gates.get(node) if node.policy.rate_limit else None
        # Calling node.func directly is what Node.invoke does without validation; a
        # Node subclass overriding invoke is always called through it.
        direct = type(node).invoke is Node.invoke and (
            run.registry is None or node.policy.validate == "none"
        )
        self._func: Any = node.func if direct else None
        # Fixed for the run: whether every event is stored, and the one outgoing
        # edge a result may be put on directly (a data lane; Transport.offer's
        # own tests, made once). Whether the transport is direct, middlewares and
        # the log level may change while running: tested per item.
        self._stored = run.events.state_store is not None
        out = self.ctx._out_list
        edge = out[0] if len(out) == 1 and out[0].lane >= 0 else None
        self._edge_box = edge.mailbox if edge is not None else None
        self._edge_lane = edge.lane if edge is not None else 0

    async def on_start(self, ctx: ActorContext) -> None:
        """Mark the node as started and bind this incarnation's task."""
        # stop() reports node_cancelled for every node whose worker got to run.
        self.run.started.add(self.node)
        self._task = asyncio.current_task()
        self._kernel = ctx
        HANDLER.set(self)

    async def on_stop(self, reason: object) -> None:
        """Close the busy period of an item cut short by the stop."""
        if self._observed is not None:
            self._attempt_ended("cancelled", None)
        self._close()
        self.unwound()

    async def on_restart(self, reason: object) -> None:
        """Close the crashed incarnation's busy period before its replacement starts."""
        # The kernel redelivers the in-flight item to the next incarnation.
        self._close()
        self.unwound()

    def unwound(self) -> None:
        """Tell a waiting ``stop()`` that the invocation it cancelled has ended."""
        waiter = self.run.unwinding.pop(self.node, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def on_interrupt(self, message: Any, reason: object, ctx: ActorContext) -> None:
        """Finish an item whose invocation a trace cancel interrupted."""
        if self._observed is not None:
            self._attempt_ended("cancelled", None)
        if reason is STOPPING:
            # stop() cancels in-flight invocations and drops their items, as 2.2.5 does;
            # a durable flow keeps a journaled one in front (its entry is still held):
            # the next run() handles it again, as recover() would.
            # Not once its commit landed: the journal consumed it (its outputs went
            # on their edges). A commit whose outcome never came counts as not landed.
            step = self._step
            if type(message) is Journaled and step is not None and not step.committed:
                mailbox = self.run.mailboxes[self.node]
                mailbox.requeue_front(message, mailbox.last_lane)
            self._close()
            self.unwound()
            return
        try:
            if self._close():  # else the cancel landed after the item was finished
                await self._failures().report_cancel(message)
                await self.run.io.finish(message)
        finally:
            self.unwound()  # a stop() that came meanwhile waits for this one too

    async def receive(self, message: Any, ctx: ActorContext) -> None:
        """Process one queued item: arrival checks, attempts, routing, accounting."""
        run = self.run
        if run.stopping:
            # Take nothing new while stop() is under way: the item goes back at the
            # front of its lane now (not only once this handler is cancelled: a
            # cancellation that is swallowed leaves the task abandoned, and the item
            # must not go with it), then park until cancelled.
            ctx.self_ref.mailbox.requeue_front(message, ctx.lane or 0)
            ctx.handled()  # put back already: the kernel must not put it back twice
            self.unwound()  # an interrupted handler that returned: it has ended too
            await asyncio.get_running_loop().create_future()
        self._open = True
        run.busy += 1  # RunState.begin_item, inlined: once per hop
        traces = run.traces
        dropped = False  # a bare item of a cancelled trace
        # trace_id_of's own first test, without the call (most items are Messages).
        trace_id: str | None
        producing: str | None
        step: Step | None = None  # a durable flow's journaled item (durable.Step)
        attempt = 0  # a journaled item resumes the retry count its journal holds
        if type(message) is Message:
            trace_id = producing = message.trace_id
        else:
            if type(message) is Journaled:
                # A durable flow: what the node puts waits in the step for its commit.
                step = self._step = open_step(run.io, message, self._name)
                step.landed = ctx.handled  # committed: a stop or crash must not redo it
                attempt = message.attempt
                message = message.item
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
                await run.events.emit("trace_cancel_drop", self.ctx, producing)
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
            else:
                # The attempt loop. Per-hop events nobody listens to are not even
                # built; results go out through Transport.offer (no coroutine, no
                # task) unless an edge is full or the result is routed specially.
                events = run.events
                clock = self._latency_clock
                while True:
                    # Before a retry (the first attempt was checked on arrival).
                    if attempt:
                        if step is not None:
                            await step.hold(attempt)  # retry counts survive a crash
                        if trace_id is not None and traces.cancelled(trace_id):
                            await self._failures().report_cancel(message)
                            break
                    if self._gate is not None and not await self._gate.admit(message, trace_id):
                        break  # its deadline came before its token (rate_gate)
                    # Observed (a state store, middlewares): every event is built;
                    # else only what the log lets through (INFO off: DEBUG off too).
                    info = self._stored or bool(run.middlewares)
                    if info or ((info := LOGGER.isEnabledFor(INFO)) and LOGGER.isEnabledFor(DEBUG)):
                        await events.emit(
                            "node_start", self.ctx, trace_id, attempt=attempt, latency_ms=0.0
                        )
                    if observers := run.attempt_observers:  # hosting.observe_attempts
                        node = self.node
                        tokens = [o.on_attempt(node, trace_id, attempt) for o in observers]
                        self._observed = (observers, tokens)
                    start = clock()
                    try:
                        self._invoking = True
                        try:
                            if self._timeout_s is not None:
                                deadline = self._monotonic() + self._timeout_s
                                async with run.clock.timeout_at(deadline) as scope:
                                    result = await self.node.invoke(
                                        message, self.ctx, registry=run.registry
                                    )
                                if scope.expired():  # it fired as the node returned
                                    await absorb_rearmed_cancel()
                            elif (func := self._func) is not None:
                                result = await func(message, self.ctx)
                            else:
                                result = await self.node.invoke(
                                    message, self.ctx, registry=run.registry
                                )
                        finally:
                            self._invoking = False
                            # True when the trace's items all finished while this ran.
                            if (
                                trace_id is not None
                                and trace_id not in traces.counts
                                and traces.end_invocation(trace_id)
                            ):
                                await run.io.cancel_finished(trace_id)
                        if self._self_cancel:
                            # The node cancelled its own trace and returned before
                            # meeting the CancelledError (cancel_self): settled below.
                            raise TraceCancelled(trace_id)
                        if result is not None:
                            if self._warn and not isinstance(result, Message):
                                warn_message_output(self.node, result)
                            if type(result) is Message or isinstance(result, Message):
                                payload = result.payload
                                special = ROUTED_TYPES.get(type(payload))
                                if special is None:
                                    special = routed(payload)
                                payload = None
                            else:
                                special = False
                            if special:
                                await self._routes().route(message, result)
                            elif (
                                not info
                                and (box := self._edge_box) is not None
                                and trace_id is not None
                                and (
                                    result is message
                                    or (type(result) is Message and result.trace_id == trace_id)
                                )
                                # Put on the one edge without counting: the result takes
                                # over the count of the item in hand. A full edge, a bus
                                # or the self lane go the offer/send way below.
                                and run.io.direct
                                and box.put_nowait(result, self._edge_lane)
                            ):
                                # Nothing awaits from here to the end of receive, so no
                                # one sees the count between a +1 and a -1 that net out.
                                handed_over = True
                            else:
                                io = run.io
                                for floe in self.ctx._out_list:
                                    if not io.offer(floe, result):
                                        await io.send(floe, result)
                    except BaseException as exc:
                        if self._must_propagate(exc):
                            raise
                        if self._observed is not None:
                            self._attempt_ended(self._outcome(exc), exc)
                        latency_ms = (clock() - start) * 1000.0
                        if await self._attempt_failed(message, trace_id, exc, attempt, latency_ms):
                            attempt += 1
                            continue
                        break
                    if self._observed is not None:
                        self._attempt_ended("success", None)
                    if info:
                        latency_ms = (clock() - start) * 1000.0
                        await events.emit(
                            "node_success",
                            self.ctx,
                            trace_id,
                            attempt=attempt,
                            latency_ms=latency_ms,
                        )
                    break
            if step is not None:
                await step.commit()  # before the item's count goes: outputs count first
                self._step = None  # an idle actor pins no item
        except Exception as exc:
            # A fault outside the node function: crash (the supervisor restarts us and
            # the kernel redelivers the item), until the item has crashed us too often.
            # A failed journal commit is such a fault: its step starts empty again.
            if step is not None:
                step.reopen()
            if not await self._failures().poisoned(message, trace_id, exc):
                raise
            if step is not None:
                await step.commit()  # the item's FlowError; a failure here crashes us
                self._step = None
        if run.crashes:
            run.settled(message)
        if self._open:  # not closed by an interrupt meanwhile (see on_interrupt)
            self._open = False
            # RunState.end_item, inlined: once per hop, and wait_idle is rarely waiting.
            run.busy -= 1
            if not run.busy and run.idle is not None:
                run.end_item_idle()
            if run.stopping:
                self.unwound()  # it ended although stop() cancelled it (caught, say)
            # Transport.finish inlined: no coroutine, and TraceBook.done's common
            # case (the trace has other items, nobody waits for capacity) in place.
            if trace_id is not None and not handed_over:
                counts = traces.counts
                left = counts.get(trace_id, 0) - 1
                if left > 0 and not traces.waiters:
                    counts[trace_id] = left
                elif traces.done(trace_id):
                    await run.io.cancel_finished(trace_id)

    def _failures(self) -> Attempts:
        attempts = self._attempts
        if attempts is None:
            attempts = self._attempts = Attempts(self.run, self.node, self.ctx)
        return attempts

    def _routes(self) -> Router:
        router = self._router
        if router is None:
            router = self._router = Router(self.run, self.node, self.ctx)
        return router

    def _close(self) -> bool:
        """End the current item's busy period; False if none was open."""
        if not self._open:
            return False
        self._open = False
        self.run.end_item()
        return True

    def cancel_self(self, run: Any, trace_id: str) -> None:
        """Abort the running node function if it is cancelling its own trace.

        ``ActorRef.interrupt`` will not cancel the calling task, so when a node
        calls ``flow.cancel()`` on the trace it is handling, ``cancel()`` ends here:
        as in 2.2.5 the node sees ``CancelledError`` at its next await and the
        runtime reports ``node_trace_cancelled``. Does nothing unless the caller
        is this actor's task, inside the node function, handling ``trace_id`` for
        the run ``run``.
        """
        task = self._task
        if (
            not self._invoking
            or self._self_cancel
            or run is not self.run
            or self._trace_id != trace_id
            or task is None
            or task is not asyncio.current_task()
        ):
            return
        self._self_cancel = True
        task.cancel()

    def park(self) -> int | None:
        """Give up the item in hand while the node waits in ``ctx.interrupt``.

        From the node function in this actor's task, a successor takes the
        receive loop (the first time) and the item stops counting as busy.
        Returns the mailbox lane the item came from; None, and nothing happens,
        from another task or while stopping.
        """
        run = self.run
        kernel = self._kernel
        if (
            run.stopping
            or kernel is None
            or self._task is not asyncio.current_task()
            or not self._open
        ):
            return None
        if not self._detached:
            self._lane = kernel.lane or 0
            successor = NodeActor(run, self.node)  # registers itself as the handler
            if not kernel.detach(successor):
                run.traces.handlers[self.node] = self
                return None
            self._detached = True
        self._close()
        return self._lane

    def unpark(self) -> None:
        """Take the item back after ``park`` (the invocation goes on, or ends)."""
        self._open = True
        self.run.begin_item()

    def cancel_detached(self) -> None:
        """Cancel the detached invocation as ``cancel_self`` would (its trace is cancelled)."""
        task = self._task
        if not self._invoking or self._self_cancel or task is None or task.done():
            return
        self._self_cancel = True
        task.cancel()

    async def _admit(self, item: Any, trace_id: str) -> bool:
        """Deadline and cancellation checks on arrival; False if the item ends here."""
        run = self.run
        if isinstance(item, Message):
            deadline = item.deadline_s
            if deadline is not None and run.clock.time() > deadline:
                await run.events.emit(
                    "deadline_skip", self.ctx, trace_id, extra={"deadline_s": deadline}
                )
                if isinstance(item.payload, FinalAnswer):
                    final = item.model_copy()
                else:
                    final = with_final(item, DEADLINE_EXCEEDED_TEXT)
                await run.io.to_rookery(final, source=self.node)
                return False
        if run.traces.cancelled(trace_id):
            await run.events.emit("trace_cancel_drop", self.ctx, trace_id)
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
            await self._failures().report_cancel(item)
            return False
        if self.run.stopping:
            # stop() cancelled this invocation and the node raised something else
            # on the way out: no retry (it would start the node again); dropped.
            return False
        assert isinstance(exc, Exception)  # see _must_propagate
        return await self._failures().failed(item, trace_id, exc, attempt, latency_ms)

    async def _absorb_self_cancel(self, item: Any) -> None:
        """Settle a ``cancel_self``, delivered or still pending, and report it."""
        self._self_cancel = False
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0)  # a still-pending self-cancel is delivered here
        task = asyncio.current_task()
        if task is not None and task.uncancel() > 0:
            raise asyncio.CancelledError  # stop() or an interrupt came too: it wins
        await self._failures().report_cancel(item)

    def _attempt_ended(self, outcome: str, exc: BaseException | None) -> None:
        """Tell the attempt observers (in reverse order) how the attempt in hand ended."""
        observed = self._observed
        assert observed is not None
        self._observed = None
        observers, tokens = observed
        if len(observers) == 1:  # the usual case (one instrumentation): no iterators
            observers[0].on_attempt_end(tokens[0], outcome, exc)
            return
        for observer, token in zip(reversed(observers), reversed(tokens), strict=True):
            observer.on_attempt_end(token, outcome, exc)

    def _outcome(self, exc: BaseException) -> str:
        """The ``AttemptObserver`` outcome of an attempt that raised ``exc`` (not propagated)."""
        if self._self_cancel or isinstance(exc, asyncio.CancelledError | TraceCancelled):
            return "cancelled"
        return "timeout" if isinstance(exc, TimeoutError) else "error"

    def _must_propagate(self, exc: BaseException) -> bool:
        """True for a real cancellation (trace interrupt, ``stop()``: the kernel
        decides) and for anything that is not an ``Exception``."""
        if self._self_cancel:
            return False
        if isinstance(exc, asyncio.CancelledError):
            task = asyncio.current_task()
            return task is not None and task.cancelling() > 0
        return not isinstance(exc, Exception)
