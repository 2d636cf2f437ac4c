"""What ``durable=True`` costs: workload (b) and (a) durable on SQLite beside non-durable.

Run from the repository root::

    python -m benchmarks.durable            # 5 interleaved rounds (~1 min)
    python -m benchmarks.durable --quick    # a few seconds

The flow is the 5-node pass-through chain of workloads (a) and (b). Each round runs,
in one process and alternating, the chain non-durable and the same chain created
with ``state_store=SQLiteStateStore(<fresh file>)`` and ``durable=True`` (WAL,
``synchronous=NORMAL``: a commit survives a kill of the process). Two timings each:

* (b) pipelined: a producer task keeps the chain full while the caller fetches;
  messages per second, outputs checked in order;
* (a) latency: emit one message, fetch it, repeat; p50 per message, and per hop
  (= per message / 5). A durable message pays the emit's commit, one step commit
  per node and the delivery mark, none of which can share a transaction here.

The throughput ratio durable / non-durable is taken per round (the two runs of a
round are neighbours in time), and its median and min-max over rounds are printed.
Issue 16's target: the ratio >= 0.25.
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


async def _passthrough(msg: Any, ctx: Any) -> Any:
    return msg


def _chain(store: SQLiteStateStore | None) -> Any:
    nodes = [
        Node(_passthrough, name=f"n{i}", policy=NodePolicy(validate="none")) for i in range(HOPS)
    ]
    adjacency = [nodes[i].to(nodes[i + 1]) for i in range(HOPS - 1)]
    if store is None:
        return create(*adjacency, nodes[-1].to())
    return create(*adjacency, nodes[-1].to(), state_store=store, durable=True)


async def _pipelined(flow: Any, n: int) -> float:
    items = [Message(payload=i, headers=HEADERS) for i in range(n)]

    async def produce() -> None:
        for item in items:
            await flow.emit(item)

    start = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        group.create_task(produce())
        outs = [await flow.fetch() for _ in range(n)]
    secs = time.perf_counter() - start
    # A durable flow may hand back decoded copies: compare payloads, in order.
    if [o.payload for o in outs] != list(range(n)):
        raise AssertionError("b: lost or reordered messages")
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


async def _with(
    durable: bool, folder: Path, cell: str, body: Callable[[Any], Awaitable[float]]
) -> float:
    store = SQLiteStateStore(folder / f"{cell}.db") if durable else None
    flow = _chain(store)
    flow.run()
    try:
        return await body(flow)
    finally:
        await flow.stop()
        if store is not None:
            await store.close()


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}× (min {min(values):.2f}, max {max(values):.2f})"


async def _run(rounds: int, n: int, n_latency: int) -> dict[str, Any]:
    rates: dict[bool, list[float]] = {False: [], True: []}
    lat: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory(prefix="pf-durable-bench-") as tmp:
        folder = Path(tmp)
        for durable in (False, True):  # warm-up: imports, caches, the first file
            await _with(durable, folder, f"warm-{durable}", lambda f: _pipelined(f, 200))
        for r in range(rounds):
            # Alternate which goes first, so neither always runs on a warmer machine.
            order = (False, True) if r % 2 == 0 else (True, False)
            for durable in order:
                cell = f"r{r}-{durable}"
                rates[durable].append(
                    await _with(durable, folder, f"b-{cell}", lambda f: _pipelined(f, n))
                )
                lat[durable].append(
                    await _with(durable, folder, f"a-{cell}", lambda f: _latency(f, n_latency))
                )
    ratios = [d / p for d, p in zip(rates[True], rates[False], strict=True)]
    figures: dict[str, Any] = {
        "b_msgs_per_s": {
            "plain": statistics.median(rates[False]),
            "durable": statistics.median(rates[True]),
        },
        "b_ratio": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)},
        "a_p50_us_per_msg": {
            "plain": statistics.median(lat[False]),
            "durable": statistics.median(lat[True]),
        },
    }
    print(f"5-node chain, SQLite WAL synchronous=NORMAL, median of {rounds} interleaved rounds")
    print(f"(b) pipelined, {n} messages:")
    for label, durable in (("non-durable", False), ("durable", True)):
        values = rates[durable]
        print(
            f"  {label:12} {statistics.median(values):>9,.0f} msgs/s"
            f"  (min {min(values):,.0f}, max {max(values):,.0f})"
            f"  {1e6 / statistics.median(values) / HOPS:7.2f} µs/hop"
        )
    verdict = "pass" if figures["b_ratio"]["median"] >= TARGET else "MISS"
    print(f"  durable / non-durable: {_spread(ratios)}; target >= {TARGET}×: {verdict}")
    print(f"(a) latency, {n_latency} sequential emit -> fetch:")
    for label, durable in (("non-durable", False), ("durable", True)):
        p50 = statistics.median(lat[durable])
        print(f"  {label:12} p50 {p50:9.1f} µs/msg  {p50 / HOPS:8.1f} µs/hop")
    return figures


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the comparison, print it, return the figures."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.durable", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small N, one round")
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (quick: 1)")
    parser.add_argument("--n", type=int, default=None, help="messages of (b); default 10000")
    args = parser.parse_args(argv)
    logging.basicConfig(handlers=[logging.NullHandler()], level=logging.WARNING)
    rounds = args.rounds or (1 if args.quick else 5)
    n = args.n or (500 if args.quick else 10_000)
    return asyncio.run(_run(rounds, n, 100 if args.quick else 1_000))


if __name__ == "__main__":
    main()
