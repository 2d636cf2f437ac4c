"""Where a hop's time goes: the 5-stage pipelined chain of workload (b), layer by layer.

Run from the repository root::

    python -m benchmarks.layers            # 5 interleaved rounds
    python -m benchmarks.layers --quick

Three implementations of the same chain, interleaved in one process, medians printed:
the raw asyncio floor (``asyncio.Queue`` + tasks), the actor kernel alone (five
``penguiflow.actors`` actors forwarding into the next ``Mailbox``) and a full
``PenguiFlow``. The gap between the kernel and the flow is the cost of the flow layer
(trace accounting, events, routing, policies) per hop; the gap between the floor and
the kernel is the mailbox and the actor loop.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from penguiflow import Headers, Message, Node, NodePolicy, create
from penguiflow.actors import Actor, ActorContext, Mailbox
from penguiflow.supervision import ActorSystem

__all__ = ["main"]

HOPS = 5
HEADERS = Headers(tenant="bench")


async def _passthrough(msg: Any, ctx: Any) -> Any:
    return msg


async def _drive(
    emit: Callable[[Any], Awaitable[None]], fetch: Callable[[], Awaitable[Any]], n: int
) -> float:
    items = [Message(payload=i, headers=HEADERS) for i in range(n)]

    async def produce() -> None:
        for item in items:
            await emit(item)

    start = time.perf_counter()
    producer = asyncio.create_task(produce())
    outs = [await fetch() for _ in range(n)]
    await producer
    secs = time.perf_counter() - start
    if not all(a is b for a, b in zip(outs, items)):
        raise AssertionError("lost or reordered items")
    return n / secs


async def floor(n: int) -> float:
    """Hand-written stages over bounded ``asyncio.Queue``s."""
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue(64) for _ in range(HOPS + 1)]

    async def stage(inbox: asyncio.Queue[Any], outbox: asyncio.Queue[Any]) -> None:
        while True:
            await outbox.put(await _passthrough(await inbox.get(), None))

    tasks = [asyncio.create_task(stage(queues[i], queues[i + 1])) for i in range(HOPS)]
    try:
        return await _drive(queues[0].put, queues[-1].get, n)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class _Stage(Actor):
    def __init__(self, outbox: Mailbox) -> None:
        self.outbox = outbox

    async def receive(self, message: Any, ctx: ActorContext) -> None:
        await self.outbox.put(await _passthrough(message, ctx))


async def kernel(n: int) -> float:
    """Five kernel actors, each forwarding into the next actor's mailbox."""
    boxes = [Mailbox(64) for _ in range(HOPS + 1)]
    async with ActorSystem("layers") as system:
        refs = [
            system.spawn(lambda i=i: _Stage(boxes[i + 1]), name=f"s{i}", mailbox=boxes[i])
            for i in range(HOPS)
        ]

        async def fetch() -> Any:
            return (await boxes[-1].get()).item

        try:
            return await _drive(boxes[0].put, fetch, n)
        finally:
            for ref in refs:
                await ref.stop()


async def flow(n: int) -> float:
    """The full runtime: a 5-node ``PenguiFlow`` chain."""
    nodes = [
        Node(_passthrough, name=f"n{i}", policy=NodePolicy(validate="none")) for i in range(HOPS)
    ]
    pf = create(*(nodes[i].to(nodes[i + 1]) for i in range(HOPS - 1)), nodes[-1].to())
    pf.run()
    try:
        return await _drive(pf.emit, pf.fetch, n)
    finally:
        await pf.stop()


async def _main(rounds: int, n: int) -> None:
    layers = {"asyncio floor": floor, "actor kernel": kernel, "PenguiFlow": flow}
    rates: dict[str, list[float]] = {name: [] for name in layers}
    for name, run in layers.items():  # warm-up: imports, caches
        await run(max(100, n // 10))
    for _ in range(rounds):
        for name, run in layers.items():
            rates[name].append(await run(n))
    base = statistics.median(rates["asyncio floor"])
    print(f"5-stage pipelined chain, {n} messages, median of {rounds} interleaved rounds")
    for name, values in rates.items():
        rate = statistics.median(values)
        per_hop = 1e6 / rate / HOPS
        print(f"{name:14} {rate:>10,.0f} msgs/s  {per_hop:6.2f} µs/hop  {rate / base:5.2f}× floor")


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and print the layer comparison."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.layers", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(handlers=[logging.NullHandler()], level=logging.WARNING)
    rounds = args.rounds or (1 if args.quick else 5)
    asyncio.run(_main(rounds, 1000 if args.quick else 20000))


if __name__ == "__main__":
    main()
