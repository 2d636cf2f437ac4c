"""What the kill -9 tests share: running a child to its kill, and reading the journal raw.

``run_child`` starts a child script, reads its stdout line by line (every line is
one ``os.write``, so whole or absent) and SIGKILLs it at the moment a ``KillPlan``
names; ``delivered_items`` reads every Rookery item a store has marked delivered,
which is how the tests find what a killed child fetched but could not report.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from penguiflow.journal import decode_item
from penguiflow.stores import SQLiteStateStore

# A killed child's Redis journal lease expires this soon: the next child waits no longer
# (one live process at a time here, so a short lease is never taken over).
KILL_LEASE_S = 0.5

RUN_TIMEOUT_S = 30.0  # safety net per child run; a healthy run takes about a second


@dataclass(frozen=True)
class KillPlan:
    """When to kill: ``delay_s`` after the child's ``after``-th line of kind ``on``."""

    on: str
    after: int
    delay_s: float


@dataclass
class RunResult:
    lines: list[tuple[str, str]] = field(default_factory=list)  # (kind, the rest)
    killed: bool = False
    completed: bool = False

    def of(self, kind: str) -> list[str]:
        return [rest for k, rest in self.lines if k == kind]


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def run_child(child: Path, args: list[str], plan: KillPlan | None, log: Path) -> RunResult:
    """Run ``child`` until it completes or the plan kills it; what it wrote on stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env = {k: v for k, v in env.items() if not k.startswith("COVERAGE_")}
    result = RunResult()
    with log.open("ab") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(child),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
        )
        assert proc.stdout is not None
        seen: Counter[str] = Counter()
        try:
            async with asyncio.timeout(RUN_TIMEOUT_S):
                # Every line the child wrote before the kill is in the pipe: reading on
                # after the kill until EOF loses none of them.
                while line := (await proc.stdout.readline()).decode():
                    kind, _, rest = line.rstrip("\n").partition(" ")
                    seen[kind] += 1
                    result.lines.append((kind, rest))
                    result.completed |= kind == "complete"
                    if plan and not result.killed and (kind, seen[kind]) == (plan.on, plan.after):
                        if plan.delay_s:
                            await asyncio.sleep(plan.delay_s)  # the chaos moment, not a sync
                        if proc.returncode is None:
                            proc.send_signal(signal.SIGKILL)
                        result.killed = True
                returncode = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    if result.completed:
        # Killed after its last line (while stopping) or not at all: the work ran out
        # before the kill moment.
        assert returncode in (0, -signal.SIGKILL), _tail(log)
        result.killed = returncode == -signal.SIGKILL
    else:
        assert returncode == -signal.SIGKILL, (returncode, _tail(log))
    return result


def open_store(where: str) -> Any:
    """``redis://...#namespace`` is a Redis store, anything else a SQLite file."""
    if where.startswith("redis://"):
        from penguiflow.distributed import RedisStateStore

        url, _, namespace = where.partition("#")
        return RedisStateStore(url, namespace=namespace, journal_lease_s=KILL_LEASE_S)
    return SQLiteStateStore(where)


def delivered_items(where: str) -> list[Any]:
    """Every Rookery item the store has marked delivered, decoded, read raw."""
    items: list[str] = []
    if where.startswith("redis://"):
        from redis import Redis

        url, _, namespace = where.partition("#")
        client = Redis.from_url(url, decode_responses=True)
        try:
            for raw in client.hvals(f"{namespace}:journal:rookery"):
                record = json.loads(raw)
                if record["d"]:
                    items.append(record["i"])
        finally:
            client.close()
    else:
        conn = sqlite3.connect(where)
        try:
            rows = conn.execute("SELECT item FROM penguiflow_journal_rookery WHERE delivered = 1")
            items = [item for (item,) in rows]
        finally:
            conn.close()
    return [decode_item(item) for item in items]


def order_of(text: str) -> int:
    """The order number a final's text starts with (``order-<i> ...``)."""
    return int(text.split()[0].removeprefix("order-"))


async def assert_every_trace_finished(where: str, orders: int) -> None:
    """The journal ends with one trace per key, each finished (delivered)."""
    async with open_store(where) as store:
        assert await store.journal.unfinished_traces() == []
        traces = await store.journal.traces(include_finished=True)
    keys = Counter(key for trace in traces for key in trace.idempotency_keys)
    assert keys == Counter(f"order-{i}" for i in range(orders)), "a key accepted twice or lost"
    assert {trace.status for trace in traces} == {"finished"}


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def where(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Where the child keeps its journal: a SQLite file, or a Redis namespace."""
    if request.param == "sqlite":
        yield str(tmp_path / "orders.db")
        return
    url = os.environ.get("PENGUIFLOW_TEST_REDIS_URL")
    if not url:
        pytest.skip("PENGUIFLOW_TEST_REDIS_URL is not set: no redis-server for this run")
    where = f"{url}#pftest-kill9-{uuid.uuid4().hex[:12]}"
    try:
        yield where
    finally:
        store = open_store(where)
        await store.clear()
        await store.close()
