"""``RedisRateLimiter``: one bucket per key shared by every process, on the server's clock."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import pytest
import ratelimit_flows
from procs import HERE, ROOT

from penguiflow import Headers, Message, RateLimit
from penguiflow.distributed import RedisDeployment, RedisRateLimiter
from penguiflow.ratelimit import RateLimiter

pytestmark = pytest.mark.redis

SLOW = RateLimit(rate=1.0, per_s=100.0, burst=2, key="k")  # one token per 100 s


@pytest.fixture
async def limiter(redis_client: Any, namespace: str) -> RedisRateLimiter:
    return RedisRateLimiter(redis_client, prefix=namespace)


def test_is_a_rate_limiter(limiter: RedisRateLimiter) -> None:
    assert isinstance(limiter, RateLimiter)
    assert repr(limiter).startswith("RedisRateLimiter(prefix='pftest-")


async def test_a_new_bucket_starts_full_then_queues(limiter: RedisRateLimiter) -> None:
    assert [await limiter.reserve("k", SLOW) for _ in range(2)] == [0.0, 0.0]
    first, second = [await limiter.reserve("k", SLOW) for _ in range(2)]
    assert 99.0 < first <= 100.0
    assert 199.0 < second <= 200.0


async def test_keys_are_separate_buckets(limiter: RedisRateLimiter) -> None:
    await limiter.reserve("a", SLOW, cost=2)
    assert await limiter.reserve("b", SLOW) == 0.0
    assert await limiter.reserve("a", SLOW) > 99.0


async def test_a_refund_gives_the_token_back(limiter: RedisRateLimiter) -> None:
    await limiter.reserve("k", SLOW, cost=2)
    assert await limiter.reserve("k", SLOW) > 99.0
    await limiter.refund("k", SLOW)
    await limiter.refund("k", SLOW)
    assert await limiter.reserve("k", SLOW) == 0.0


async def test_a_bucket_expires_once_it_would_be_full_again(
    limiter: RedisRateLimiter, redis_client: Any
) -> None:
    fast = RateLimit(rate=1000.0, per_s=1.0, burst=10)
    await limiter.reserve("k", fast, cost=10)
    ttl = await redis_client.pttl(limiter.bucket_key("k"))
    assert 0 < ttl <= 1010  # 10 ms to refill, plus a second


async def test_the_script_is_loaded_again_after_a_flush(
    limiter: RedisRateLimiter, redis_client: Any
) -> None:
    await limiter.reserve("k", SLOW)
    await redis_client.script_flush()
    assert await limiter.reserve("k", SLOW) == 0.0  # EVALSHA failed, then it was reloaded


async def test_a_failed_refund_is_logged_not_raised(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    dead = RedisRateLimiter("redis://127.0.0.1:1/0", prefix=namespace)  # nobody listens
    with caplog.at_level("WARNING", logger="penguiflow.distributed"):
        await dead.refund("k", SLOW)
    await dead.close()
    assert any(r.getMessage() == "rate_limit_refund_failed" for r in caplog.records)


def start_worker(url: str, prefix: str, worker_id: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    command = [
        sys.executable, "-m", "penguiflow.distributed.worker",
        "--redis", url,
        "--flow", "ratelimit_flows:build",
        "--flow-name", "limited",
        "--prefix", prefix,
        "--node", "call",
        "--concurrency", "2",
        "--block-ms", "100",
        "--worker-id", worker_id,
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=ROOT)


@pytest.mark.slow
async def test_three_worker_processes_share_one_limit(redis_url: str, namespace: str) -> None:
    """Six slots in three processes, one key: together they hold its rate."""
    items = 61  # three seconds at 20 per second, after the burst of one
    flow = ratelimit_flows.build()
    deployment = RedisDeployment(
        redis_url, nodes=["call"], flow_name="limited", prefix=namespace, block_ms=100
    )
    deployment.apply(flow)
    workers = [start_worker(redis_url, namespace, f"w{i}") for i in range(3)]
    flow.run()
    try:
        async with asyncio.timeout(60):
            for n in range(items):
                await flow.emit(Message(payload=n, headers=Headers(tenant="t")))
            results = [(await flow.fetch()).payload for _ in range(items)]
    finally:
        await flow.stop()
        for proc in workers:
            proc.send_signal(signal.SIGTERM)
        for proc in workers:
            proc.wait(timeout=20)
        await deployment.close()
    stamps = sorted(result["at"] for result in results)
    rate = (items - 1) / (stamps[-1] - stamps[0])
    assert rate == pytest.approx(ratelimit_flows.RATE, rel=0.1)
    assert len({result["pid"] for result in results}) == 3  # every worker took a share
    assert [proc.returncode for proc in workers] == [0, 0, 0]


async def test_a_deployment_shares_the_origins_keyed_buckets(
    redis_url: str, namespace: str, redis_client: Any
) -> None:
    flow = ratelimit_flows.build()
    async with RedisDeployment(redis_url, nodes=[], flow_name="limited", prefix=namespace) as dep:
        dep.apply(flow)
        flow.run()
        try:
            await flow.emit(Message(payload=0, headers=Headers(tenant="t")))
            async with asyncio.timeout(10):
                await flow.fetch()
        finally:
            await flow.stop()
    assert await redis_client.exists(f"{namespace}:ratelimit:provider") == 1


async def test_a_flow_given_its_own_limiter_keeps_it(
    redis_url: str, namespace: str, redis_client: Any
) -> None:
    from penguiflow import Node, NodePolicy, create
    from penguiflow.ratelimit import InMemoryRateLimiter

    own = InMemoryRateLimiter()
    node = Node(
        ratelimit_flows.call, name="call", policy=NodePolicy(rate_limit=ratelimit_flows.LIMIT)
    )
    flow = create(node.to(), rate_limiter=own)
    async with RedisDeployment(redis_url, nodes=[], flow_name="limited", prefix=namespace) as dep:
        dep.apply(flow)
        flow.run()
        try:
            await flow.emit(Message(payload=0, headers=Headers(tenant="t")))
            async with asyncio.timeout(10):
                await flow.fetch()
        finally:
            await flow.stop()
    assert await redis_client.exists(f"{namespace}:ratelimit:provider") == 0
    assert own.statistics().reservations == 1


async def test_passes_the_rate_limiter_contract_suite(redis_client: Any, namespace: str) -> None:
    from penguiflow.testkit import check_rate_limiter

    await check_rate_limiter(lambda: RedisRateLimiter(redis_client, prefix=namespace))
