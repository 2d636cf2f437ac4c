"""penguiflow.otel: the span tree of a trace (in-memory exporter of the OpenTelemetry SDK)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from spans import attr, by_name, children, event_names, one

from penguiflow.actors import DeadLetter
from penguiflow.core import PenguiFlow, call_playbook, create
from penguiflow.errors import FlowError
from penguiflow.node import Node, NodePolicy
from penguiflow.otel import instrument
from penguiflow.patterns import join_k
from penguiflow.types import WM, FinalAnswer, Headers, Message


def message(payload: Any = "x", trace_id: str | None = None) -> Message:
    msg = Message(payload=payload, headers=Headers(tenant="t"))
    if trace_id is not None:
        msg = msg.model_copy(update={"trace_id": trace_id})
    return msg


def node(name: str, fn: Any = None, **policy: Any) -> Node:
    async def passthrough(msg: Any, ctx: Any) -> Any:
        return msg

    return Node(fn or passthrough, name=name, policy=NodePolicy(validate="none", **policy))


async def fetch(flow: PenguiFlow) -> Any:
    async with asyncio.timeout(5):
        return await flow.fetch()


def started(
    flows: list[PenguiFlow], provider: TracerProvider, *adjacencies: Any, **kwargs: Any
) -> PenguiFlow:
    flow = create(*adjacencies, **kwargs)
    instrument(flow, tracer_provider=provider, name="test-flow")
    flow.run()
    flows.append(flow)
    return flow


async def test_chain_has_one_trace_span_with_one_child_per_node(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    a, b = node("a"), node("b")
    flow = started(flows, provider, a.to(b), b.to())
    msg = message()
    await flow.emit(msg)
    await fetch(flow)
    spans = exporter.get_finished_spans()
    root = one(spans, "penguiflow.trace")
    assert root.parent is None
    assert attr(root, "penguiflow.trace_id") == msg.trace_id
    assert attr(root, "penguiflow.flow") == "test-flow"
    assert root.status.status_code is StatusCode.UNSET
    kids = children(spans, root)
    assert [k.name for k in kids] == ["penguiflow.node a", "penguiflow.node b"]
    for kid, name in zip(kids, ["a", "b"], strict=True):
        assert attr(kid, "penguiflow.node") == name
        assert attr(kid, "penguiflow.attempt") == 0
        assert attr(kid, "penguiflow.outcome") == "success"
    # The trace span covers its node spans.
    assert root.start_time <= kids[0].start_time
    assert root.end_time >= kids[-1].end_time


async def test_trace_span_is_a_child_of_the_callers_span(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    flow = started(flows, provider, node("a").to())
    with provider.get_tracer("caller").start_as_current_span("request") as outer:
        await flow.emit(message())
    await fetch(flow)
    spans = exporter.get_finished_spans()
    root = one(spans, "penguiflow.trace")
    assert root.parent is not None
    assert root.parent.span_id == outer.get_span_context().span_id
    assert root.context.trace_id == outer.get_span_context().trace_id


async def test_emit_nowait_opens_the_trace_span_too(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    flow = started(flows, provider, node("a").to())
    flow.emit_nowait(message())
    await fetch(flow)
    spans = exporter.get_finished_spans()
    root = one(spans, "penguiflow.trace")
    assert [s.name for s in children(spans, root)] == ["penguiflow.node a"]


async def test_fan_out_and_join_are_siblings_under_the_trace(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    src, left, right = node("src"), node("left"), node("right")
    join = join_k("join", 2)
    flow = started(flows, provider, src.to(left, right), left.to(join), right.to(join), join.to())
    await flow.emit(message())
    result = await fetch(flow)
    assert len(result.payload) == 2
    spans = exporter.get_finished_spans()
    root = one(spans, "penguiflow.trace")
    names = sorted(k.name for k in children(spans, root))
    assert names == [
        "penguiflow.node join",
        "penguiflow.node join",
        "penguiflow.node left",
        "penguiflow.node right",
        "penguiflow.node src",
    ]
    assert len(spans) == 6  # nothing outside the tree


def fails_first_time() -> Any:
    """A node function that raises on its first call only."""
    calls = 0

    async def fail_once(msg: Any, ctx: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("first time")
        return msg

    return fail_once


async def test_retry_attempts_are_sibling_spans_with_increasing_attempt(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    flow = started(
        flows, provider, node("f", fails_first_time(), max_retries=2, backoff_base=0.0).to()
    )
    await flow.emit(message())
    await fetch(flow)
    spans = exporter.get_finished_spans()
    root = one(spans, "penguiflow.trace")
    kids = children(spans, root)
    assert [attr(k, "penguiflow.attempt") for k in kids] == [0, 1]
    assert [attr(k, "penguiflow.outcome") for k in kids] == ["error", "success"]
    failed = kids[0]
    assert failed.status.status_code is StatusCode.ERROR
    (exc_event,) = [e for e in failed.events if e.name == "exception"]
    assert exc_event.attributes is not None
    assert exc_event.attributes["exception.type"] == "ValueError"
    assert "first time" in str(exc_event.attributes["exception.message"])
    assert kids[1].status.status_code is StatusCode.UNSET
    assert root.status.status_code is StatusCode.UNSET


async def test_timeout_is_recorded_and_fails_the_trace(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async def hang(msg: Any, ctx: Any) -> Any:
        await asyncio.Event().wait()

    flow = started(
        flows, provider, node("slow", hang, timeout_s=0.01).to(), emit_errors_to_rookery=True
    )
    await flow.emit(message())
    error = await fetch(flow)
    assert isinstance(error, FlowError)
    spans = exporter.get_finished_spans()
    root = one(spans, "penguiflow.trace")
    (attempt,) = children(spans, root)
    assert attr(attempt, "penguiflow.outcome") == "timeout"
    assert attempt.status.status_code is StatusCode.ERROR
    assert "exception" in event_names(attempt)
    assert root.status.status_code is StatusCode.ERROR
    assert attr(root, "penguiflow.error.code") == "NODE_TIMEOUT"
    assert attr(root, "penguiflow.error.node") == "slow"


async def test_cancellation_ends_the_attempt_as_cancelled_and_marks_the_trace(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    entered = asyncio.Event()

    async def park(msg: Any, ctx: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()

    flow = started(flows, provider, node("park", park).to())
    msg = message()
    await flow.emit(msg)
    async with asyncio.timeout(5):
        await entered.wait()
    assert await flow.cancel(msg.trace_id) is True
    async with asyncio.timeout(5):
        while not by_name(exporter.get_finished_spans(), "penguiflow.trace"):
            await asyncio.sleep(0)  # polling the exporter, not a timing guess
    spans = exporter.get_finished_spans()
    root = one(spans, "penguiflow.trace")
    assert "penguiflow.trace.cancelled" in event_names(root)
    (attempt,) = children(spans, root)
    assert attr(attempt, "penguiflow.outcome") == "cancelled"


async def test_controller_loop_hops_are_attempt_spans_of_one_trace(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async def ctl(msg: Message, ctx: Any) -> Message:
        wm = msg.payload
        if wm.hops >= 2:
            return msg.model_copy(update={"payload": FinalAnswer(text="done")})
        return msg

    loop = Node(ctl, name="ctl", allow_cycle=True, policy=NodePolicy(validate="none"))
    flow = started(flows, provider, loop.to(loop))
    await flow.emit(message(WM(query="q", budget_hops=5)))
    result = await fetch(flow)
    assert result.payload.text == "done"
    spans = exporter.get_finished_spans()
    root = one(spans, "penguiflow.trace")
    kids = children(spans, root)
    assert [k.name for k in kids] == ["penguiflow.node ctl"] * 3
    assert all(attr(k, "penguiflow.outcome") == "success" for k in kids)


async def test_playbook_trace_nests_under_the_calling_node(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    def playbook() -> tuple[PenguiFlow, None]:
        sub = create(node("inner").to())
        instrument(sub, tracer_provider=provider, name="playbook")
        return sub, None

    async def outer(msg: Message, ctx: Any) -> Any:
        return await call_playbook(playbook, msg)

    flow = started(flows, provider, node("outer", outer).to())
    await flow.emit(message("p"))
    assert await fetch(flow) == "p"
    spans = exporter.get_finished_spans()
    traces = by_name(spans, "penguiflow.trace")
    root = next(s for s in traces if attr(s, "penguiflow.flow") == "test-flow")
    sub_trace = next(s for s in traces if attr(s, "penguiflow.flow") == "playbook")
    (outer_span,) = children(spans, root)
    assert outer_span.name == "penguiflow.node outer"
    assert [s.name for s in children(spans, outer_span)] == ["penguiflow.trace"]
    assert children(spans, outer_span)[0] is sub_trace
    assert [s.name for s in children(spans, sub_trace)] == ["penguiflow.node inner"]


async def test_node_code_sees_its_attempt_span_as_current(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    from opentelemetry import trace

    seen: list[int] = []

    async def look(msg: Any, ctx: Any) -> Any:
        seen.append(trace.get_current_span().get_span_context().span_id)
        return msg

    flow = started(flows, provider, node("look", look).to())
    await flow.emit(message())
    await fetch(flow)
    attempt = one(exporter.get_finished_spans(), "penguiflow.node look")
    assert seen == [attempt.context.span_id]


async def test_spans_started_in_node_code_are_children_of_the_attempt_span(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracer = provider.get_tracer("user")

    async def work(msg: Any, ctx: Any) -> Any:
        with tracer.start_as_current_span("user.work"):
            return msg

    flow = started(flows, provider, node("work", work).to())
    await flow.emit(message())
    await fetch(flow)
    spans = exporter.get_finished_spans()
    attempt = one(spans, "penguiflow.node work")
    assert [s.name for s in children(spans, attempt)] == ["user.work"]
    assert one(spans, "user.work").context.trace_id == attempt.context.trace_id


async def test_the_attempt_span_is_no_longer_current_once_the_attempt_ended(
    flows: list[PenguiFlow], provider: TracerProvider
) -> None:
    from opentelemetry import trace

    from penguiflow import hosting

    after: list[Any] = []

    class Outer:
        """Observes around the instrumentation: ends after it, in the attempt's task."""

        def on_attempt(self, node: Any, trace_id: str | None, attempt: int) -> None:
            return None

        def on_attempt_end(self, token: Any, outcome: str, exc: BaseException | None) -> None:
            after.append(trace.get_current_span())

    flow = create(node("a").to())
    hosting.observe_attempts(flow, Outer())  # before instrument: its end runs last
    instrument(flow, tracer_provider=provider)
    flow.run()
    flows.append(flow)
    await flow.emit(message())
    await fetch(flow)
    assert after == [trace.INVALID_SPAN]


async def test_a_failed_first_attempt_leaves_the_next_traces_first_attempt_a_success(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    flow = started(
        flows, provider, node("f", fails_first_time(), max_retries=1, backoff_base=0.0).to()
    )
    await flow.emit(message())
    await fetch(flow)
    await flow.emit(message())
    await fetch(flow)
    spans = by_name(exporter.get_finished_spans(), "penguiflow.node f")
    got = [(attr(s, "penguiflow.attempt"), attr(s, "penguiflow.outcome")) for s in spans]
    assert got == [(0, "error"), (1, "success"), (0, "success")]


async def test_a_parked_attempt_is_not_taken_for_a_crash_when_its_node_serves_another_trace(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    from penguiflow import Interrupt

    async def ask(msg: Any, ctx: Any) -> Any:
        if msg.payload == "ask":
            await ctx.interrupt("ok?")
        return msg

    flow = started(flows, provider, node("ask", ask).to())
    parked, passing = message("ask"), message("pass")
    await flow.emit(parked)
    notice = await fetch(flow)
    assert isinstance(notice, Interrupt)
    await flow.emit(passing)  # the node is free while `parked` waits
    await fetch(flow)
    await flow.resume(notice.token, "yes")
    await fetch(flow)
    spans = by_name(exporter.get_finished_spans(), "penguiflow.node ask")
    assert [attr(s, "penguiflow.outcome") for s in spans] == ["success", "success"]
    assert [event_names(s) for s in spans] == [[], []]
    trace_ids = {s.context.trace_id for s in spans}
    assert len(trace_ids) == 2  # each under its own trace


async def test_instrument_after_run_is_an_error(
    flows: list[PenguiFlow], provider: TracerProvider
) -> None:
    flow = create(node("a").to())
    flow.run()
    flows.append(flow)
    with pytest.raises(RuntimeError, match=r"before flow\.run\(\)"):
        instrument(flow, tracer_provider=provider)


async def test_instrumenting_twice_is_an_error(provider: TracerProvider) -> None:
    flow = create(node("a").to())
    instrument(flow, tracer_provider=provider)
    with pytest.raises(RuntimeError, match="already instrumented"):
        instrument(flow, tracer_provider=provider)


async def test_uninstrument_stops_new_spans(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    flow = create(node("a").to())
    handle = instrument(flow, tracer_provider=provider)
    handle.uninstrument()
    handle.uninstrument()  # idempotent
    assert "emit" not in vars(flow)
    flow.run()
    flows.append(flow)
    await flow.emit(message())
    await fetch(flow)
    assert exporter.get_finished_spans() == ()


async def test_uninstrument_ends_open_spans(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    entered = asyncio.Event()

    async def park(msg: Any, ctx: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()

    flow = create(node("park", park).to())
    handle = instrument(flow, tracer_provider=provider)
    flow.run()
    flows.append(flow)
    await flow.emit(message())
    async with asyncio.timeout(5):
        await entered.wait()
    handle.uninstrument()
    names = sorted(s.name for s in exporter.get_finished_spans())
    assert names == ["penguiflow.node park", "penguiflow.trace"]


async def test_stop_ends_the_spans_of_unfinished_traces(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    flow = started(flows, provider, node("a").to())
    await flow.emit(message())
    async with asyncio.timeout(5):
        await flow.wait_idle()
    assert by_name(exporter.get_finished_spans(), "penguiflow.trace") == []  # final not fetched
    await flow.stop()
    assert len(by_name(exporter.get_finished_spans(), "penguiflow.trace")) == 1


async def test_dead_letter_is_an_event_on_the_span_in_hand(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    flow = create(node("a").to())
    handle = instrument(flow, tracer_provider=provider)
    with handle.tracer.start_as_current_span("in-hand"):
        handle.on_dead_letter(DeadLetter("a", message(), "stopped"))
    (span,) = exporter.get_finished_spans()
    (event,) = span.events
    assert event.name == "penguiflow.dead_letter"
    assert event.attributes is not None
    assert event.attributes["penguiflow.reason"] == "stopped"


async def test_failed_emit_ends_the_trace_span_with_the_error(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    flow = create(node("a").to())
    instrument(flow, tracer_provider=provider)
    with pytest.raises(KeyError):
        await flow.emit(message(), to="nobody")
    root = one(exporter.get_finished_spans(), "penguiflow.trace")
    assert root.status.status_code is StatusCode.ERROR


async def test_actor_restart_is_an_event_on_the_redelivered_attempt(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    from penguiflow.testkit import kill_actor

    entered = asyncio.Event()
    calls = 0

    async def park_once(msg: Any, ctx: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            entered.set()
            await asyncio.Event().wait()
        return msg

    flow = started(flows, provider, node("victim", park_once).to())
    await flow.emit(message())
    async with asyncio.timeout(5):
        await entered.wait()
    assert kill_actor(flow, "victim") is True
    await fetch(flow)
    spans = exporter.get_finished_spans()
    root = one(spans, "penguiflow.trace")
    crashed, redelivered = children(spans, root)
    assert attr(crashed, "penguiflow.outcome") == "error"
    assert attr(redelivered, "penguiflow.outcome") == "success"
    assert "penguiflow.actor.restart" in event_names(redelivered)


async def test_unsampled_traces_have_no_attempt_spans_but_node_code_keeps_the_trace(
    flows: list[PenguiFlow], exporter: InMemorySpanExporter
) -> None:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    seen: list[Any] = []

    async def look(msg: Any, ctx: Any) -> Any:
        seen.append(trace.get_current_span().get_span_context())
        return msg

    flow = started(flows, provider, node("look", look).to())
    await flow.emit(message())
    await fetch(flow)
    assert exporter.get_finished_spans() == ()
    (context,) = seen
    assert context.is_valid
    assert not context.trace_flags.sampled


async def test_emit_nowait_into_a_full_edge_ends_the_span_with_the_error(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    flow = create(node("a").to(), queue_maxsize=1)
    instrument(flow, tracer_provider=provider)
    flow.emit_nowait(message())  # not running: it waits in the edge
    with pytest.raises(asyncio.QueueFull):
        flow.emit_nowait(message())
    (failed,) = exporter.get_finished_spans()
    assert failed.status.status_code is StatusCode.ERROR
    flow.run()
    flows.append(flow)
    await fetch(flow)
    assert len(by_name(exporter.get_finished_spans(), "penguiflow.trace")) == 2


async def test_a_cancelled_emit_records_the_cancellation(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    flow = create(node("a").to(), queue_maxsize=1)
    instrument(flow, tracer_provider=provider)
    await flow.emit(message())  # fills the edge: the flow is not running
    blocked = asyncio.ensure_future(flow.emit(message()))
    await asyncio.sleep(0)  # let it block on the full edge
    blocked.cancel()
    with pytest.raises(asyncio.CancelledError):
        await blocked
    spans = exporter.get_finished_spans()
    (span,) = spans
    assert event_names(span) == ["penguiflow.emit_cancelled"]


async def test_traceless_items_get_root_attempt_spans(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    flow = started(flows, provider, node("a").to())
    await flow.emit({"no": "trace"})
    assert await fetch(flow) == {"no": "trace"}
    (span,) = exporter.get_finished_spans()
    assert span.name == "penguiflow.node a"
    assert span.parent is None


async def test_a_trace_started_inside_a_node_gets_its_own_root_span(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    async def fork(msg: Message, ctx: Any) -> Any:
        if msg.payload == "first":
            await ctx.emit(message("second", trace_id="forked"))
        return msg

    forker, sink = node("fork", fork), node("sink")
    flow = started(flows, provider, forker.to(sink), sink.to())
    await flow.emit(message("first"))
    async with asyncio.timeout(5):
        await flow.wait_idle()
    await flow.stop()
    traces = by_name(exporter.get_finished_spans(), "penguiflow.trace")
    forked = next(s for s in traces if attr(s, "penguiflow.trace_id") == "forked")
    assert forked.parent is None


async def test_a_parked_remote_parent_adopts_the_traces_attempts(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    from penguiflow import _tracecontext

    async def fork(msg: Message, ctx: Any) -> Any:
        if msg.payload == "first":
            await ctx.emit(message("second", trace_id="adopted"))
        return msg

    with provider.get_tracer("t").start_as_current_span("sender") as sender:
        _tracecontext.expect_remote_parent("adopted", _tracecontext.current_carrier())
    forker, sink = node("fork", fork), node("sink")
    flow = started(flows, provider, forker.to(sink), sink.to())
    await flow.emit(message("first"))
    async with asyncio.timeout(5):
        await flow.wait_idle()
    await flow.stop()
    spans = exporter.get_finished_spans()
    adopted = [
        s for s in spans if s.parent and s.parent.span_id == sender.get_span_context().span_id
    ]
    assert [s.name for s in adopted] == ["penguiflow.node sink"]
    assert not any(attr(s, "penguiflow.trace_id") == "adopted" for s in spans)


async def test_dead_letter_falls_back_to_the_actor_attempt_then_the_trace(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    entered = asyncio.Event()

    async def park(msg: Any, ctx: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()

    flow = create(node("park", park).to())
    handle = instrument(flow, tracer_provider=provider)
    flow.run()
    flows.append(flow)
    msg = message()
    await flow.emit(msg)
    async with asyncio.timeout(5):
        await entered.wait()
    handle.on_dead_letter(DeadLetter("park", msg, "poison"))  # the actor's attempt
    handle.on_dead_letter(DeadLetter("elsewhere", msg, "stopped"))  # the trace's span
    handle.on_dead_letter(DeadLetter("elsewhere", "no trace", "stopped"))  # nowhere: ignored
    handle.uninstrument()
    spans = exporter.get_finished_spans()
    assert event_names(one(spans, "penguiflow.node park")) == [
        "penguiflow.dead_letter",
        "penguiflow.cancelled",
    ]
    assert event_names(one(spans, "penguiflow.trace")) == ["penguiflow.dead_letter"]
