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


class Cluster:
    """Origin flows and in-process worker hosts sharing one Redis key prefix."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.flows: list = []
        self.deployments: list = []
        self.hosts: list = []  # (host, stop event, task, client)
        self.may_crash: list = []  # hosts a test expects to end with an error

    def deploy(self, build, nodes, *, run: bool = True, **options):
        from penguiflow.distributed import RedisDeployment

        flow = build()
        deployment = RedisDeployment(
            self.url, nodes=nodes, flow_name="t", prefix=self.prefix, block_ms=50, **options
        )
        deployment.apply(flow)
        if run:
            flow.run()
        self.flows.append(flow)
        self.deployments.append(deployment)
        return flow, deployment

    async def host(self, build, nodes, **options):
        import asyncio

        from redis.asyncio import Redis

        from penguiflow.distributed._host import NodeHost
        from penguiflow.distributed._protocol import Keys

        client = Redis.from_url(self.url, decode_responses=True)
        options.setdefault("block_ms", 50)
        host = NodeHost(
            client,
            keys=Keys(self.prefix, "t"),
            build=build,
            nodes=nodes,
            worker_id=f"w{len(self.hosts)}",
            **options,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(host.run(stop))
        self.hosts.append((host, stop, task, client))
        async with asyncio.timeout(5):
            await host.ready.wait()
        return host

    async def close(self) -> None:
        import asyncio

        for flow in self.flows:
            await flow.stop()
        for _host, stop, _task, _client in self.hosts:
            stop.set()
        crashed = []
        for host, _stop, task, client in self.hosts:
            async with asyncio.timeout(5):
                (outcome,) = await asyncio.gather(task, return_exceptions=True)
            if isinstance(outcome, Exception) and host not in self.may_crash:
                crashed.append(outcome)
            await client.aclose()
        for deployment in self.deployments:
            await deployment.close()
        # A host that died in the background would pass many tests by accident.
        assert not crashed, f"a worker host crashed: {crashed!r}"


@pytest.fixture
async def cluster(redis_url: str, namespace: str, redis_client) -> AsyncIterator[Cluster]:
    made = Cluster(redis_url, namespace)
    try:
        yield made
    finally:
        await made.close()
