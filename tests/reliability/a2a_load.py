"""A2A server under load: a bounded-concurrency client against an in-process aiohttp server.

``run_load(requests, concurrency)`` starts ``create_a2a_app`` on 127.0.0.1 (a
free port), sends ``requests`` requests from ``concurrency`` client workers,
and reports status codes, latency percentiles, throughput, tasks and objects
before and after. The mix, decided by request number:

* 1% malformed (broken JSON, no ``payload``, headers without ``tenant``): 4xx;
* 10% ``/message/stream``: the node emits one chunk, waits for the client to
  read it, then emits more; a quarter of the streaming clients disconnect
  right after the first chunk, while the node is still streaming (the gate
  makes the disconnect land mid-stream, deterministically), and another
  quarter cancel their task (``/tasks/cancel``) at that point and read the
  ``TRACE_CANCELLED`` error to the end;
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

from penguiflow import Message, Node, NodePolicy, create, predicate_router
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
    cancelled: int
    broken_streams: int
    mismatched: int
    leftover_gates: int
    elapsed_s: float
    p50_ms: float
    p99_ms: float
    send_p50_ms: float
    send_p99_ms: float
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
            f"{self.requests_per_s:.0f} req/s, p50 {self.p50_ms:.1f} ms, p99 {self.p99_ms:.1f} ms "
            f"(message/send alone: p50 {self.send_p50_ms:.1f} ms, p99 {self.send_p99_ms:.1f} ms); "
            f"statuses {dict(sorted(self.statuses.items()))}; {self.malformed} malformed, "
            f"{self.streams} streams ({self.disconnects} disconnected mid-stream, "
            f"{self.cancelled} cancelled mid-stream, {self.broken_streams} broken); "
            f"5xx {self.server_errors}; mismatched {self.mismatched}; "
            f"tasks {self.tasks_before} -> {self.tasks_after}; "
            f"gc objects {self.objects_before} -> {self.objects_after}"
        )


def build_adapter(gates: dict[str, asyncio.Event]) -> tuple[A2AServerAdapter, Any]:
    """An adapter over a flow that echoes, or streams behind a per-trace gate.

    ``route`` sends streaming requests to ``stream`` and the rest to ``echo``,
    so echo requests never queue behind a stream waiting at its gate.
    """

    async def stream(msg: Message, ctx: Any) -> Any:
        await ctx.emit_chunk(parent=msg, text="first")
        gate = gates.setdefault(msg.trace_id, asyncio.Event())
        try:
            await gate.wait()
        finally:
            gates.pop(msg.trace_id, None)
        for index in range(CHUNKS_AFTER_GATE):
            await ctx.emit_chunk(parent=msg, text=f"more {index}")
        await ctx.emit_chunk(parent=msg, text="", done=True)
        return {"streamed": msg.payload["n"]}

    async def echo(msg: Message, ctx: Any) -> Any:
        return {"echo": msg.payload}

    def choose(msg: Message) -> str:
        payload = msg.payload
        return "stream" if isinstance(payload, dict) and payload.get("op") == "stream" else "echo"

    policy = NodePolicy(validate="none")
    streaming = Node(stream, name="stream", policy=policy)
    echoing = Node(echo, name="echo", policy=policy)
    route = predicate_router("route", choose)
    flow = create(route.to(streaming, echoing), streaming.to(), echoing.to(), queue_maxsize=0)
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
) -> tuple[int, str]:
    """One streaming request; returns (status, how it ended).

    Endings: ``"done"`` (read to the end), ``"disconnected"`` (left after the
    first chunk), ``"cancelled"`` (``/tasks/cancel`` after the first chunk,
    then the stream reported ``TRACE_CANCELLED``), ``"broken"`` otherwise.
    """
    trace_id = f"load-{number}"
    body = {"payload": {"op": "stream", "n": number}, "headers": {"tenant": "load"}}
    body["traceId"] = trace_id
    mode = (number // STREAM_EVERY) % DISCONNECT_EVERY
    response = await session.post(f"{base}/message/stream", json=body)
    try:
        if response.status != 200:
            await response.read()
            return response.status, "broken"
        seen_first = cancelled = False
        async for line in response.content:
            if not seen_first and line.startswith(b"data: first"):
                seen_first = True
                if mode == 0:
                    response.close()  # leave mid-stream; the node goes on streaming
                    gates.setdefault(trace_id, asyncio.Event()).set()
                    return 200, "disconnected"
                if mode == 1:
                    # Cancel while the node waits at its gate: it is interrupted.
                    async with session.post(
                        f"{base}/tasks/cancel", json={"taskId": trace_id}
                    ) as reply:
                        if reply.status != 200 or not (await reply.json())["cancelled"]:
                            return reply.status, "broken"
                    continue
                gates.setdefault(trace_id, asyncio.Event()).set()
            elif b"TRACE_CANCELLED" in line:
                cancelled = True
        if mode == 1:
            return 200, "cancelled" if cancelled else "broken"
        return 200, "done" if seen_first else "broken"
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
    # A backlog above the client count: with the default (128) a burst of 400
    # connects overflows the accept queue and SYN retries add a whole second.
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    send_latencies: list[float] = []  # /message/send answers only
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
                status, ending = await _stream(session, base, number, gates)
                counts[ending] += 1
            else:
                body = {"payload": number, "headers": {"tenant": "load"}}
                async with session.post(f"{base}/message/send", json=body) as response:
                    reply = await response.json()
                    status = response.status
                if status == 200 and reply.get("output") != {"echo": number}:
                    counts["mismatched"] += 1
                send_latencies.append(time.perf_counter() - start)
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
        # Two connections per worker: a cancelling client holds its stream open.
        connector = aiohttp.TCPConnector(limit=2 * concurrency)
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
    send_latencies.sort()
    return LoadReport(
        requests=requests,
        concurrency=concurrency,
        statuses=statuses,
        malformed=counts["malformed"],
        streams=counts["streams"],
        disconnects=counts["disconnected"],
        cancelled=counts["cancelled"],
        broken_streams=counts["broken"],
        mismatched=counts["mismatched"],
        leftover_gates=leftover_gates,
        elapsed_s=elapsed,
        p50_ms=statistics.median(latencies) * 1000,
        p99_ms=_percentile(latencies, 0.99),
        send_p50_ms=statistics.median(send_latencies) * 1000,
        send_p99_ms=_percentile(send_latencies, 0.99),
        tasks_before=tasks_before,
        tasks_after=len(asyncio.all_tasks()),
        objects_before=objects_before,
        objects_after=objects_after,
    )


def _percentile(ordered: list[float], fraction: float) -> float:
    """The ``fraction`` percentile of sorted seconds, in milliseconds (nearest rank)."""
    return ordered[max(0, int(len(ordered) * fraction) - 1)] * 1000


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args(argv)
    report = asyncio.run(run_load(args.requests, args.concurrency))
    print(report.summary())


if __name__ == "__main__":
    main()
