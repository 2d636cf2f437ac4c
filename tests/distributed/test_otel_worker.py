"""OpenTelemetry across processes: a worker's node spans are children of the origin's trace."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import otel_flows
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from penguiflow import Headers, Message
from penguiflow.distributed import RedisDeployment
from penguiflow.otel import instrument

pytestmark = [pytest.mark.redis, pytest.mark.slow]

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def _start(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(command, env=env, cwd=ROOT)


async def test_worker_node_spans_are_children_of_the_origin_trace_span(
    redis_url: str, namespace: str, tmp_path: Path
) -> None:
    span_file = tmp_path / "worker-spans.jsonl"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]),
        otel_flows.SPAN_FILE_ENV: str(span_file),
    }
    env = {k: v for k, v in env.items() if not k.startswith("COVERAGE_")}
    command = [
        sys.executable, "-m", "penguiflow.distributed.worker",
        "--redis", redis_url, "--flow", "otel_flows:build", "--flow-name", "otel",
        "--prefix", namespace, "--node", "work", "--block-ms", "100",
    ]  # fmt: skip
    worker = _start(command, env)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    flow = otel_flows.build()
    instrument(flow, tracer_provider=provider, name="origin")
    deployment = RedisDeployment(
        redis_url, nodes=["work"], flow_name="otel", prefix=namespace, block_ms=100
    )
    deployment.apply(flow)
    flow.run()
    try:
        messages = [Message(payload=n, headers=Headers(tenant="t")) for n in range(3)]
        for msg in messages:
            await flow.emit(msg)
        async with asyncio.timeout(60):
            results = [await flow.fetch() for _ in messages]
        assert {r.payload["done_by"] for r in results} == {worker.pid}
    finally:
        await flow.stop()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=20)
        await deployment.close()
    assert worker.returncode == 0
    origin = {
        span.attributes["penguiflow.trace_id"]: span
        for span in exporter.get_finished_spans()
        if span.name == "penguiflow.trace"
    }
    assert set(origin) == {m.trace_id for m in messages}
    remote = [json.loads(line) for line in span_file.read_text().splitlines()]
    attempts = [r for r in remote if r["name"] == "penguiflow.node work"]
    assert len(attempts) == 3
    assert {r["pid"] for r in attempts} == {worker.pid}
    by_span = {span.context.span_id: span for span in origin.values()}
    for record in attempts:
        parent = by_span[record["parent"]]
        assert parent.context.trace_id == record["trace_id"]
    assert [r for r in remote if r["name"] == "penguiflow.trace"] == []
