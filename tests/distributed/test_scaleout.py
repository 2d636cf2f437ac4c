"""Scale-out end to end: a real Redis, three worker processes, one killed mid-run."""

from __future__ import annotations

import asyncio
import collections
import signal

import pytest
import redis_flows
from procs import pending_of, start_worker

from penguiflow import Headers, Message
from penguiflow.distributed import RedisDeployment
from penguiflow.distributed._protocol import GROUP, Keys

pytestmark = [pytest.mark.redis, pytest.mark.slow]

TRACES = 2000


async def test_every_result_arrives_once_in_order_despite_a_killed_worker(
    redis_url: str, namespace: str, redis_client
) -> None:
    flow = redis_flows.build_chain()
    deployment = RedisDeployment(
        redis_url, nodes=["enrich", "score"], flow_name="chain", prefix=namespace, block_ms=100
    )
    deployment.apply(flow)
    workers = [start_worker(redis_url, namespace, f"w{i}") for i in range(3)]
    flow.run()
    seen: dict[str, list[int]] = collections.defaultdict(list)
    killed_after = None
    pending_at_kill = 0
    try:
        messages = [Message(payload={"n": n}, headers=Headers(tenant="t")) for n in range(TRACES)]

        async def produce() -> None:
            for msg in messages:
                await flow.emit(msg)

        async with asyncio.timeout(90), asyncio.TaskGroup() as group:
            group.create_task(produce())
            for count in range(2 * TRACES):
                result = await flow.fetch()
                assert result.payload["scored"] is True
                seen[result.trace_id].append(result.payload["seq"])
                if killed_after is None and count >= TRACES // 2:
                    # Freeze worker 0, and kill it only while it holds unacknowledged
                    # entries (else let it go on and try again at the next result).
                    workers[0].send_signal(signal.SIGSTOP)
                    in_hand = await pending_of(redis_client, namespace, "w0-")
                    if in_hand:
                        workers[0].send_signal(signal.SIGKILL)
                        killed_after, pending_at_kill = count, in_hand
                    else:
                        workers[0].send_signal(signal.SIGCONT)
        assert killed_after is not None, "worker 0 never held an entry"
        assert pending_at_kill > 0
        assert len(seen) == TRACES
        assert all(seqs == [0, 1] for seqs in seen.values()), "per-trace order or duplicates"
        keys = Keys(namespace, "chain")
        for node in ("enrich", "score"):
            stream = keys.node_stream(node)
            assert (await redis_client.xpending(stream, GROUP))["pending"] == 0
            assert await redis_client.xlen(stream) == 0
        assert deployment.backlog() == {"enrich": 0, "score": 0}
    finally:
        await flow.stop()
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=20)
        await deployment.close()
    assert [proc.returncode for proc in workers[1:]] == [0, 0]
