"""OpenTelemetry spans for a flow: one per trace, one per node attempt (extra ``otel``).

``instrument(flow)`` registers on the hosting seam (``penguiflow.hosting``) an
attempt observer (``observe_attempts``: one span per node attempt, with no
``FlowEvent`` built per hop), an event listener (``observe_events``: failures
and cancellations, which are rare), an emit observer (``observe_emits``: a
trace's span starts in the caller's context) and a trace listener (the end of
each trace). Nothing is installed on a flow that is not instrumented, so an
uninstrumented flow pays nothing.

Span names and attributes are listed in ``docs/observability.md``.
"""

from __future__ import annotations

import asyncio
import weakref
from contextvars import Token
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, TracerProvider
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "penguiflow.otel needs opentelemetry-api: pip install 'penguiflow[otel]'"
    ) from exc

from penguiflow import __version__, hosting
from penguiflow._tracecontext import take_remote_parent
from penguiflow.planner._telemetry import record_token_usage

if TYPE_CHECKING:
    from penguiflow.actors import DeadLetter
    from penguiflow.metrics import FlowEvent

__all__ = [
    "ATTEMPT_ATTR",
    "FLOW_ATTR",
    "NODE_ATTR",
    "OUTCOME_ATTR",
    "TRACE_ID_ATTR",
    "TRACE_SPAN",
    "Instrumentation",
    "instrument",
    "record_token_usage",
]

TRACE_SPAN = "penguiflow.trace"
"""Name of the span covering one trace, from ``emit`` to its end."""
TRACE_ID_ATTR = "penguiflow.trace_id"
FLOW_ATTR = "penguiflow.flow"
NODE_ATTR = "penguiflow.node"
ATTEMPT_ATTR = "penguiflow.attempt"
OUTCOME_ATTR = "penguiflow.outcome"


@dataclass(slots=True)
class _TraceSpan:
    span: Span
    context: otel_context.Context
    recording: bool
    failed: bool = False
    emitting: int = 0  # emit calls of this trace in progress
    ended: bool = False  # the trace is over (its span ends once no emit is in progress)


@dataclass(slots=True)
class _AttemptSpan:
    span: Span | None  # None for a trace that is not sampled
    name: str  # the node's name (= its actor's name)
    key: str  # the node's id
    token: Token[otel_context.Context]  # detached by the task that attached it
    task: asyncio.Task[Any] | None  # the task running the attempt
    open: bool = True  # False once ended (then in neither _attempts nor _aside)


@dataclass(frozen=True, slots=True)
class _NodeNames:
    """What every attempt span of one node repeats, built on its first attempt."""

    name: str  # the node's name (= its actor's name)
    span_name: str
    first: dict[str, Any]  # the attributes of attempt 0 (passed to the SDK, never mutated)


class Instrumentation:
    """What ``instrument`` returns: the live instrumentation of one flow.

    Also usable as an ``ActorSystem(on_dead_letter=handle.on_dead_letter)``
    callback, so dead letters become span events.

    .. versionadded:: 3.0
    """

    def __init__(self, flow: Any, tracer: Tracer, flow_name: str) -> None:
        self._flow = flow
        self._tracer = tracer
        self._flow_name = flow_name
        self._traces: dict[str, _TraceSpan] = {}
        self._attempts: dict[str, _AttemptSpan] = {}  # node id -> its attempt in hand
        # Attempts still running while their node took another item (a parked
        # ctx.interrupt hands the node to a successor), by id().
        self._aside: dict[int, _AttemptSpan] = {}
        self._names: dict[str, _NodeNames] = {}  # node id -> its span name and attributes
        self._installed = True
        # Around every emit (hosting.observe_emits): the trace's span is current
        # while emit runs, so what it sends across a process names it as parent.
        hosting.observe_emits(flow, self)
        hosting.observe_attempts(flow, self)
        hosting.observe_events(flow, self._on_event)
        flow.add_trace_listener(self._trace_ended)

    @property
    def tracer(self) -> Tracer:
        """The tracer every span of this flow comes from."""
        return self._tracer

    def uninstrument(self) -> None:
        """Remove the instrumentation; spans still open end now. Idempotent."""
        if not self._installed:
            return
        self._installed = False
        flow = self._flow
        hosting.unobserve_emits(flow, self)
        hosting.unobserve_attempts(flow, self)
        hosting.unobserve_events(flow, self._on_event)
        _INSTRUMENTED.pop(flow, None)
        flow.remove_trace_listener(self._trace_ended)
        for attempt in (*self._attempts.values(), *self._aside.values()):
            # Not in the attempts' tasks: their contexts are theirs to drop.
            self._end(attempt, "cancelled", None)
        for trace_id in tuple(self._traces):
            self._trace_ended(trace_id)

    # -- emits (hosting.EmitObserver) -------------------------------------------------
    def emit_started(
        self, msg: Any
    ) -> tuple[_TraceSpan | None, bool, Token[otel_context.Context] | None]:
        """Open (or join) the span of ``msg``'s trace in the caller's context; make it current.

        Returns the trace's state, whether its span is new, and the token to
        detach: while ``emit`` runs, whatever it sends across a process (a
        distributed node's work entry) names the trace's span as its parent.
        """
        trace_id = getattr(msg, "trace_id", None)
        if not isinstance(trace_id, str):
            return None, False, None
        state = self._traces.get(trace_id)
        started = state is None
        if state is None:
            state = self._open_trace(trace_id, otel_context.get_current())
        state.emitting += 1
        return state, started, otel_context.attach(state.context)

    def emit_finished(self, msg: Any, handle: Any, error: BaseException | None) -> None:
        """Detach the trace's span; a failed emit is recorded on it."""
        state, started, token = handle
        if state is None:
            return
        if error is not None:
            self._emit_failed(msg.trace_id, state, started, error)
        state.emitting -= 1
        otel_context.detach(token)
        if state.ended and not state.emitting:
            state.span.end()  # the trace ended while this emit ran (_trace_ended)

    # -- traces -----------------------------------------------------------------------
    def _open_trace(self, trace_id: str, parent: otel_context.Context | None) -> _TraceSpan:
        span = self._tracer.start_span(
            TRACE_SPAN,
            context=parent,
            kind=SpanKind.INTERNAL,
            attributes={TRACE_ID_ATTR: trace_id, FLOW_ATTR: self._flow_name},
        )
        state = _TraceSpan(span, otel_trace.set_span_in_context(span), span.is_recording())
        self._traces[trace_id] = state
        return state

    def _emit_failed(
        self, trace_id: str, state: _TraceSpan, started: bool, error: BaseException
    ) -> None:
        """``emit`` raised: if that left the trace with nothing, its span ends with it."""
        if not state.ended:
            if not started or self._flow_active(trace_id):
                return  # the trace goes on (an earlier emit of it is under way)
            # Nothing was counted, so no trace listener will ever end it.
            self._traces.pop(trace_id, None)
            state.ended = True
        if isinstance(error, asyncio.CancelledError):
            state.span.add_event("penguiflow.emit_cancelled")
        else:
            state.span.record_exception(error)
            state.span.set_status(Status(StatusCode.ERROR, type(error).__name__))

    def _flow_active(self, trace_id: str) -> bool:
        snapshot = self._flow.mailboxes()
        return any(
            getattr(item, "trace_id", None) == trace_id
            for box in snapshot.values()
            for item in box.items
        )

    def _trace_ended(self, trace_id: str) -> None:
        state = self._traces.pop(trace_id, None)
        if state is None:
            return
        state.ended = True
        if not state.emitting:  # else the emit in progress ends it (emit_finished)
            state.span.end()

    def _trace(self, trace_id: str) -> _TraceSpan:
        state = self._traces.get(trace_id)
        if state is None:
            remote = take_remote_parent(trace_id)
            if remote is not None:
                # A worker's item: its attempts are children of the sender's span
                # (which this process does not own, so no local trace span).
                span = otel_trace.get_current_span(remote)
                sampled = span.get_span_context().trace_flags.sampled
                state = _TraceSpan(span, remote, sampled)
                self._traces[trace_id] = state
            else:
                # A trace that did not enter through flow.emit (a node emitted a
                # message of a new trace): a root span from its first attempt on.
                state = self._open_trace(trace_id, None)
        return state

    # -- node attempts (hosting.AttemptObserver) ------------------------------------------
    def _on_event(self, event: FlowEvent) -> None:
        kind = event.event_type
        if kind == "node_failed":
            self._trace_failed(event)
        elif kind == "trace_cancel_start" and event.trace_id is not None:
            state = self._traces.get(event.trace_id)
            if state is not None:
                state.span.add_event(
                    "penguiflow.trace.cancelled", {"pending": int(event.extra.get("pending", 0))}
                )

    def on_attempt(self, node: Any, trace_id: str | None, attempt: int) -> _AttemptSpan:
        """Open the attempt's span (a child of its trace's) and make it current."""
        key: str = node.node_id
        names = self._names.get(key) or self._node_names(node)
        attempts = self._attempts
        task = asyncio.current_task()
        crashed = attempts.get(key)
        if crashed is not None:
            if crashed.task is None or crashed.task.done():
                # Its actor crashed and was restarted, and the kernel redelivered
                # the item (no detach: its task is gone).
                self._end(crashed, "error", None)
            else:  # still running (parked in ctx.interrupt): it ends in its task
                self._aside[id(crashed)] = crashed
                crashed = None
        parent: otel_context.Context | None = None
        if trace_id is not None:
            state = self._traces.get(trace_id) or self._trace(trace_id)
            parent = state.context
            if not state.recording:
                # Sampled out: no attempt spans (they would be dropped anyway), but
                # the node's code still runs in the trace's context, so whatever it
                # propagates carries the trace and its sampling decision.
                handle = _AttemptSpan(None, names.name, key, otel_context.attach(parent), task)
                attempts[key] = handle
                return handle
        span = self._tracer.start_span(
            names.span_name,
            context=parent,
            kind=SpanKind.INTERNAL,
            # Only what the parent does not say (the SDK validates each attribute,
            # every hop); outcome preset to success: set_attribute would cost more.
            attributes=names.first
            if not attempt
            else {NODE_ATTR: names.name, ATTEMPT_ATTR: attempt, OUTCOME_ATTR: "success"},
        )
        if crashed is not None:
            span.add_event("penguiflow.actor.restart", {"penguiflow.actor": names.name})
        # Current for the node's own code (a planner, a playbook, a remote call): this
        # runs inline in the node actor's task, right before the node.
        token = otel_context.attach(otel_trace.set_span_in_context(span, parent))
        handle = _AttemptSpan(span, names.name, key, token, task)
        attempts[key] = handle
        return handle

    def _node_names(self, node: Any) -> _NodeNames:
        key: str = node.node_id
        name: str = node.name or key
        first = {NODE_ATTR: name, ATTEMPT_ATTR: 0, OUTCOME_ATTR: "success"}
        names = _NodeNames(name, f"penguiflow.node {name}", first)
        self._names[key] = names
        return names

    def on_attempt_end(self, token: Any, outcome: str, exc: BaseException | None) -> None:
        """End the attempt's span with ``outcome``; an error or timeout is recorded on it.

        Called by the node actor in the attempt's own task (``AttemptObserver``),
        so the context ``on_attempt`` attached is detached here.
        """
        attempt: _AttemptSpan = token
        if not attempt.open:
            return  # already ended (uninstrument, or taken for a crashed attempt)
        otel_context.detach(attempt.token)
        span = attempt.span
        if span is not None and outcome == "success":
            # The common case, inline: the span was opened with outcome=success.
            self._forget(attempt)
            span.end()
            return
        self._end(attempt, outcome, exc)

    def _end(self, attempt: _AttemptSpan, outcome: str, exc: BaseException | None) -> None:
        """End an open attempt (its context is not touched: see ``on_attempt_end``)."""
        self._forget(attempt)
        span = attempt.span
        if span is None:
            return
        if outcome != "success":
            span.set_attribute(OUTCOME_ATTR, outcome)
            if outcome in ("error", "timeout"):
                kind = type(exc).__name__ if exc is not None else "unknown"
                span.add_event(
                    "exception",
                    {"exception.type": kind, "exception.message": "" if exc is None else str(exc)},
                )
                span.set_status(Status(StatusCode.ERROR, kind if exc is not None else outcome))
            elif outcome == "cancelled":
                span.add_event("penguiflow.cancelled")
        span.end()

    def _forget(self, attempt: _AttemptSpan) -> None:
        attempt.open = False
        if self._attempts.get(attempt.key) is attempt:
            del self._attempts[attempt.key]
        else:
            del self._aside[id(attempt)]

    def _trace_failed(self, event: FlowEvent) -> None:
        trace_id = event.trace_id
        if trace_id is None:
            return
        state = self._trace(trace_id)
        state.failed = True
        error = event.error_payload or {}
        code = str(error.get("code", "NODE_EXCEPTION"))
        state.span.set_attribute("penguiflow.error.code", code)
        if event.node_name is not None:
            state.span.set_attribute("penguiflow.error.node", event.node_name)
        state.span.set_status(Status(StatusCode.ERROR, str(error.get("message", code))))

    # -- dead letters ---------------------------------------------------------------------
    def on_dead_letter(self, letter: DeadLetter) -> None:
        """Record a dead letter as a ``penguiflow.dead_letter`` event on the span in hand.

        The span in hand is the current span, else the attempt of the actor
        concerned, else the span of the letter's trace.
        """
        span: Span | None = otel_trace.get_current_span()
        if span is None or not span.is_recording():
            attempts = (*self._attempts.values(), *self._aside.values())
            span = next((a.span for a in attempts if a.name == letter.actor), None)
        if span is None:
            trace_id = getattr(letter.message, "trace_id", None)
            state = self._traces.get(trace_id) if isinstance(trace_id, str) else None
            span = state.span if state is not None else None
        if span is not None:
            span.add_event(
                "penguiflow.dead_letter",
                {"penguiflow.actor": letter.actor, "penguiflow.reason": letter.reason},
            )


def instrument(
    flow: Any, tracer_provider: TracerProvider | None = None, *, name: str | None = None
) -> Instrumentation:
    """Emit OpenTelemetry spans for ``flow``: one per trace and one per node attempt.

    Args:
        flow: a ``PenguiFlow`` that is not running yet.
        tracer_provider: where spans go; ``None`` means the global provider.
        name: the ``penguiflow.flow`` attribute (default: ``"penguiflow"``).

    Raises:
        RuntimeError: the flow is already running, or already instrumented.

    .. versionadded:: 3.0
    """
    if flow.supervisor is not None:
        raise RuntimeError("instrument(flow) must be called before flow.run()")
    if flow in _INSTRUMENTED:
        raise RuntimeError("flow is already instrumented (call handle.uninstrument() first)")
    tracer = otel_trace.get_tracer("penguiflow", __version__, tracer_provider=tracer_provider)
    handle = Instrumentation(flow, tracer, name or "penguiflow")
    _INSTRUMENTED[flow] = handle
    return handle


#: Flows with a live instrumentation (weakly: an instrumented flow may be dropped).
_INSTRUMENTED: weakref.WeakKeyDictionary[Any, Instrumentation] = weakref.WeakKeyDictionary()
