"""The SQLite journal of durable flows: steps per second and latency, by concurrency.

Run from the repository root::

    python -m benchmarks.journal          # full run (~30 s)
    python -m benchmarks.journal --quick  # a few seconds

Each step is one ``commit_step`` as a durable node would issue it: consume one
edge entry, put one item (a ``Message``) on the next edge, update one piece of
trace state. ``callers`` tasks issue steps back to back, each waiting for its
own commit, so ``callers=1`` pays one transaction per step and more callers
share transactions (group commit): the table shows steps/s, the median and
99th percentile latency of one step, and the steps per transaction. ``accept``
is timed the same way (one input per call). The file is on the temp folder's
disk, WAL mode, ``synchronous=NORMAL`` (a commit survives a process crash).
``--redis URL`` times ``RedisJournal`` on that server instead (its keys are
deleted after each cell; "per commit" is not known there).
Rounds alternate; figures are medians over rounds. The machine may be shared:
compare rows of one run, not runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from penguiflow.journal import Input, StateUpdate
from penguiflow.stores import SQLiteStateStore
from penguiflow.types import Headers, Message

__all__ = ["main"]

CALLERS = (1, 8, 64)


def _message(i: int) -> Message:
    return Message(payload={"order": i, "lines": [1, 2, 3]}, headers=Headers(tenant="bench"))


def _open(where: str) -> Any:
    if where.startswith("redis://"):
        from penguiflow.distributed import RedisStateStore

        url, _, namespace = where.partition("#")
        return RedisStateStore(url, namespace=namespace)
    return SQLiteStateStore(where)


def _per_commit(journal: Any, before: Any) -> float:
    statistics_of = getattr(journal, "statistics", None)
    if statistics_of is None:  # Redis: the server groups its own fsyncs
        return float("nan")
    after = statistics_of()
    return float((after.writes - before.writes) / max(1, after.commits - before.commits))


async def _steps(where: str, n: int, callers: int) -> tuple[float, list[float], float]:
    """Time ``n`` steps by ``callers`` tasks; (seconds, latencies, steps per commit)."""
    async with _open(where) as store:
        journal = store.journal
        accepted = []
        for start in range(0, n, 500):
            chunk = [
                Input("in", _message(i), trace_id=f"t{i}")
                for i in range(start, min(n, start + 500))
            ]
            accepted += await journal.accept(chunk)
        latencies: list[float] = []
        queue = list(reversed(accepted))
        before = getattr(journal, "statistics", lambda: None)()

        async def caller() -> None:
            while queue:
                entry = queue.pop()
                began = time.perf_counter()
                await journal.commit_step(
                    entry.trace_id,
                    consumed=entry.entry_id,
                    produced=[("a->b", _message(0))],
                    state=[StateUpdate("hops", 1)],
                )
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        elapsed = time.perf_counter() - began
        batch = _per_commit(journal, before)
        await _clear(store)
    return elapsed, latencies, batch


async def _clear(store: Any) -> None:
    clear = getattr(store, "clear", None)
    if clear is not None:
        await clear()


async def _accepts(where: str, n: int, callers: int) -> tuple[float, list[float], float]:
    """Time ``n`` single-input ``accept`` calls with idempotency keys by ``callers`` tasks."""
    async with _open(where) as store:
        journal = store.journal
        todo = list(range(n))
        latencies: list[float] = []
        before = getattr(journal, "statistics", lambda: None)()

        async def caller() -> None:
            while todo:
                i = todo.pop()
                began = time.perf_counter()
                await journal.accept(
                    [Input("in", _message(i), trace_id=f"a{i}", idempotency_key=f"k{i}")]
                )
                latencies.append(time.perf_counter() - began)

        began = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        elapsed = time.perf_counter() - began
        batch = _per_commit(journal, before)
        await _clear(store)
    return elapsed, latencies, batch


async def _run(quick: bool, redis: str | None) -> dict[str, Any]:
    n = 1_000 if quick else 5_000
    rounds = 1 if quick else 3
    backend = f"Redis {redis}" if redis else "SQLite WAL synchronous=NORMAL"
    print(f"calls per cell: {n}, rounds: {rounds} (medians), {backend}")
    header = ("operation", "callers", "calls/s", "p50 ms", "p99 ms", "per commit")
    print("{:<12} {:>7} {:>9} {:>8} {:>8} {:>10}".format(*header))
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pf-journal-bench-") as folder:
        for name, bench in (("commit_step", _steps), ("accept", _accepts)):
            cells: dict[int, list[tuple[float, list[float], float]]] = {c: [] for c in CALLERS}
            for r in range(rounds):
                for callers in CALLERS:
                    cell = f"{name}-{callers}-{r}"
                    where = (
                        f"{redis}#pf-bench-{cell}" if redis else str(Path(folder) / f"{cell}.db")
                    )
                    cells[callers].append(await bench(where, n, callers))
            for callers, runs in cells.items():
                rate = statistics.median(n / elapsed for elapsed, _, _ in runs)
                p50 = statistics.median(statistics.median(lat) for _, lat, _ in runs) * 1e3
                p99 = (
                    statistics.median(statistics.quantiles(lat, n=100)[98] for _, lat, _ in runs)
                    * 1e3
                )
                batch = statistics.median(b for _, _, b in runs)
                results[f"{name}_{callers}"] = {
                    "calls_per_s": rate,
                    "p50_ms": p50,
                    "p99_ms": p99,
                    "per_commit": batch,
                }
                print(
                    f"{name:<12} {callers:>7} {rate:>9.0f} {p50:>8.3f} {p99:>8.3f} {batch:>10.1f}"
                )
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print the table, return the figures by cell."""
    parser = argparse.ArgumentParser(description="SQLite journal: group commit by concurrency")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument(
        "--redis", metavar="URL", help="time RedisJournal on this server instead of SQLite"
    )
    args = parser.parse_args(argv)
    return asyncio.run(_run(args.quick, args.redis))


if __name__ == "__main__":
    main()
