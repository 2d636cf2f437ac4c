"""RedisStateStore passes the shipped state store contract, like the SQLite store."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from penguiflow.distributed import RedisStateStore
from penguiflow.state import RemoteBinding, StoredEvent
from penguiflow.testkit._contracts import (
    STATE_STORE_CHECKS,
    check_state_store,
    check_state_store_reopen,
)

pytestmark = pytest.mark.redis


@pytest.fixture
async def store(redis_url: str, namespace: str) -> AsyncIterator[RedisStateStore]:
    made = RedisStateStore(redis_url, namespace=namespace)
    try:
        yield made
    finally:
        await made.clear()
        await made.close()


@pytest.mark.parametrize(
    "check", list(STATE_STORE_CHECKS.values()), ids=list(STATE_STORE_CHECKS.keys())
)
async def test_store_contract(
    store: RedisStateStore, check: Callable[[RedisStateStore], Awaitable[None]]
) -> None:
    await check(store)


async def test_runner_passes_with_a_fresh_namespace_per_store(
    redis_url: str, namespace: str
) -> None:
    made: list[RedisStateStore] = []

    def factory() -> RedisStateStore:
        made.append(RedisStateStore(redis_url, namespace=f"{namespace}-{len(made)}"))
        return made[-1]

    try:
        await check_state_store(factory)
    finally:
        for store in made:
            cleanup = RedisStateStore(redis_url, namespace=store.namespace)
            await cleanup.clear()
            await cleanup.close()
    assert len(made) == len(STATE_STORE_CHECKS)


async def test_store_passes_reopen_check(redis_url: str, namespace: str) -> None:
    try:
        await check_state_store_reopen(lambda: RedisStateStore(redis_url, namespace=namespace))
    finally:
        cleanup = RedisStateStore(redis_url, namespace=namespace)
        await cleanup.clear()
        await cleanup.close()


async def test_stores_with_different_namespaces_do_not_see_each_other(
    store: RedisStateStore, redis_url: str
) -> None:
    other = RedisStateStore(redis_url, namespace=f"{store.namespace}-other")
    try:
        await store.save_event(StoredEvent("t", 1.0, "node_start", "a", "id", {"k": 1}))
        assert await other.load_history("t") == []
    finally:
        await other.close()


async def test_a_shared_client_is_not_closed_by_the_store(redis_client, namespace: str) -> None:
    async with RedisStateStore(redis_client, namespace=namespace) as store:
        await store.save_remote_binding(RemoteBinding("t", "c", "k", "http://a"))
    assert await redis_client.ping()


async def test_clear_deletes_only_the_namespace(store: RedisStateStore) -> None:
    await store.save_event(StoredEvent("t", 1.0, "node_start", None, None, {}))
    await store.save_planner_state("tok", {"a": 1})
    assert await store.clear() >= 3
    assert await store.load_history("t") == []
    assert await store.load_planner_state("tok") is None


def test_repr_names_the_namespace(redis_url: str) -> None:
    assert repr(RedisStateStore(redis_url, namespace="ns")) == "RedisStateStore(namespace='ns')"
