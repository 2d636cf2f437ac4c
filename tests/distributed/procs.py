"""Worker processes for the end-to-end Redis tests (real ``penguiflow-worker`` runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from penguiflow.distributed._protocol import GROUP, Keys

HERE = Path(__file__).parent
ROOT = HERE.parent.parent

CHAIN_NODES = ("enrich", "score")


def start_worker(
    url: str, prefix: str, worker_id: str, *extra: str, claim_idle_ms: int = 1000
) -> subprocess.Popen[bytes]:
    """Start a worker hosting ``redis_flows:build_chain``'s distributed nodes."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    command = [
        sys.executable,
        "-m",
        "penguiflow.distributed.worker",
        "--redis", url,
        "--flow", "redis_flows:build_chain",
        "--flow-name", "chain",
        "--prefix", prefix,
        "--node", "enrich",
        "--node", "score",
        "--concurrency", "2",
        "--claim-idle-ms", str(claim_idle_ms),
        "--block-ms", "100",
        "--worker-id", worker_id,
        *extra,
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=ROOT)


async def consumers(client: Any, prefix: str) -> list[dict[str, Any]]:
    """Every consumer of the chain's node streams (``name``, ``pending``, ``idle``)."""
    keys = Keys(prefix, "chain")
    found: list[dict[str, Any]] = []
    for node in CHAIN_NODES:
        stream = keys.node_stream(node)
        if await client.exists(stream):
            found += await client.xinfo_consumers(stream, GROUP)
    return found


async def pending_of(client: Any, prefix: str, consumer_prefix: str) -> int:
    """Entries the consumers named ``consumer_prefix...`` hold unacknowledged."""
    found = await consumers(client, prefix)
    return sum(c["pending"] for c in found if c["name"].startswith(consumer_prefix))
