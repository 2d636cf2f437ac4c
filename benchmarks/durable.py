"""What ``durable=True`` costs: workload (b) and (a) durable on SQLite beside non-durable.

Run from the repository root::

    python -m benchmarks.durable            # 5 interleaved rounds (~1-2 min)
    python -m benchmarks.durable --quick    # a few seconds

The flow is the 5-node pass-through chain of workloads (a) and (b). Each round runs,
in one process and in rotating order, the chain three ways: non-durable without a
store; non-durable with ``state_store=SQLiteStateStore(<fresh file>)`` ("events
only": every event is saved, as in any flow given a store); and durable on such a
store (``durable=True``: event history and the journal; WAL, ``synchronous=NORMAL``,
so a commit survives a kill of the process). Two timings each:

* (b) pipelined: a producer task keeps the chain full while the caller fetches;
  messages per second, outputs checked in order;
* (b) again with 32 producer tasks (durable and non-durable only): concurrent emits
  share commits, as the spec's group commit intends;
* (a) latency: emit one message, fetch it, repeat; p50 per message, and per hop
  (= per message / 5). A durable message pays the emit's commit, one step commit
  per node and the delivery mark, none of which can share a transaction here.

The throughput ratios durable / non-durable and durable / events only are taken per
round (the runs of a round are neighbours in time); their median and min-max over
rounds are printed. Issue 16's target: durable / non-durable >= 0.25.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from penguiflow import Headers, Message, Node, NodePolicy, create
from penguiflow.stores import SQLiteStateStore

__all__ = ["main"]

HOPS = 5
HEADERS = Headers(tenant="bench")
TARGET = 0.25
PRODUCERS = 32


async def _passthrough(msg: Any, ctx: Any) -> Any:
    return msg


# The flows compared: the plain chain; the chain with a state store (event history:
# every event saved, as any flow with a store does); the chain durable on that store
# (event history and the journal); and durable on a store that keeps the journal but
# no event history, which splits the cost of the two.
VARIANTS = ("non-durable", "events only", "durable", "journal only")


class _JournalOnly:
    """A state store with the SQLite store's journal and no event history."""

    def __init__(self, store: SQLiteStateStore) -> None:
        self.journal = store.journal

    async def save_event(self, event: Any) -> None:
        return None

    async def load_history(self, trace_id: str) -> list[Any]:
        return []

    async def save_remote_binding(self, binding: Any) -> None:
        return None


def _chain(variant: str, store: Any) -> Any:
    nodes = [
        Node(_passthrough, name=f"n{i}", policy=NodePolicy(validate="none")) for i in range(HOPS)
    ]
    adjacency = [nodes[i].to(nodes[i + 1]) for i in range(HOPS - 1)]
    if variant == "non-durable":
        return create(*adjacency, nodes[-1].to())
    if variant == "journal only":
        store = _JournalOnly(store)
    durable = variant != "events only"
    return create(*adjacency, nodes[-1].to(), state_store=store, durable=durable)


async def _pipelined(flow: Any, n: int, producers: int = 1) -> float:
    """Keep the chain full from ``producers`` tasks while fetching; messages per second.

    One producer is workload (b): each emit waits for the previous one. Several
    producers emit concurrently, so a durable flow's emits share commits.
    """
    items = [Message(payload=i, headers=HEADERS) for i in range(n)]

    async def produce(k: int) -> None:
        for item in items[k::producers]:
            await flow.emit(item)

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for k in range(producers):
            group.create_task(produce(k))
        outs = [await flow.fetch() for _ in range(n)]
    secs = time.perf_counter() - start
    # A durable flow may hand back decoded copies: compare payloads. One producer
    # keeps its order end to end; several interleave, so compare the sets then.
    got = [o.payload for o in outs]
    if (got if producers == 1 else sorted(got)) != list(range(n)):
        raise AssertionError("b: lost, doubled or reordered messages")
    return n / secs


async def _latency(flow: Any, n: int) -> float:
    samples = []
    for i in range(n):
        began = time.perf_counter_ns()
        await flow.emit(Message(payload=i, headers=HEADERS))
        out = await flow.fetch()
        samples.append(time.perf_counter_ns() - began)
        if out.payload != i:
            raise AssertionError("a: wrong message fetched")
    return statistics.median(samples) / 1000


_PER_COMMIT: dict[str, list[float]] = {}  # variant -> writes per transaction, by run


async def _with(
    variant: str, folder: Path, cell: str, body: Callable[[Any], Awaitable[float]]
) -> float:
    store = None if variant == "non-durable" else SQLiteStateStore(folder / f"{cell}.db")
    flow = _chain(variant, store)
    flow.run()
    try:
        result = await body(flow)
        if store is not None:
            stats = store.journal.statistics()  # every write call of the store's file
            _PER_COMMIT.setdefault(variant, []).append(stats.writes / max(1, stats.commits))
        return result
    finally:
        await flow.stop()
        if store is not None:
            await store.close()


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}× (min {min(values):.3f}, max {max(values):.3f})"


async def _run(rounds: int, n: int, n_latency: int) -> dict[str, Any]:
    rates: dict[str, list[float]] = {v: [] for v in VARIANTS}
    lat: dict[str, list[float]] = {v: [] for v in VARIANTS}
    many: dict[str, list[float]] = {"non-durable": [], "durable": []}
    with tempfile.TemporaryDirectory(prefix="pf-durable-bench-") as tmp:
        folder = Path(tmp)
        for variant in VARIANTS:  # warm-up: imports, caches, the first file
            await _with(variant, folder, f"warm-{variant}", lambda f: _pipelined(f, 100))
        for r in range(rounds):
            # Rotate which goes first, so none always runs on a warmer machine.
            order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
            for variant in order:
                cell = f"r{r}-{variant.replace(' ', '-')}"
                rates[variant].append(
                    await _with(variant, folder, f"b-{cell}", lambda f: _pipelined(f, n))
                )
                lat[variant].append(
                    await _with(variant, folder, f"a-{cell}", lambda f: _latency(f, n_latency))
                )
                if variant in ("non-durable", "durable"):
                    many[variant].append(
                        await _with(
                            variant,
                            folder,
                            f"m-{cell}",
                            lambda f: _pipelined(f, n, producers=PRODUCERS),
                        )
                    )
    # Ratios per round: the runs of one round are neighbours in time.
    vs_plain = [d / p for d, p in zip(rates["durable"], rates["non-durable"], strict=True)]
    vs_events = [d / e for d, e in zip(rates["durable"], rates["events only"], strict=True)]
    many_ratio = [d / p for d, p in zip(many["durable"], many["non-durable"], strict=True)]
    journal_vs_plain = [
        j / p for j, p in zip(rates["journal only"], rates["non-durable"], strict=True)
    ]
    figures: dict[str, Any] = {
        "b_msgs_per_s": {v: statistics.median(rates[v]) for v in VARIANTS},
        "b_durable_vs_non_durable": _summary(vs_plain),
        "b_durable_vs_events_only": _summary(vs_events),
        "b_journal_only_vs_non_durable": _summary(journal_vs_plain),
        "a_p50_us_per_msg": {v: statistics.median(lat[v]) for v in VARIANTS},
        f"b_{PRODUCERS}_producers_msgs_per_s": {v: statistics.median(many[v]) for v in many},
        f"b_{PRODUCERS}_producers_durable_vs_non_durable": _summary(many_ratio),
    }
    print(f"5-node chain, SQLite WAL synchronous=NORMAL, median of {rounds} interleaved rounds")
    print(f"(b) pipelined, {n} messages:")
    for variant in VARIANTS:
        values = rates[variant]
        print(
            f"  {variant:12} {statistics.median(values):>9,.0f} msgs/s"
            f"  (min {min(values):,.0f}, max {max(values):,.0f})"
            f"  {1e6 / statistics.median(values) / HOPS:8.2f} µs/hop"
        )
    verdict = "pass" if statistics.median(vs_plain) >= TARGET else "MISS"
    print(f"  durable / non-durable: {_spread(vs_plain)}; target >= {TARGET}×: {verdict}")
    print(f"  durable / events only: {_spread(vs_events)}")
    print(f"  journal only / non-durable: {_spread(journal_vs_plain)}")
    per_commit = ", ".join(
        f"{v} {statistics.median(_PER_COMMIT[v]):.1f}" for v in VARIANTS if v in _PER_COMMIT
    )
    print(f"  store writes per transaction (group commit): {per_commit}")
    print(f"(b) with {PRODUCERS} producer tasks emitting concurrently (emits share commits):")
    for variant, values in many.items():
        print(
            f"  {variant:12} {statistics.median(values):>9,.0f} msgs/s"
            f"  (min {min(values):,.0f}, max {max(values):,.0f})"
        )
    print(f"  durable / non-durable: {_spread(many_ratio)}")
    print(f"(a) latency, {n_latency} sequential emit -> fetch:")
    for variant in VARIANTS:
        p50 = statistics.median(lat[variant])
        print(f"  {variant:12} p50 {p50:9.1f} µs/msg  {p50 / HOPS:8.1f} µs/hop")
    return figures


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison, print it, return the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.durable", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N, one round")
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (quick: 1)")
    parser.add_argument("--n", type=int, default=None, help="messages of (b); default 3000")
    args = parser.parse_args(argv)
    logging.basicConfig(handlers=[logging.NullHandler()], level=logging.WARNING)
    rounds = args.rounds or (1 if args.quick else 5)
    n = args.n or (300 if args.quick else 3_000)
    return asyncio.run(_run(rounds, n, 50 if args.quick else 500))


if __name__ == "__main__":
    main()
