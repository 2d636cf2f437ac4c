"""A2A server under load: a bounded-concurrency client against an in-process aiohttp server.

``run_load(requests, concurrency)`` starts ``create_a2a_app`` on 127.0.0.1 (a
free port), sends ``requests`` requests from ``concurrency`` client workers,
and reports status codes, latency percentiles, throughput, tasks and objects
before and after. The mix, decided by request number:

* 1% malformed (broken JSON, no ``payload``, headers without ``tenant``): 4xx;
* 10% ``/message/stream``: the node emits one chunk, waits for the client to
  read it, then emits more; every fourth streaming client disconnects right
  after the first chunk, while the node is still streaming (the gate makes
  the disconnect land mid-stream, deterministically);
* the rest ``/message/send`` echo requests.

Run the full size by hand::

    .venv/bin/python -m tests.reliability.a2a_load --requests 20000 --concurrency 200
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from penguiflow import Headers, Message, Node, NodePolicy, create
from penguiflow_a2a import A2AAgentCard, A2AServerAdapter, create_a2a_app

MALFORMED_EVERY = 100
STREAM_EVERY = 10
DISCONNECT_EVERY = 4  # among streaming requests
CHUNKS_AFTER_GATE = 3


@dataclass(frozen=True)
class LoadReport:
    requests: int
    concurrency: int
    statuses: Counter[int]
    malformed: int
    streams: int
    disconnects: int
    mismatched: int
    leftover_gates: int
    elapsed_s: float
    p50_ms: float
    p99_ms: float
    tasks_before: int
    tasks_after: int
    objects_before: int
    objects_after: int

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.elapsed_s

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    def summary(self) -> str:
        return (
            f"{self.requests} requests at concurrency {self.concurrency}: "
            f"{self.requests_per_s:.0f} req/s, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms; "
            f"statuses {dict(sorted(self.statuses.items()))}; {self.malformed} malformed, "
            f"{self.streams} streams ({self.disconnects} disconnected mid-stream); "
            f"5xx {self.server_errors}; mismatched {self.mismatched}; "
            f"tasks {self.tasks_before} -> {self.tasks_after}; "
            f"gc objects {self.objects_before} -> {self.objects_after}"
        )


def build_adapter(gates: dict[str, asyncio.Event]) -> tuple[A2AServerAdapter, Any]:
    """An adapter over a one-node flow that echoes, or streams behind a per-trace gate."""

    async def work(msg: Message, ctx: Any) -> Any:
        payload = msg.payload
        if isinstance(payload, dict) and payload.get("op") == "stream":
            await ctx.emit_chunk(parent=msg, text="first")
            gate = gates.setdefault(msg.trace_id, asyncio.Event())
            try:
                await gate.wait()
            finally:
                gates.pop(msg.trace_id, None)
            for index in range(CHUNKS_AFTER_GATE):
                await ctx.emit_chunk(parent=msg, text=f"more {index}")
            await ctx.emit_chunk(parent=msg, text="", done=True)
            return {"streamed": payload["n"]}
        return {"echo": payload}

    flow = create(Node(work, name="work", policy=NodePolicy(validate="none")).to(), queue_maxsize=0)
    card = A2AAgentCard(name="load", description="load test agent")
    return A2AServerAdapter(flow, agent_card=card, agent_url="http://127.0.0.1/"), flow


def _malformed(number: int) -> bytes:
    kind = (number // MALFORMED_EVERY) % 3
    if kind == 0:
        return b'{"payload": '  # broken JSON
    if kind == 1:
        return json.dumps({"headers": {"tenant": "load"}}).encode()  # no payload
    return json.dumps({"payload": 1, "headers": {"topic": "x"}}).encode()  # no tenant


async def _stream(
    session: aiohttp.ClientSession,
    base: str,
    number: int,
    gates: dict[str, asyncio.Event],
) -> tuple[int, bool]:
    """One streaming request; returns (status, disconnected)."""
    trace_id = f"load-{number}"
    body = {"payload": {"op": "stream", "n": number}, "headers": {"tenant": "load"}}
    body["traceId"] = trace_id
    disconnect = (number // STREAM_EVERY) % DISCONNECT_EVERY == 0
    response = await session.post(f"{base}/message/stream", json=body)
    try:
        if response.status != 200:
            await response.read()
            return response.status, False
        seen_first = False
        async for line in response.content:
            if not seen_first and line.startswith(b"data: first"):
                seen_first = True
                if disconnect:
                    response.close()  # leave mid-stream; the node goes on streaming
                gates.setdefault(trace_id, asyncio.Event()).set()
                if disconnect:
                    return 200, True
        return 200, False
    finally:
        response.release()


async def run_load(requests: int, concurrency: int) -> LoadReport:
    """Serve ``requests`` requests from ``concurrency`` workers; see the module docstring."""
    gc.collect()
    tasks_before = len(asyncio.all_tasks())
    gates: dict[str, asyncio.Event] = {}
    adapter, flow = build_adapter(gates)
    app = create_a2a_app(adapter, include_docs=False, sse_heartbeat_s=None)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    counts = Counter[str]()
    next_number = iter(range(requests))

    async def worker(session: aiohttp.ClientSession) -> None:
        for number in next_number:
            start = time.perf_counter()
            if number % MALFORMED_EVERY == MALFORMED_EVERY - 1:
                counts["malformed"] += 1
                async with session.post(
                    f"{base}/message/send",
                    data=_malformed(number),
                    headers={"Content-Type": "application/json"},
                ) as response:
                    await response.read()
                    status = response.status
            elif number % STREAM_EVERY == 0:
                counts["streams"] += 1
                status, disconnected = await _stream(session, base, number, gates)
                counts["disconnects"] += disconnected
            else:
                body = {"payload": number, "headers": {"tenant": "load"}}
                async with session.post(f"{base}/message/send", json=body) as response:
                    reply = await response.json()
                    status = response.status
                if status == 200 and reply.get("output") != {"echo": number}:
                    counts["mismatched"] += 1
            latencies.append(time.perf_counter() - start)
            statuses[status] += 1

    objects_before = 0
    try:
        # Warm-up so lazily built validators and caches exist before the baseline.
        async with aiohttp.ClientSession() as session:
            for number in range(20):
                async with session.post(
                    f"{base}/message/send", json={"payload": number, "headers": {"tenant": "w"}}
                ) as response:
                    await response.read()
        gc.collect()
        objects_before = len(gc.get_objects())
        started = time.perf_counter()
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        # Disconnected streams finish inside the server after their client left.
        async with asyncio.timeout(10):
            await flow.wait_idle()
            # The clients are gone; give the server the turns it needs to see
            # every socket close (it has no "all closed" event to await).
            while runner.server is not None and runner.server.connections:
                await asyncio.sleep(0.01)
        leftover_gates = len(gates)
        gc.collect()
        objects_after = len(gc.get_objects())
    finally:
        await runner.cleanup()
    await asyncio.sleep(0)
    latencies.sort()
    return LoadReport(
        requests=requests,
        concurrency=concurrency,
        statuses=statuses,
        malformed=counts["malformed"],
        streams=counts["streams"],
        disconnects=counts["disconnects"],
        mismatched=counts["mismatched"],
        leftover_gates=leftover_gates,
        elapsed_s=elapsed,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=latencies[int(len(latencies) * 0.99) - 1] * 1000,
        tasks_before=tasks_before,
        tasks_after=len(asyncio.all_tasks()),
        objects_before=objects_before,
        objects_after=objects_after,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args(argv)
    report = asyncio.run(run_load(args.requests, args.concurrency))
    print(report.summary())


if __name__ == "__main__":
    main()
