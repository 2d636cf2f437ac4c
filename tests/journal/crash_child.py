"""The process the crash test kills: it drives a journal through a fan-out/join workload.

Usage: ``python crash_child.py STORE N KILL_AFTER DELAY_MS`` (STORE: a SQLite
file, or ``redis://host:port/db#namespace``). Every start, the
producer re-sends all N inputs with their idempotency keys; then rounds of
steps (one per trace per round, 32 in flight at once, so calls share group
commits) move every trace through: ``in`` --fan--> two branches on ``loop``,
each going round ``HOPS`` times while a per-trace ``hops`` counter (a
controller budget) counts every hop --join (a state bucket)--> one Rookery
final, which is then delivered. After each call returns, a line
``ack <kind> <trace> [<detail>...]`` is printed and flushed. Right after the
KILL_AFTER-th ack (0: never) a helper thread waits DELAY_MS and SIGKILLs the
process wherever it then is: between calls, inside a group commit, mid-write.
``complete`` ends a run that finished everything.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time

from penguiflow.distributed import RedisStateStore
from penguiflow.journal import EdgeEntry, Input, Journal, StateEntry, StateUpdate
from penguiflow.stores import SQLiteStateStore

_acks = 0
_kill_after = 0
_delay = 0.0


def _kill() -> None:
    # This thread only picks the moment; sleeping releases the GIL, so the event
    # loop and the SQLite thread run on until the kill lands, wherever they are.
    time.sleep(_delay)
    os.kill(os.getpid(), signal.SIGKILL)


HOPS = 3  # loop rounds per branch
CONCURRENCY = 32  # calls in flight at once: they share group commits


def ack(*parts: object) -> None:
    global _acks
    print("ack", *parts, flush=True)
    _acks += 1
    if _acks == _kill_after:
        threading.Thread(target=_kill, daemon=True).start()


async def produce(journal: Journal, n: int) -> None:
    inputs = [Input("in", {"i": i}, trace_id=f"t-{i}", idempotency_key=f"k-{i}") for i in range(n)]
    chunks = [inputs[i : i + 8] for i in range(0, n, 8)]
    for chunk, results in zip(
        chunks, await asyncio.gather(*(journal.accept(c) for c in chunks)), strict=True
    ):
        for item, result in zip(chunk, results, strict=True):
            if not result.duplicate:
                ack("accept", item.trace_id)


async def step(journal: Journal, entry: EdgeEntry, state: dict[str, StateEntry]) -> None:
    """One node step: fan out, go round the loop (a hop budget), or join."""
    trace = entry.trace_id
    if entry.edge == "in":
        await journal.commit_step(
            trace,
            consumed=entry.id,
            produced=[("loop", [trace, 0, 0]), ("loop", [trace, 1, 0])],
            state=[StateUpdate("hops", 0)],
        )
        ack("fan", trace)
        return
    _, branch, n = entry.decode()
    hops = state["hops"].decode()
    if n < HOPS:
        await journal.commit_step(
            trace,
            consumed=entry.id,
            produced=[("loop", [trace, branch, n + 1])],
            state=[StateUpdate("hops", hops + 1)],
        )
        ack("hop", trace, branch, n)
        return
    bucket = state["join"].decode() if "join" in state else []
    if bucket:
        await journal.commit_step(
            trace,
            consumed=entry.id,
            state=[StateUpdate("join", delete=True), StateUpdate("hops", delete=True)],
            rookery=[f"done-{trace}"],
        )
    else:
        await journal.commit_step(trace, consumed=entry.id, state=[StateUpdate("join", [branch])])
    ack("join", trace, branch)


async def deliver(journal: Journal, rookery_id: int, trace: str | None) -> None:
    if await journal.mark_delivered(rookery_id):
        ack("delivered", trace)


def open_store(where: str) -> SQLiteStateStore | RedisStateStore:
    """``redis://...#namespace`` is a Redis store, anything else a SQLite file."""
    if where.startswith("redis://"):
        url, _, namespace = where.partition("#")
        return RedisStateStore(url, namespace=namespace)
    return SQLiteStateStore(where)


async def main(where: str, n: int) -> None:
    store = open_store(where)
    journal = store.journal
    await produce(journal, n)
    while True:
        snapshot = await journal.load()
        if not snapshot.entries and not snapshot.rookery:
            break
        state: dict[str | None, dict[str, StateEntry]] = {}
        for entry in snapshot.state:
            state.setdefault(entry.trace_id, {})[entry.key] = entry
        # One step per trace per round, as a node serialises one trace's items.
        first_per_trace: dict[str | None, EdgeEntry] = {}
        for entry in snapshot.entries:
            first_per_trace.setdefault(entry.trace_id, entry)
        calls = [step(journal, e, state.get(e.trace_id, {})) for e in first_per_trace.values()]
        calls += [deliver(journal, r.id, r.trace_id) for r in snapshot.rookery]
        for start in range(0, len(calls), CONCURRENCY):
            await asyncio.gather(*calls[start : start + CONCURRENCY])
    await store.close()
    print("complete", flush=True)


if __name__ == "__main__":
    _kill_after = int(sys.argv[3])
    _delay = float(sys.argv[4]) / 1000
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
