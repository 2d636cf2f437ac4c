"""A flow whose worker copies export their spans to a JSON-lines file (``OTEL_SPAN_FILE``)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from penguiflow import Message, Node, NodePolicy, create
from penguiflow.otel import instrument

SPAN_FILE_ENV = "OTEL_SPAN_FILE"


class FileExporter(SpanExporter):
    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a", encoding="utf-8") as out:
            for span in spans:
                record = {
                    "name": span.name,
                    "trace_id": span.context.trace_id,
                    "span_id": span.context.span_id,
                    "parent": span.parent.span_id if span.parent is not None else None,
                    "pid": os.getpid(),
                }
                out.write(json.dumps(record) + "\n")
        return SpanExportResult.SUCCESS


_provider: TracerProvider | None = None


def _worker_provider() -> TracerProvider | None:
    global _provider
    path = os.environ.get(SPAN_FILE_ENV)
    if path is None:
        return None
    if _provider is None:
        _provider = TracerProvider()
        _provider.add_span_processor(SimpleSpanProcessor(FileExporter(path)))
    return _provider


async def work(msg: Message, ctx: Any) -> Message:
    return msg.model_copy(update={"payload": {"done_by": os.getpid()}})


def build() -> Any:
    """The flow; in a worker (``OTEL_SPAN_FILE`` set) it is instrumented."""
    flow = create(Node(work, name="work", policy=NodePolicy(validate="none")).to())
    provider = _worker_provider()
    if provider is not None:
        instrument(flow, tracer_provider=provider, name="worker")
    return flow
