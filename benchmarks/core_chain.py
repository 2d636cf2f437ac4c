"""Hop cost of a 5-node PenguiFlow chain against a raw ``asyncio.Queue`` chain.

Run from the repository root::

    .venv/bin/python -m benchmarks.core_chain

Two shapes: *ping* (one message in flight: emit, fetch, repeat) measures latency
per hop; *pipelined* (emit N while fetching N) measures throughput per hop. The
baseline is five tasks connected by ``asyncio.Queue(64)`` doing the same work.
Each figure is the best of 7 interleaved rounds. Nodes use ``validate="none"``
(no registry) and no middleware is attached.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from penguiflow import Node, NodePolicy, create
from penguiflow.types import Headers, Message

HOPS = 5
N = 10_000
ROUNDS = 7


async def step(msg: Any, ctx: Any) -> Any:
    return msg


def build_flow() -> Any:
    nodes = [Node(step, name=f"n{i}", policy=NodePolicy(validate="none")) for i in range(HOPS)]
    adjacency = [a.to(b) for a, b in zip(nodes, nodes[1:], strict=False)]
    return create(*adjacency, nodes[-1].to())


async def flow_ping(items: list[Any]) -> float:
    flow = build_flow()
    flow.run()
    start = time.perf_counter()
    for item in items:
        await flow.emit(item)
        await flow.fetch()
    elapsed = time.perf_counter() - start
    await flow.stop()
    return elapsed


async def flow_pipelined(items: list[Any]) -> float:
    flow = build_flow()
    flow.run()

    async def feed() -> None:
        for item in items:
            await flow.emit(item)

    start = time.perf_counter()
    feeder = asyncio.create_task(feed())
    for _ in items:
        await flow.fetch()
    await feeder
    elapsed = time.perf_counter() - start
    await flow.stop()
    return elapsed


def build_queues() -> tuple[list[asyncio.Queue[Any]], list[asyncio.Task[None]]]:
    queues: list[asyncio.Queue[Any]] = [asyncio.Queue(64) for _ in range(HOPS + 1)]

    async def worker(inbox: asyncio.Queue[Any], outbox: asyncio.Queue[Any]) -> None:
        while True:
            item = await inbox.get()
            await outbox.put(await step(item, None))

    tasks = [asyncio.create_task(worker(queues[i], queues[i + 1])) for i in range(HOPS)]
    return queues, tasks


async def queue_ping(items: list[Any]) -> float:
    queues, tasks = build_queues()
    start = time.perf_counter()
    for item in items:
        await queues[0].put(item)
        await queues[-1].get()
    elapsed = time.perf_counter() - start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return elapsed


async def queue_pipelined(items: list[Any]) -> float:
    queues, tasks = build_queues()

    async def feed() -> None:
        for item in items:
            await queues[0].put(item)

    start = time.perf_counter()
    feeder = asyncio.create_task(feed())
    for _ in items:
        await queues[-1].get()
    await feeder
    elapsed = time.perf_counter() - start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return elapsed


async def main() -> None:
    headers = Headers(tenant="bench")
    cases = {
        "bare payload": ["x"] * N,
        "traced Message": [Message(payload=i, headers=headers) for i in range(N)],
    }
    for label, items in cases.items():
        for shape, flow_fn, queue_fn in (
            ("ping", flow_ping, queue_ping),
            ("pipelined", flow_pipelined, queue_pipelined),
        ):
            await flow_fn(items[:1000])  # warm up
            flow_runs: list[float] = []
            queue_runs: list[float] = []
            for _ in range(ROUNDS):  # interleaved, so machine noise hits both alike
                flow_runs.append(await flow_fn(items))
                queue_runs.append(await queue_fn(items))
            flow_s, queue_s = min(flow_runs), min(queue_runs)
            per_hop_flow = flow_s / N / HOPS * 1e6
            per_hop_queue = queue_s / N / HOPS * 1e6
            print(
                f"{label:15} {shape:9}  penguiflow {per_hop_flow:6.2f} us/hop   "
                f"asyncio.Queue {per_hop_queue:6.2f} us/hop   ratio {flow_s / queue_s:4.2f}x"
            )


if __name__ == "__main__":
    asyncio.run(main())
