"""kill -9 at seeded random moments: the SQLite journal always reloads a consistent state.

A child process (``crash_child.py``) drives a fan-out / loop-with-budget / join
workload through the journal, re-sending every input with its idempotency key
each time it starts. It SIGKILLs itself 20 times, a seeded delay after a seeded
number of acknowledged calls (so mid-call, mid-commit, anywhere), and the
journal is checked after every kill: each trace is whole (the hop counter
equals the hops its entries made: no half step), every call the child saw
return is there, no key was accepted twice, no final delivered twice. A last
run finishes the work and every trace ends with exactly one delivered final.
It runs on SQLite always and on Redis when the test Redis is there.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from penguiflow.distributed import RedisStateStore
from penguiflow.stores import SQLiteStateStore

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("crash_child.py")
TRACES = 200
HOPS = 3  # as in crash_child.py
KILLS = 20
SEED = 16


def _run(where: str, kill_after: int = 0, delay_ms: float = 0.0) -> tuple[list[list[str]], bool]:
    """Run the child to its end (killed or complete); its acks and whether it completed."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    args = [where, str(TRACES), str(kill_after), str(delay_ms)]
    done = subprocess.run(
        [sys.executable, str(CHILD), *args], capture_output=True, text=True, env=env, timeout=120
    )
    # The last piece has no newline: empty, or a line the kill cut short.
    lines = [line.split() for line in done.stdout.split("\n")[:-1]]
    completed = bool(lines) and lines[-1][0] == "complete"
    if completed:
        assert done.returncode == 0, done.stderr
    else:
        assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr)
    return [words[1:] for words in lines if words[0] == "ack"], completed


@dataclass
class _Trace:
    keys: int = 0
    ingress: int = 0
    loop: dict[int, list[int]] = field(default_factory=dict)  # branch -> hop counts
    state: dict[str, object] = field(default_factory=dict)
    finals: list[tuple[str, int]] = field(default_factory=list)


def _raw(where: str) -> dict[str, _Trace]:
    """Every trace's full journal content (delivered Rookery rows included), read raw."""
    if where.startswith("redis://"):
        return _raw_redis(where)
    traces = {f"t-{i}": _Trace() for i in range(TRACES)}
    conn = sqlite3.connect(where)
    try:
        for edge, trace, item in conn.execute(
            "SELECT edge, trace_id, item FROM penguiflow_journal_entries"
        ):
            if edge == "in":
                traces[trace].ingress += 1
            else:
                _, branch, n = json.loads(item)
                traces[trace].loop.setdefault(branch, []).append(n)
        for trace, key, value in conn.execute(
            "SELECT trace_id, key, value FROM penguiflow_journal_state"
        ):
            traces[trace].state[key] = json.loads(value)
        for trace, item, delivered in conn.execute(
            "SELECT trace_id, item, delivered FROM penguiflow_journal_rookery"
        ):
            traces[trace].finals.append((json.loads(item), delivered))
        for (trace,) in conn.execute("SELECT trace_id FROM penguiflow_journal_keys"):
            traces[trace].keys += 1
    finally:
        conn.close()
    return traces


def _raw_redis(where: str) -> dict[str, _Trace]:
    from redis import Redis

    url, _, namespace = where.partition("#")
    prefix = f"{namespace}:journal:"
    traces = {f"t-{i}": _Trace() for i in range(TRACES)}
    client = Redis.from_url(url, decode_responses=True)
    try:
        for raw in client.hvals(prefix + "entries"):
            edge, trace, item, *_ = json.loads(raw)
            if edge == "in":
                traces[trace].ingress += 1
            else:
                _, branch, n = json.loads(item)
                traces[trace].loop.setdefault(branch, []).append(n)
        for raw in client.hvals(prefix + "state"):
            record = json.loads(raw)
            traces[record["t"]].state[record["k"]] = json.loads(record["v"])
        for raw in client.hvals(prefix + "rookery"):
            record = json.loads(raw)
            traces[record["t"]].finals.append((json.loads(record["i"]), record["d"]))
        for raw in client.hvals(prefix + "keys"):
            traces[json.loads(raw)["t"]].keys += 1
    finally:
        client.close()
    return traces


def _open(where: str) -> SQLiteStateStore | RedisStateStore:
    if where.startswith("redis://"):
        url, _, namespace = where.partition("#")
        return RedisStateStore(url, namespace=namespace)
    return SQLiteStateStore(where)


def _check_whole(name: str, t: _Trace) -> None:
    """The trace is at a step boundary: every combination a half step leaves is refused."""
    if t.keys == 0:
        assert (t.ingress, t.loop, t.state, t.finals) == (0, {}, {}, []), f"{name}: unkeyed"
        return
    assert t.keys == 1, f"{name}: key stored {t.keys} times"
    if t.ingress:
        assert (t.ingress, t.loop, t.state, t.finals) == (1, {}, {}, []), f"{name}: {t}"
        return
    if t.finals:
        assert t.finals == [(f"done-{name}", t.finals[0][1])], f"{name}: finals {t.finals}"
        assert (t.loop, t.state) == ({}, {}), f"{name}: left over beside its final: {t}"
        return
    bucket = t.state.get("join", [])
    assert isinstance(bucket, list)
    looping = t.loop
    assert all(len(ns) == 1 for ns in looping.values()), f"{name}: a branch twice: {t}"
    assert sorted([*looping, *bucket]) == [0, 1], f"{name}: branches lost or doubled: {t}"
    # The controller budget moves in the same transaction as the entries it counts.
    hops = sum(ns[0] for ns in looping.values()) + HOPS * len(bucket)
    assert t.state.get("hops") == hops, f"{name}: hop counter {t.state.get('hops')} != {hops}"


def _check_acked(name: str, t: _Trace, kind: str, detail: list[str]) -> None:
    """A call the child saw return was committed before it returned."""
    assert t.keys == 1, f"acked {kind} of {name} lost"
    if kind == "accept" or t.finals:
        if kind == "delivered":
            assert t.finals[0][1] == 1, f"acked delivery of {name} lost"
        return
    assert kind != "delivered", f"acked delivery of {name} lost"
    assert not t.ingress, f"acked {kind} of {name} lost"
    if kind == "hop":
        branch, n = int(detail[0]), int(detail[1])
        bucket = t.state.get("join", [])
        assert branch in bucket or t.loop[branch][0] > n, f"acked hop {n} of {name} lost"  # type: ignore[operator]
    if kind == "join":
        assert int(detail[0]) in t.state.get("join", []), f"acked join of {name} lost"  # type: ignore[operator]


def _check(where: str, acked: list[list[str]], delivered: Counter[str]) -> dict[str, _Trace]:
    traces = _raw(where)
    for name, trace in traces.items():
        _check_whole(name, trace)
    for kind, name, *detail in acked:
        _check_acked(name, traces[name], kind, detail)
    assert all(count == 1 for count in delivered.values()), delivered.most_common(3)
    return traces


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def where(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Where the child keeps its journal: a SQLite file, or a Redis namespace."""
    if request.param == "sqlite":
        yield str(tmp_path / "crash.db")
        return
    url = os.environ.get("PENGUIFLOW_TEST_REDIS_URL")
    if not url:
        pytest.skip("PENGUIFLOW_TEST_REDIS_URL is not set: no redis-server for this run")
    where = f"{url}#pftest-crash-{uuid.uuid4().hex[:12]}"
    try:
        yield where
    finally:
        store = _open(where)
        assert isinstance(store, RedisStateStore)
        await store.clear()
        await store.close()


async def test_the_journal_survives_20_kills_at_random_moments(where: str) -> None:
    rng = random.Random(SEED)
    accepted: Counter[str] = Counter()
    delivered: Counter[str] = Counter()
    acked: list[list[str]] = []

    def record(acks: list[list[str]]) -> None:
        acked.extend(acks)
        accepted.update(a[1] for a in acks if a[0] == "accept")
        delivered.update(a[1] for a in acks if a[0] == "delivered")
        assert max(accepted.values(), default=1) == 1, "a key was accepted twice"

    for kill in range(KILLS):
        acks, completed = _run(where, rng.randint(1, 60), rng.uniform(0.0, 3.0))
        assert not completed, f"the work ran out after {kill} kills"
        record(acks)
        traces = _check(where, acked, delivered)
        # What recovery would load agrees with the raw tables.
        async with _open(where) as store:
            snapshot = await store.journal.load()
            unfinished = set(await store.journal.unfinished_traces())
        assert len(snapshot.entries) == sum(
            t.ingress + sum(map(len, t.loop.values())) for t in traces.values()
        )
        settled = {n for n, t in traces.items() if t.keys == 0 or (t.finals and t.finals[0][1])}
        assert unfinished == set(traces) - settled
    acks, completed = _run(where)
    assert completed
    record(acks)
    traces = _check(where, acked, delivered)
    assert all(t.finals == [(f"done-{n}", 1)] for n, t in traces.items())
    async with _open(where) as store:
        assert await store.journal.unfinished_traces() == []
        assert len(await store.journal.traces(include_finished=True)) == TRACES
