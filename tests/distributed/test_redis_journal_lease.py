"""One running durable flow per Redis namespace: the journal's owner lease, with fencing.

A second flow waits one lease for the owner and then gets ``JournalInUse``; a
stopped owner frees the lease at once; a dead owner's lease is waited out; and
an owner whose lease another flow took can no longer write anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from penguiflow import Headers, Message, Node, NodePolicy, create
from penguiflow.distributed import RedisStateStore
from penguiflow.errors import JournalInUse

pytestmark = pytest.mark.redis

HEADERS = Headers(tenant="lease")


async def _echo(msg: Any, ctx: Any) -> Any:
    return msg


def _flow(store: RedisStateStore) -> Any:
    node = Node(_echo, name="echo", policy=NodePolicy(validate="none"))
    return create(node.to(), state_store=store, durable=True)


@pytest.fixture
async def stores(redis_url: str, namespace: str) -> AsyncIterator[Callable[..., RedisStateStore]]:
    made: list[RedisStateStore] = []
    flows: list[Any] = []

    def factory(lease_s: float = 30.0) -> RedisStateStore:
        store = RedisStateStore(redis_url, namespace=namespace, journal_lease_s=lease_s)
        made.append(store)
        return store

    factory.flows = flows  # type: ignore[attr-defined]
    yield factory
    for flow in flows:
        async with asyncio.timeout(10):
            await flow.stop()
    if made:
        await made[0].clear()
    for store in made:
        await store.close()


def _running(stores: Any, store: RedisStateStore) -> Any:
    flow = _flow(store)
    flow.run()
    stores.flows.append(flow)
    return flow


async def test_a_second_flow_gets_journal_in_use_while_the_owner_runs(stores: Any) -> None:
    owner = _running(stores, stores(lease_s=0.4))
    async with asyncio.timeout(10):
        await owner.recover()
        second = _running(stores, stores(lease_s=0.4))
        # Longer than a lease: the owner's heartbeat keeps it while the owner is idle.
        with pytest.raises(JournalInUse, match="owned by another running durable flow") as info:
            await second.recover()
    assert info.value.owner is not None
    assert "pid" in info.value.owner


async def test_a_stopped_owner_frees_the_lease_at_once(stores: Any) -> None:
    owner = _running(stores, stores())
    async with asyncio.timeout(10):
        await owner.recover()
        await owner.emit(Message(payload=1, headers=HEADERS))
        assert (await owner.fetch()).payload == 1
        await owner.stop()
        began = time.monotonic()
        nxt = _running(stores, stores())
        assert await nxt.recover() == []
    assert time.monotonic() - began < 5  # the lease is 30 s: it was freed, not waited out


async def test_a_dead_owners_lease_is_waited_out(stores: Any, namespace: str) -> None:
    store = stores()
    # A crashed owner (kill -9) leaves its lease behind until it expires.
    await store._redis.set(  # noqa: SLF001 - the key a crashed owner leaves
        f"{namespace}:journal:owner", "pid 1 on ghost (dead)", px=300
    )
    flow = _running(stores, store)
    async with asyncio.timeout(10):
        assert await flow.recover() == []  # waited for the expiry, then took over
        await flow.emit(Message(payload=2, headers=HEADERS))
        assert (await flow.fetch()).payload == 2


async def test_an_owner_that_lost_its_lease_can_no_longer_write(
    stores: Any, namespace: str
) -> None:
    store = stores()
    owner = _running(stores, store)
    async with asyncio.timeout(10):
        await owner.recover()
        # Frozen past its lease, it lost the journal to another flow:
        await store._redis.set(f"{namespace}:journal:owner", "pid 2 on other (new)")  # noqa: SLF001
        with pytest.raises(JournalInUse, match="pid 2 on other"):
            await owner.emit(Message(payload=3, headers=HEADERS), idempotency_key="k3")
        reader = stores()  # not a flow: reads need no lease
        assert (await reader.journal.load()).entries == ()


async def test_reads_of_an_unclaimed_journal_need_no_lease(stores: Any) -> None:
    owner = _running(stores, stores())
    async with asyncio.timeout(10):
        await owner.recover()
        await owner.emit(Message(payload=4, headers=HEADERS))
        reader = stores()
        records = await reader.journal.traces()  # penguiflow-admin reads this way
    assert len(records) == 1


async def test_a_second_run_in_one_process_is_refused_at_once(stores: Any) -> None:
    store = stores()
    _running(stores, store)
    other = _flow(store)  # the same store, so the same journal object
    with pytest.raises(JournalInUse, match="still running in this process"):
        other.run()


@pytest.mark.parametrize("lease_s", [0, -1, float("nan"), float("inf"), "5"])
def test_a_bad_lease_is_refused(redis_url: str, lease_s: Any) -> None:
    with pytest.raises(ValueError, match="lease_s"):
        RedisStateStore(redis_url, journal_lease_s=lease_s)


async def test_the_heartbeat_reports_a_lost_lease(
    stores: Any, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    store = stores(lease_s=0.3)
    owner = _running(stores, store)
    caplog.set_level("WARNING", logger="penguiflow.distributed")
    async with asyncio.timeout(10):
        await owner.recover()
        await store._redis.set(f"{namespace}:journal:owner", "pid 3 on other (new)")  # noqa: SLF001
        while not any(r.getMessage() == "journal_lease_lost" for r in caplog.records):
            await asyncio.sleep(0.05)  # the heartbeat runs every lease / 3
    (record,) = [r for r in caplog.records if r.getMessage() == "journal_lease_lost"]
    assert record.owner == "pid 3 on other (new)"
