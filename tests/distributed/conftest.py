"""Fixtures for the Redis tests: the server URL, and key names no other test uses.

Tests marked ``redis`` read ``PENGUIFLOW_TEST_REDIS_URL`` (``scripts/test.sh``
starts a server). Without it they skip with a visible reason, except under
``CI``, where a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

REDIS_ENV = "PENGUIFLOW_TEST_REDIS_URL"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"{REDIS_ENV} is not set under CI: the redis tests must run")
    pytest.skip(f"{REDIS_ENV} is not set: no redis-server for this run (scripts/redis.sh)")


@pytest.fixture
def namespace() -> str:
    return f"pftest-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis_client(redis_url: str, namespace: str) -> AsyncIterator[object]:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        async for key in client.scan_iter(match=f"{namespace}*", count=500):
            await client.delete(key)
        await client.aclose()
