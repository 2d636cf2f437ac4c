"""A keyed rate limit held by several Redis worker processes together.

Run from the repository root (a redis-server is started on a free port unless
``--redis`` is given)::

    .venv/bin/python -m benchmarks.rate_limits                 # 3 rounds of 10 s
    .venv/bin/python -m benchmarks.rate_limits --quick         # 1 round of 2 s
    .venv/bin/python -m benchmarks.rate_limits --rate 100 --workers 3 --seconds 10

One node, ``call``, with ``NodePolicy(rate_limit=RateLimit(rate=R, per_s=1,
burst=1, key="provider"))``, stamps each item with the wall time of its call.
The origin keeps more items queued than the limit lets through, so the limiter
is the only brake, and counts the calls stamped inside a window of ``--seconds``
that opens one second after every process has answered. Two setups run side by side in each round:

* in-process: one flow, the flow's own in-memory limiter;
* Redis: ``--workers`` processes of ``--concurrency`` slots each, one shared
  bucket (``RedisRateLimiter``, one Lua script on the server's clock).

The table gives the median rate over the rounds, its spread (min..max), the
error against the limit and whether it is within the target (5%). The exit
status is 1 if a run failed; a missed target is reported, not an exit status.
Not part of the test run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from penguiflow import Headers, Message, Node, NodePolicy, RateLimit, create

ROOT = Path(__file__).resolve().parent.parent
RATE = float(os.environ.get("PF_BENCH_RATE", "50"))
TARGET = 0.05
WARMUP_S = 1.0


async def call(msg: Message, ctx: Any) -> Message:
    """Stamp the item with this call's wall time and process."""
    return msg.model_copy(update={"payload": (os.getpid(), time.time())})


def build_flow() -> Any:
    """The benchmarked flow (the workers load it): call -> Rookery."""
    limit = RateLimit(rate=RATE, per_s=1.0, burst=1, key="provider")
    node = Node(call, name="call", policy=NodePolicy(validate="none", rate_limit=limit))
    return create(node.to())


@dataclass(frozen=True)
class Round:
    """What one run measured: calls per second in the window, and calls per process."""

    rate: float
    shares: tuple[int, ...]


def _start_redis(directory: str) -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "redis.sh"), "start", directory],
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip()


def _worker(url: str, prefix: str, index: int, concurrency: int, rate: float) -> Any:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PF_BENCH_RATE": str(rate)}
    command = [
        sys.executable, "-m", "penguiflow.distributed.worker",
        "--redis", url, "--flow", "benchmarks.rate_limits:build_flow",
        "--flow-name", "ratelimit", "--prefix", prefix, "--node", "call",
        "--concurrency", str(concurrency), "--block-ms", "100", "--worker-id", f"r{index}",
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=ROOT)


async def _measure(flow: Any, seconds: float, processes: int) -> Round:
    """Keep ``flow`` saturated; once ``processes`` processes answered, count a window's calls."""
    stamps: list[tuple[int, float]] = []

    async def produce() -> None:
        n = 0
        while True:  # backpressure paces this producer
            await flow.emit(Message(payload=n, headers=Headers(tenant="bench")))
            n += 1

    async def consume() -> tuple[float, float]:
        seen: set[int] = set()
        while len(seen) < processes:  # every worker is up and taking its share
            pid, _ = (await flow.fetch()).payload
            seen.add(pid)
        opens = time.time() + WARMUP_S
        window = (opens, opens + seconds)
        while True:
            pid, at = (await flow.fetch()).payload
            stamps.append((pid, at))
            if at > window[1] + 0.5:
                return window

    producer = asyncio.create_task(produce())
    try:
        async with asyncio.timeout(seconds + 60):
            start, end = await consume()
    finally:
        producer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await producer
    inside = [(pid, at) for pid, at in stamps if start <= at < end]
    shares = collections.Counter(pid for pid, _ in inside)
    return Round(rate=len(inside) / seconds, shares=tuple(sorted(shares.values())))


async def _in_process(seconds: float) -> Round:
    flow = build_flow()
    flow.run()
    try:
        return await _measure(flow, seconds, 1)
    finally:
        await flow.stop()


async def _redis(url: str, workers: int, concurrency: int, rate: float, seconds: float) -> Round:
    from penguiflow.distributed import RedisDeployment

    prefix = f"pfbench-{uuid.uuid4().hex[:8]}"
    procs = [_worker(url, prefix, i, concurrency, rate) for i in range(workers)]
    flow = build_flow()
    deployment = RedisDeployment(url, nodes=["call"], flow_name="ratelimit", prefix=prefix)
    deployment.apply(flow)
    flow.run()
    try:
        return await _measure(flow, seconds, workers)
    finally:
        await flow.stop()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
        await deployment.close()
        await _delete_keys(url, prefix)


async def _delete_keys(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, decode_responses=True)
    try:
        async for key in client.scan_iter(match=f"{prefix}*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


def _row(label: str, rounds: list[Round], rate: float) -> str:
    rates = [r.rate for r in rounds]
    median = statistics.median(rates)
    error = (median - rate) / rate
    verdict = "pass" if all(abs(r - rate) / rate <= TARGET for r in rates) else "MISS"
    spread = f"{min(rates):.2f}..{max(rates):.2f}"
    return (
        f"{label:<26}{median:>10.2f}{spread:>18}{error * 100:>+9.2f}%"
        f"{median / rate:>8.3f}x  {verdict}"
    )


async def _main(args: argparse.Namespace) -> None:
    global RATE
    RATE = args.rate
    with tempfile.TemporaryDirectory() as directory:
        url = args.redis or _start_redis(directory)
        try:
            local: list[Round] = []
            shared: list[Round] = []
            for _ in range(args.rounds):  # interleaved: drift in load hits both alike
                local.append(await _in_process(args.seconds))
                shared.append(
                    await _redis(url, args.workers, args.concurrency, args.rate, args.seconds)
                )
            print(
                f"limit {args.rate:g}/s (burst 1, key 'provider'), window {args.seconds:g} s "
                f"after {WARMUP_S:g} s warm-up, {args.rounds} round(s), target within "
                f"{TARGET:.0%}, cores={os.cpu_count()}"
            )
            print(f"{'setup':<26}{'calls/s':>10}{'spread':>18}{'error':>10}{'ratio':>9}")
            print(_row("in-process (1 flow)", local, args.rate))
            label = f"Redis {args.workers} workers x {args.concurrency}"
            print(_row(label, shared, args.rate))
            for index, result in enumerate(shared):
                print(f"  round {index + 1}: calls per worker in the window {list(result.shares)}")
        finally:
            if not args.redis:
                subprocess.run([str(ROOT / "scripts" / "redis.sh"), "stop", directory])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rate_limits")
    parser.add_argument("--redis", default=None, help="use this server instead of starting one")
    parser.add_argument("--rate", type=float, default=50.0, help="the limit, calls per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="the measured window")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=2, help="slots per worker")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 1, 2.0
    asyncio.run(_main(args))


if __name__ == "__main__":
    main()
