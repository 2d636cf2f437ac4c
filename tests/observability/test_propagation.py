"""W3C trace context across the boundaries we own: RemoteNode over A2A, the A2A server."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from spans import attr, by_name, children, one

from penguiflow import _tracecontext
from penguiflow.core import PenguiFlow, create
from penguiflow.node import Node, NodePolicy
from penguiflow.otel import instrument
from penguiflow.remote import RemoteNode
from penguiflow.types import Headers, Message
from penguiflow_a2a import A2AAgentCard, A2AServerAdapter, create_a2a_app
from penguiflow_a2a.client import A2AHttpTransport

NONE = NodePolicy(validate="none")


async def echo(msg: Message, ctx: Any) -> Any:
    return {"echo": msg.payload}


async def test_remote_node_trace_continues_in_the_served_flow(
    flows: list[PenguiFlow], provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    served = create(Node(echo, name="echo", policy=NONE).to())
    instrument(served, tracer_provider=provider, name="server")
    adapter = A2AServerAdapter(
        served, agent_card=A2AAgentCard(name="a", description="d"), agent_url="http://127.0.0.1/"
    )
    app = create_a2a_app(adapter, include_docs=False)
    async with (
        TestClient(TestServer(app, host="127.0.0.1")) as client,
        A2AHttpTransport() as transport,
    ):
        remote = RemoteNode(
            transport=transport,
            skill="echo",
            agent_url=str(client.make_url("/")),
            name="remote",
            policy=NONE,
        )
        origin = create(remote.to())
        instrument(origin, tracer_provider=provider, name="origin")
        origin.run()
        flows.append(origin)
        await origin.emit(Message(payload="hi", headers=Headers(tenant="t")))
        async with asyncio.timeout(5):
            assert await origin.fetch() == {"echo": "hi"}
    spans = exporter.get_finished_spans()
    traces = by_name(spans, "penguiflow.trace")
    origin_trace = next(s for s in traces if attr(s, "penguiflow.flow") == "origin")
    server_trace = next(s for s in traces if attr(s, "penguiflow.flow") == "server")
    (remote_attempt,) = children(spans, origin_trace)
    assert remote_attempt.name == "penguiflow.node remote"
    assert server_trace.parent is not None
    assert server_trace.parent.span_id == remote_attempt.context.span_id
    assert server_trace.context.trace_id == origin_trace.context.trace_id
    assert [s.name for s in children(spans, server_trace)] == ["penguiflow.node echo"]


async def test_a2a_server_without_traceparent_starts_a_root_trace(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    served = create(Node(echo, name="echo", policy=NONE).to())
    instrument(served, tracer_provider=provider, name="server")
    adapter = A2AServerAdapter(
        served, agent_card=A2AAgentCard(name="a", description="d"), agent_url="http://127.0.0.1/"
    )
    app = create_a2a_app(adapter, include_docs=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.post(
            "/message/send", json={"payload": "x", "headers": {"tenant": "t"}}
        )
        assert response.status == 200
    root = one(exporter.get_finished_spans(), "penguiflow.trace")
    assert root.parent is None


def test_carrier_is_empty_without_a_current_span() -> None:
    assert _tracecontext.current_carrier() == {}


def test_an_ended_span_left_current_is_not_propagated(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("live"):
        assert "traceparent" in _tracecontext.current_carrier()
    span = tracer.start_span("ended")
    span.end()
    from opentelemetry import context, trace

    token = context.attach(trace.set_span_in_context(span))
    try:
        assert _tracecontext.current_carrier() == {}
    finally:
        context.detach(token)


def test_remote_parents_are_taken_once_and_bounded(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("sender") as sender:
        carrier = _tracecontext.current_carrier()
    _tracecontext.expect_remote_parent("t1", carrier)
    _tracecontext.expect_remote_parent(None, carrier)  # ignored
    _tracecontext.expect_remote_parent("t2", {})  # ignored
    from opentelemetry import trace

    parent = _tracecontext.take_remote_parent("t1")
    assert trace.get_current_span(parent).get_span_context().span_id == (
        sender.get_span_context().span_id
    )
    assert _tracecontext.take_remote_parent("t1") is None
    assert _tracecontext.take_remote_parent("t2") is None
    for i in range(_tracecontext._REMOTE_MAX + 10):
        _tracecontext.expect_remote_parent(f"x{i}", carrier)
    assert len(_tracecontext._remote) == _tracecontext._REMOTE_MAX
    _tracecontext._remote.clear()


def test_continued_without_headers_changes_nothing() -> None:
    from opentelemetry import trace

    with _tracecontext.continued({}):
        assert not trace.get_current_span().get_span_context().is_valid
    with _tracecontext.continued({"other": "x"}):
        assert not trace.get_current_span().get_span_context().is_valid
