"""Spans to the console and Prometheus metrics from a small flow with a retry.

Run: python -m examples.observability.flow
Needs the otel and prometheus extras plus the OpenTelemetry SDK (an exporter):
pip install "penguiflow[otel,prometheus]" opentelemetry-sdk
"""

from __future__ import annotations

import asyncio
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from prometheus_client import CollectorRegistry

from penguiflow import Headers, Message, Node, NodePolicy, create
from penguiflow.metrics import PrometheusCollector
from penguiflow.otel import instrument


def one_line(span: ReadableSpan) -> str:
    """A compact console line per span (the default formatter prints JSON)."""
    attributes = dict(span.attributes or {})
    parent = f"{span.parent.span_id:016x}" if span.parent is not None else "-"
    shown = {k: v for k, v in attributes.items() if k != "penguiflow.trace_id"}
    return (
        f"span {span.name!r} id={span.context.span_id:016x} parent={parent} "
        f"status={span.status.status_code.name} {shown}\n"
    )


async def main() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))

    failures = {"left": 1}

    async def fetch_doc(msg: Message, ctx: Any) -> Message:
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("flaky index")  # the retry policy tries again
        return msg.model_copy(update={"payload": f"doc about {msg.payload}"})

    async def summarise(msg: Message, ctx: Any) -> Message:
        return msg.model_copy(update={"payload": msg.payload.upper()})

    fetch = Node(
        fetch_doc,
        name="fetch",
        policy=NodePolicy(validate="none", max_retries=2, backoff_base=0.01),
    )
    summary = Node(summarise, name="summarise", policy=NodePolicy(validate="none"))
    flow = create(fetch.to(summary), summary.to())

    tracing = instrument(flow, tracer_provider=provider, name="docs")
    registry = CollectorRegistry()
    metrics = PrometheusCollector(flow, registry=registry)

    flow.run()
    try:
        with provider.get_tracer("example").start_as_current_span("request"):
            await flow.emit(Message(payload="krill", headers=Headers(tenant="demo")))
        result = await asyncio.wait_for(flow.fetch(), timeout=5)
        print("result:", result.payload)
    finally:
        await flow.stop()
        tracing.uninstrument()

    wanted = ("penguiflow_messages_total", "penguiflow_node_latency_seconds_count")
    for line in metrics.exposition().decode().splitlines():
        if line.startswith(wanted):
            print("metric", line)


if __name__ == "__main__":
    asyncio.run(main())
