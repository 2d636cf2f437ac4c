"""Scale-out on Redis Streams: throughput with 1, 2 and 4 workers; cost of a Redis hop.

Run from the repository root (a redis-server is started on a free port unless
``--redis`` is given)::

    .venv/bin/python -m benchmarks.redis_scaleout            # N=2000, 1/2/4 workers
    .venv/bin/python -m benchmarks.redis_scaleout --n 500 --workers 1,2 --latency-n 100

Throughput: ``--n`` messages through a one-node flow whose node is distributed
(``work``: ``--work-ms`` of CPU per message, default 1 ms, so there is something
to spread), with 1, 2, 4 worker processes of ``--concurrency`` slots each.
The same flow run in-process (one actor, per-node concurrency 1) is the baseline.

Latency: one message at a time (emit, then fetch), the median round trip through
the same node in-process versus distributed (``--work-ms 0``): the difference is
the added latency of one Redis hop (origin -> stream -> worker -> return stream ->
origin). Not part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from penguiflow import Headers, Message, Node, NodePolicy, create

ROOT = Path(__file__).resolve().parent.parent
WORK_MS = float(os.environ.get("PF_BENCH_WORK_MS", "1.0"))


async def work(msg: Message, ctx: Any) -> Message:
    """Burn ``PF_BENCH_WORK_MS`` of CPU, then pass the message on."""
    if WORK_MS > 0:
        until = time.perf_counter() + WORK_MS / 1000
        while time.perf_counter() < until:
            pass
    return msg


def build_flow() -> Any:
    """The benchmarked flow: work -> Rookery (the workers load this)."""
    return create(Node(work, name="work", policy=NodePolicy(validate="none")).to())


def _start_redis(directory: str) -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "redis.sh"), "start", directory],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _worker(
    url: str, prefix: str, index: int, concurrency: int, work_ms: float, prefetch: int = 1
) -> Any:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PF_BENCH_WORK_MS": str(work_ms)}
    command = [
        sys.executable, "-m", "penguiflow.distributed.worker",
        "--redis", url, "--flow", "benchmarks.redis_scaleout:build_flow",
        "--flow-name", "bench", "--prefix", prefix, "--node", "work",
        "--concurrency", str(concurrency), "--block-ms", "100", "--worker-id", f"b{index}",
        "--prefetch", str(prefetch),
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=ROOT)


def _messages(n: int) -> list[Message]:
    return [Message(payload={"i": i}, headers=Headers(tenant="bench")) for i in range(n)]


async def _drive(flow: Any, n: int) -> float:
    """Emit ``n`` messages while fetching their results; return the elapsed seconds."""
    messages = _messages(n)
    start = time.perf_counter()

    async def produce() -> None:
        for msg in messages:
            await flow.emit(msg)

    producer = asyncio.create_task(produce())
    for _ in range(n):
        await flow.fetch()
    await producer
    return time.perf_counter() - start


async def _distributed(
    url: str, workers: int, concurrency: int, n: int, work_ms: float, prefetch: int
) -> float:
    from penguiflow.distributed import RedisDeployment

    prefix = f"pfbench-{uuid.uuid4().hex[:8]}"
    procs = [_worker(url, prefix, i, concurrency, work_ms, prefetch) for i in range(workers)]
    flow = build_flow()
    deployment = RedisDeployment(url, nodes=["work"], flow_name="bench", prefix=prefix)
    deployment.apply(flow)
    flow.run()
    try:
        await _drive(flow, min(50, n))  # warm-up: workers started and connected
        return n / await _drive(flow, n)
    finally:
        await flow.stop()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        await deployment.close()


async def _latency(flow: Any, n: int) -> float:
    samples = []
    for msg in _messages(n):
        start = time.perf_counter()
        await flow.emit(msg)
        await flow.fetch()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples[5:] or samples) * 1000


async def _latencies(url: str, n: int) -> tuple[float, float]:
    from penguiflow.distributed import RedisDeployment

    global WORK_MS
    saved, WORK_MS = WORK_MS, 0.0
    local = build_flow()
    local.run()
    try:
        in_process = await _latency(local, n)
    finally:
        await local.stop()
        WORK_MS = saved
    prefix = f"pfbench-{uuid.uuid4().hex[:8]}"
    proc = _worker(url, prefix, 0, 1, 0.0)
    flow = build_flow()
    deployment = RedisDeployment(
        url, nodes=["work"], flow_name="bench", prefix=prefix, block_ms=1000
    )
    deployment.apply(flow)
    flow.run()
    try:
        remote = await _latency(flow, n)
    finally:
        await flow.stop()
        proc.terminate()
        proc.wait(timeout=30)
        await deployment.close()
    return in_process, remote


async def _main(args: argparse.Namespace) -> None:
    global WORK_MS
    WORK_MS = args.work_ms
    with tempfile.TemporaryDirectory() as directory:
        url = args.redis or _start_redis(directory)
        try:
            local = build_flow()
            local.run()
            try:
                baseline = args.n / await _drive(local, args.n)
            finally:
                await local.stop()
            print(
                f"N={args.n} messages, {args.work_ms} ms CPU each, prefetch={args.prefetch}, "
                f"cores={os.cpu_count()}"
            )
            print(f"{'setup':<28}{'msg/s':>10}{'vs in-process':>16}")
            print(f"{'in-process (1 actor)':<28}{baseline:>10.0f}{1.0:>15.2f}x")
            for workers in args.workers:
                rate = await _distributed(
                    url, workers, args.concurrency, args.n, args.work_ms, args.prefetch
                )
                label = f"{workers} worker(s) x {args.concurrency} slot(s)"
                print(f"{label:<28}{rate:>10.0f}{rate / baseline:>15.2f}x")
            in_process, remote = await _latencies(url, args.latency_n)
            print(f"\nmedian round trip, 1 message at a time, n={args.latency_n}:")
            print(f"  in-process hop   {in_process:8.3f} ms")
            print(f"  Redis hop        {remote:8.3f} ms   (+{remote - in_process:.3f} ms)")
        finally:
            if not args.redis:
                subprocess.run([str(ROOT / "scripts" / "redis.sh"), "stop", directory])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.redis_scaleout")
    parser.add_argument("--redis", default=None, help="use this server instead of starting one")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument(
        "--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 4]
    )
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--work-ms", type=float, default=1.0)
    parser.add_argument("--latency-n", type=int, default=300)
    parser.add_argument("--prefetch", type=int, default=1, help="worker --prefetch")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
