"""Clients made from a URL queue calls past their pool instead of failing them.

redis-py's default asyncio pool holds at most 100 connections and raises
``MaxConnectionsError`` for the 101st concurrent call; our clients use a blocking
pool of the same size, so a burst of concurrent calls waits for a connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from penguiflow import Headers, Message, Node, NodePolicy, RateLimit, create
from penguiflow.distributed import RedisRateLimiter, RedisStateStore
from penguiflow.distributed._redis import MAX_CONNECTIONS, connect

pytestmark = pytest.mark.redis

BURST = 3 * MAX_CONNECTIONS


async def test_a_client_from_a_url_has_a_blocking_pool_it_closes(redis_url: str) -> None:
    from redis.asyncio import BlockingConnectionPool

    client, owned = connect(redis_url, block_ms=8000)
    pool = client.connection_pool
    assert owned
    assert isinstance(pool, BlockingConnectionPool)
    assert pool.max_connections == MAX_CONNECTIONS
    assert pool.timeout == 13.0  # the socket timeout: the longest read plus 5 s
    assert await client.ping()
    await client.aclose()
    assert client.auto_close_connection_pool


async def test_a_given_client_is_used_as_it_is(redis_client: Any) -> None:
    assert connect(redis_client) == (redis_client, False)


async def test_concurrent_reservations_past_the_pool_all_succeed(
    redis_url: str, namespace: str
) -> None:
    limiter = RedisRateLimiter(redis_url, prefix=namespace)
    limit = RateLimit(rate=1e6, burst=10 * BURST, key="k")
    try:
        delays = await asyncio.wait_for(
            asyncio.gather(*(limiter.reserve("k", limit) for _ in range(BURST))), 30
        )
    finally:
        await limiter.close()
    assert delays == [0.0] * BURST


async def test_concurrent_durable_emits_past_the_pool_are_all_journaled_once(
    redis_url: str, namespace: str
) -> None:
    store = RedisStateStore(redis_url, namespace=namespace)

    async def double(msg: Message, ctx: Any) -> Message:
        return msg.model_copy(update={"payload": msg.payload * 2})

    flow = create(
        Node(double, name="double", policy=NodePolicy(validate="none")).to(),
        state_store=store,
        durable=True,
    )
    flow.run()
    try:
        await asyncio.wait_for(flow.recover(), 30)
        messages = [Message(payload=i, headers=Headers(tenant="t")) for i in range(BURST)]
        # every message twice, with its key: the second emit of each is a no-op
        emits = [flow.emit(m, idempotency_key=f"k{i}") for i, m in enumerate(messages)] * 2

        async def fetch_all() -> list[Message]:
            return [await flow.fetch() for _ in range(BURST)]

        results, *_ = await asyncio.wait_for(asyncio.gather(fetch_all(), *emits), 60)
        assert sorted(r.payload for r in results) == [2 * i for i in range(BURST)]
        assert sorted(r.trace_id for r in results) == sorted(m.trace_id for m in messages)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(flow.fetch(), 0.3)  # nothing more, no duplicate
    finally:
        await asyncio.wait_for(flow.stop(), 30)
        await store.clear()
        await store.close()
