"""A2A push-notification costs: the hot-path check, delivery throughput, a down receiver.

Run: ``python -m benchmarks.a2a_push`` (standalone; not one of the
``python -m benchmarks`` targets). Everything stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import time
import timeit
import tracemalloc

from aiohttp import web

from penguiflow_a2a.push import PushSender, PushSettings
from penguiflow_a2a.push_config import PushConfig
from penguiflow_a2a.push_guard import WebhookGuard
from penguiflow_a2a.tasks import StatusEvent, TaskRecord

__all__ = ["main"]


def _record(task_id: str) -> TaskRecord:
    return TaskRecord(id=task_id, context_id="c", state="working", updated=0.0)


def _event(record: TaskRecord) -> StatusEvent:
    return StatusEvent(record.id, record.context_id, record.status(), False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _throughput(tasks: int, updates: int) -> tuple[float, int]:
    received = 0
    done = asyncio.Event()
    total = tasks * (updates + 1)

    async def hook(request: web.Request) -> web.Response:
        nonlocal received
        await request.read()
        received += 1
        if received == total:
            done.set()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    sender = PushSender(WebhookGuard(["127.0.0.1"]), settings=PushSettings(queue_size=updates + 1))
    await sender.start()
    try:
        start = time.perf_counter()
        for index in range(tasks):
            record = _record(f"t{index}")
            sender.register(record, PushConfig("c", record.id, url, "1.0"))
            for _ in range(updates):
                sender.notify(record, _event(record))
        async with asyncio.timeout(120):
            await done.wait()
        return time.perf_counter() - start, sender.stats.dropped
    finally:
        await sender.stop()
        await runner.cleanup()


async def _down_receiver(updates: int, queue_size: int) -> tuple[int, int, int, float]:
    url = f"http://127.0.0.1:{_free_port()}/hook"
    settings = PushSettings(queue_size=queue_size, max_attempts=1_000_000, backoff_s=3600)
    sender = PushSender(WebhookGuard(["127.0.0.1"]), settings=settings)
    await sender.start()
    record = _record("down")
    sender.register(record, PushConfig("c", record.id, url, "1.0"))
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    peak_pending = 0
    for index in range(updates):
        sender.notify(record, _event(record))
        if index % 1000 == 0:
            await asyncio.sleep(0)  # let the worker fail its first try and back off
            peak_pending = max(peak_pending, sender.pending)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    dropped = sender.stats.dropped
    await sender.stop()
    return peak_pending, dropped, sender.stats.dropped - dropped, (peak - base) / 1e6


def main(argv: list[str]) -> None:
    """Print the measurements."""
    del argv
    record = _record("quiet")
    sender = PushSender(WebhookGuard())
    event = _event(record)
    per_call = timeit.timeit(lambda: sender.notify(record, event), number=200_000) / 200_000
    print(f"notify, task without configs: {per_call * 1e9:.0f} ns/event")
    for tasks, updates in ((1, 2000), (20, 100)):
        elapsed, dropped = asyncio.run(_throughput(tasks, updates))
        total = tasks * (updates + 1)
        print(
            f"delivery, {tasks} task(s) x {updates + 1} updates: {total / elapsed:,.0f} POST/s "
            f"({elapsed:.2f} s, dropped {dropped})"
        )
    pending, dropped, at_stop, megabytes = asyncio.run(_down_receiver(100_000, 64))
    print(
        f"down receiver, 100,000 updates, queue_size=64: peak pending {pending}, "
        f"dropped (queue_full) {dropped}, dropped at stop {at_stop}, "
        f"peak traced memory {megabytes:.2f} MB"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
