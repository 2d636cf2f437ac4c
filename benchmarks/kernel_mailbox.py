"""Mailbox vs ``asyncio.Queue``: ping-pong latency and 5-stage pipeline throughput.

Run from the repository root::

    python -m benchmarks.kernel_mailbox          # full run (~20 s)
    python -m benchmarks.kernel_mailbox --quick  # a few seconds

Measured:

* ping-pong: request/reply round trips between two tasks over two queues;
* pipeline: five forwarding tasks joined by queues (``Mailbox.put``/``get``
  against ``asyncio.Queue.put``/``get``), once with capacity 1 (every hop waits
  for room: hand-off bound) and once with capacity 64 (PenguiFlow's default
  ``queue_maxsize``: per-operation cost bound);
* actors: the same pipeline built from five forwarding actors (``ActorRef.tell``
  and the kernel's receive loop, the hot path of every flow node) against the
  ``asyncio.Queue`` task pipeline at capacity 64.

Rounds alternate between the implementations (so machine noise hits both), each
figure is the median over rounds, and the ratios are printed. Read the ratios,
not the absolute numbers: the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from penguiflow.actors import Actor, ActorContext, Mailbox
from penguiflow.supervision import ActorSystem

__all__ = ["main"]

STAGES = 5

Bench = Callable[[Callable[[int], Any], int, int], Awaitable[float]]


class _QueueAdapter:
    """asyncio.Queue behind the two calls the benchmark uses."""

    def __init__(self, capacity: int) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(capacity)
        self.put = self._queue.put
        self.get = self._queue.get


class _MailboxAdapter:
    """Mailbox behind the same two calls; ``get`` returns a ``Delivery``."""

    def __init__(self, capacity: int) -> None:
        box = Mailbox(capacity)
        self.put = box.put
        self.get = box.get


def _unwrapper(make: Callable[[int], Any]) -> Callable[[Any], Any]:
    """What a consumer does with what it got: the item itself, or ``Delivery.item``."""
    if make is _MailboxAdapter:
        return _item_of
    return _identity


def _identity(value: Any) -> Any:
    return value


def _item_of(delivery: Any) -> Any:
    return delivery.item


async def ping_pong(make: Callable[[int], Any], n: int, capacity: int) -> float:
    """Seconds for ``n`` request/reply round trips between two tasks."""
    ping, pong = make(capacity), make(capacity)
    unwrap = _unwrapper(make)

    async def echo() -> None:
        for _ in range(n):
            await pong.put(unwrap(await ping.get()))

    task = asyncio.create_task(echo())
    start = time.perf_counter()
    for i in range(n):
        await ping.put(i)
        await pong.get()
    elapsed = time.perf_counter() - start
    await task
    return elapsed


async def pipeline(make: Callable[[int], Any], n: int, capacity: int) -> float:
    """Seconds to push ``n`` items through ``STAGES`` forwarding tasks."""
    queues = [make(capacity) for _ in range(STAGES + 1)]
    unwrap = _unwrapper(make)

    async def stage(inbox: Any, outbox: Any) -> None:
        for _ in range(n):
            await outbox.put(unwrap(await inbox.get()))

    tasks = [asyncio.create_task(stage(queues[i], queues[i + 1])) for i in range(STAGES)]
    sink = queues[-1]

    async def drain() -> None:
        for _ in range(n):
            await sink.get()

    start = time.perf_counter()
    drainer = asyncio.create_task(drain())
    for i in range(n):
        await queues[0].put(i)
    await drainer
    elapsed = time.perf_counter() - start
    await asyncio.gather(*tasks)
    return elapsed


class _Forward(Actor):
    """A pipeline stage: hands every message to the next actor."""

    def __init__(self, target: Any) -> None:
        self.tell = target.tell

    async def receive(self, message: Any, ctx: ActorContext) -> None:
        await self.tell(message)


class _Sink(Actor):
    """The end of the pipeline: counts messages, releases the producer at ``n``."""

    def __init__(self, n: int, done: asyncio.Event) -> None:
        self.n = n
        self.seen = 0
        self.done = done

    async def receive(self, message: Any, ctx: ActorContext) -> None:
        self.seen += 1
        if self.seen == self.n:
            self.done.set()


async def actor_pipeline(make: Callable[[int], Any], n: int, capacity: int) -> float:
    """Seconds to push ``n`` messages through ``STAGES`` forwarding actors.

    With ``_QueueAdapter`` the task pipeline runs instead, as the baseline.
    """
    if make is _QueueAdapter:
        return await pipeline(make, n, capacity)
    done = asyncio.Event()
    async with ActorSystem("bench") as system:
        ref = system.spawn(lambda: _Sink(n, done), name="sink", capacity=capacity)
        for stage in range(STAGES):
            ref = system.spawn(
                functools.partial(_Forward, ref), name=f"s{stage}", capacity=capacity
            )
        tell = ref.tell
        start = time.perf_counter()
        for i in range(n):
            await tell(i)
        await done.wait()
        return time.perf_counter() - start


async def _measure(bench: Bench, n: int, rounds: int, capacity: int) -> tuple[float, float]:
    """Median seconds of (asyncio.Queue, Mailbox) over interleaved rounds."""
    queue_times: list[float] = []
    mailbox_times: list[float] = []
    await bench(_QueueAdapter, n // 10, capacity)  # warm-up
    await bench(_MailboxAdapter, n // 10, capacity)
    for r in range(rounds):
        # Alternate which implementation goes first so drift hits both equally.
        order = [(_QueueAdapter, queue_times), (_MailboxAdapter, mailbox_times)]
        if r % 2:
            order.reverse()
        for make, sink in order:
            sink.append(await bench(make, n, capacity))
    return statistics.median(queue_times), statistics.median(mailbox_times)


async def _run(quick: bool) -> dict[str, float]:
    # Many short interleaved rounds: the median shrugs off bursts of load from
    # other processes better than a few long ones.
    n = 5_000 if quick else 20_000
    rounds = 3 if quick else 21
    print(f"items: {n}, stages: {STAGES}, rounds: {rounds} (medians)")
    q, m = await _measure(ping_pong, n, rounds, 64)
    results = {"ping_pong_time_ratio": m / q}
    print(
        f"ping-pong             asyncio.Queue {q / n * 1e6:7.2f} us/trip    "
        f"Mailbox {m / n * 1e6:7.2f} us/trip    time ratio {m / q:.2f}x (target <= 1)"
    )
    for capacity in (1, 64):
        q, m = await _measure(pipeline, n, rounds, capacity)
        results[f"pipeline_c{capacity}_throughput_ratio"] = q / m
        print(
            f"pipeline capacity {capacity:<3} asyncio.Queue {n / q:7.0f} items/s   "
            f"Mailbox {n / m:7.0f} items/s   throughput ratio {q / m:.2f}x (target >= 2)"
        )
    q, m = await _measure(actor_pipeline, n, rounds, 64)
    results["actor_pipeline_throughput_ratio"] = q / m
    print(
        f"actors capacity 64    asyncio.Queue {n / q:7.0f} items/s   "
        f"5 actors {n / m:6.0f} items/s   throughput ratio {q / m:.2f}x"
    )
    return results


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Run the benchmark, print medians and ratios, return the ratios."""
    parser = argparse.ArgumentParser(description="Mailbox vs asyncio.Queue")
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    args = parser.parse_args(argv)
    return asyncio.run(_run(args.quick))


if __name__ == "__main__":
    main()
