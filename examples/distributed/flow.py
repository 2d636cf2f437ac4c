"""Run one node of a flow in two worker processes over Redis Streams.

Run from the repository root: ``python -m examples.distributed.flow``. Uses
``$PENGUIFLOW_REDIS_URL`` (or the tests' ``$PENGUIFLOW_TEST_REDIS_URL``) if set,
else starts a throwaway redis-server with ``scripts/redis.sh``; without one it
says so and exits.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from penguiflow import Headers, Message, Node, NodePolicy, create
from penguiflow.distributed import RedisDeployment

ROOT = Path(__file__).resolve().parents[2]
SPEC = "examples.distributed.flow:build_flow"


async def parse(msg: Message, ctx: Any) -> Message:
    return msg


async def enrich(msg: Message, ctx: Any) -> Message:
    # Runs in a worker process: the pid shows which one.
    return msg.model_copy(update={"payload": {**msg.payload, "worker_pid": os.getpid()}})


def build_flow() -> Any:
    """The flow, as both the origin and the workers build it."""
    none = NodePolicy(validate="none")
    p = Node(parse, name="parse", policy=none)
    e = Node(enrich, name="enrich", policy=NodePolicy(validate="none", max_retries=2))
    return create(p.to(e), e.to())


def _worker(url: str, index: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "penguiflow.distributed.worker", "--redis", url,
               "--flow", SPEC, "--node", "enrich", "--block-ms", "200",
               "--worker-id", f"example-{index}"]  # fmt: skip
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


async def main(url: str) -> None:
    workers = [_worker(url, i) for i in range(2)]
    flow = build_flow()
    deployment = RedisDeployment(url, nodes=["enrich"], flow_name=SPEC)
    deployment.apply(flow)
    flow.run()
    try:
        for n in range(10):
            await flow.emit(Message(payload={"n": n}, headers=Headers(tenant="demo")))
        pids = set()
        for _ in range(10):
            async with asyncio.timeout(30):
                result = await flow.fetch()
            pids.add(result.payload["worker_pid"])
            print(result.payload)
        print(f"10 results from {len(pids)} worker process(es)")
    finally:
        await flow.stop()
        for proc in workers:
            proc.terminate()
        for proc in workers:
            proc.wait(timeout=30)
        await deployment.close()


def run() -> None:
    url = os.environ.get("PENGUIFLOW_REDIS_URL") or os.environ.get("PENGUIFLOW_TEST_REDIS_URL")
    if url:
        asyncio.run(main(url))
        return
    with tempfile.TemporaryDirectory() as directory:
        redis_sh = str(ROOT / "scripts" / "redis.sh")
        started = subprocess.run([redis_sh, "start", directory], capture_output=True, text=True)
        if started.returncode != 0:
            print("skipped: no redis-server here (set PENGUIFLOW_REDIS_URL or install one)")
            return
        url = started.stdout.strip()
        try:
            asyncio.run(main(url))
        finally:
            subprocess.run([redis_sh, "stop", directory], check=False)


if __name__ == "__main__":
    run()
