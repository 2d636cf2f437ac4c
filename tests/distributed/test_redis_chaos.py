"""Chaos end to end: real workers killed and frozen at seeded moments, nothing lost.

Three ``penguiflow-worker`` processes host both distributed nodes of
``prep -> enrich -> score`` (each trace yields two results). During 2,000
traces, six seeded SIGKILLs each take a worker down (a replacement starts at
once), one worker is frozen (SIGSTOP) while it holds entries until others have
claimed them, then resumed; another is frozen the same way near the end and
resumed only after ``deployment.close()``. Every trace must be fetched exactly
once with the right payload (the return streams are also deleted at a seeded
moment, as an expiry would: what was refused meanwhile is redone), and Redis
must end clean: node streams empty, no consumers, no key but the two node
streams.
"""

from __future__ import annotations

import asyncio
import collections
import random
import signal
import subprocess
import time
from typing import Any

import pytest
import redis_flows
from procs import CHAIN_NODES, consumers, pending_of, start_worker

from penguiflow import Headers, Message
from penguiflow.distributed import RedisDeployment
from penguiflow.distributed._protocol import GROUP, Keys

pytestmark = [pytest.mark.redis, pytest.mark.slow]

TRACES = 2000
RESULTS = 2 * TRACES
KILLS = 6


class Chaos:
    """The worker processes of one run and the seeded faults done to them."""

    def __init__(self, url: str, prefix: str, client: Any, seed: int) -> None:
        self.url = url
        self.prefix = prefix
        self.client = client
        self.rng = random.Random(seed)
        self.started = 0
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.dead: list[subprocess.Popen[bytes]] = []
        # Result counts at which to strike: six kills, a freeze, a freeze past close().
        self.kill_at = sorted(self.rng.sample(range(RESULTS // 10, RESULTS * 7 // 10), KILLS))
        self.freeze_at = self.rng.randrange(RESULTS // 5, RESULTS // 2)
        self.late_freeze_at = RESULTS - 2 * self.rng.randrange(20, 60)
        # ...and a moment when both return streams vanish (a refresh that came
        # too late): the results refused or dropped with them must be redone.
        self.lose_at: int | None = self.rng.randrange(RESULTS // 10, RESULTS * 8 // 10)
        self.origin: str | None = None
        self.frozen: str | None = None
        self.late_frozen: str | None = None

    def start(self) -> None:
        worker_id = f"c{self.started}"
        self.started += 1
        self.workers[worker_id] = start_worker(
            self.url, self.prefix, worker_id, "--stale-consumer-ms", "1500"
        )

    def _pick(self) -> str:
        live = sorted(w for w in self.workers if w not in (self.frozen, self.late_frozen))
        return self.rng.choice(live)

    async def _freeze_holding(self) -> str | None:
        """SIGSTOP a worker that holds entries (``None``: it held none; resumed)."""
        worker_id = self._pick()
        proc = self.workers[worker_id]
        proc.send_signal(signal.SIGSTOP)
        if await pending_of(self.client, self.prefix, f"{worker_id}-"):
            return worker_id
        proc.send_signal(signal.SIGCONT)
        return None

    async def on_result(self, count: int) -> None:
        if self.lose_at is not None and count >= self.lose_at and self.origin is not None:
            self.lose_at = None
            keys = Keys(self.prefix, "chain")
            await self.client.delete(*(keys.return_stream(self.origin, n) for n in CHAIN_NODES))
        if self.kill_at and count >= self.kill_at[0]:
            self.kill_at.pop(0)
            worker_id = self._pick()
            proc = self.workers.pop(worker_id)
            proc.send_signal(signal.SIGKILL)
            self.dead.append(proc)
            self.start()
        if self.frozen is None and self.freeze_at is not None and count >= self.freeze_at:
            self.frozen = await self._freeze_holding()
            if self.frozen is not None:
                self.freeze_at = None
        elif self.frozen is not None and not await pending_of(
            self.client, self.prefix, f"{self.frozen}-"
        ):
            # Resumed once the others claimed everything it held (past claim idle).
            self.workers[self.frozen].send_signal(signal.SIGCONT)
            self.frozen = None
        if self.late_frozen is None and self.freeze_at is None and count >= self.late_freeze_at:
            self.late_frozen = await self._freeze_holding()

    async def wait_stale_consumers_swept(self) -> None:
        """Until only live workers' consumers are left (killed ones: swept by others)."""
        live = tuple(f"{w}-" for w in self.workers)
        while any(
            not c["name"].startswith(live) for c in await consumers(self.client, self.prefix)
        ):
            await asyncio.sleep(0.1)  # the sweep runs in other processes, once a second

    def stop(self) -> list[int | None]:
        for proc in self.workers.values():
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
        codes = []
        for proc in self.workers.values():
            try:
                codes.append(proc.wait(timeout=30))
            except subprocess.TimeoutExpired:
                proc.kill()
                codes.append(None)
        for proc in self.dead:
            proc.wait(timeout=10)
        return codes


@pytest.mark.parametrize("seed", [11, 23, 37])
async def test_no_trace_is_lost_or_duplicated_through_kills_and_freezes(
    redis_url: str, namespace: str, redis_client: Any, seed: int
) -> None:
    began = time.monotonic()
    flow = redis_flows.build_chain()
    deployment = RedisDeployment(
        redis_url, nodes=["enrich", "score"], flow_name="chain", prefix=namespace, block_ms=100
    )
    deployment.apply(flow)
    chaos = Chaos(redis_url, namespace, redis_client, seed)
    chaos.origin = deployment.origin
    for _ in range(3):
        chaos.start()
    flow.run()
    messages = [Message(payload={"n": n}, headers=Headers(tenant="t")) for n in range(TRACES)]
    expected = {m.trace_id: m.payload["n"] for m in messages}
    seen: dict[str, list[int]] = collections.defaultdict(list)
    closed = False
    try:

        async def produce() -> None:
            for msg in messages:
                await flow.emit(msg)

        async with asyncio.timeout(120), asyncio.TaskGroup() as group:
            group.create_task(produce())
            for count in range(RESULTS):
                result = await flow.fetch()
                payload = result.payload
                assert payload["n"] == expected[result.trace_id], "a misrouted result"
                assert payload["scored"] is True
                seen[result.trace_id].append(payload["seq"])
                await chaos.on_result(count)
            await flow.wait_idle()
        assert chaos.kill_at == [], "not every kill happened"
        assert chaos.lose_at is None, "the return streams were never lost"
        assert chaos.freeze_at is None, "no worker was frozen with entries in hand"
        assert chaos.frozen is None
        assert chaos.late_frozen is not None, "no worker was frozen near the end"
        assert len(seen) == TRACES
        assert all(seqs == [0, 1] for seqs in seen.values()), "a trace lost or duplicated"
        assert deployment.backlog() == {"enrich": 0, "score": 0}
        await flow.stop()
        await deployment.close()
        closed = True
        # The late-frozen worker resumes after close(): whatever it held was done
        # by others; its answer must not re-create this origin's return stream.
        chaos.workers[chaos.late_frozen].send_signal(signal.SIGCONT)
        chaos.late_frozen = None
        async with asyncio.timeout(30):
            await chaos.wait_stale_consumers_swept()
    finally:
        if not closed:
            await flow.stop()
            await deployment.close()
        codes = chaos.stop()
    assert codes == [0] * len(codes), "a worker did not exit cleanly"
    keys = Keys(namespace, "chain")
    streams = {keys.node_stream(node) for node in ("enrich", "score")}
    assert {key async for key in redis_client.scan_iter(match=f"{namespace}*")} == streams
    for stream in streams:
        assert await redis_client.xlen(stream) == 0
        assert (await redis_client.xpending(stream, GROUP))["pending"] == 0
        assert await redis_client.xinfo_consumers(stream, GROUP) == []
    print(f"chaos seed {seed}: {time.monotonic() - began:.1f} s")
