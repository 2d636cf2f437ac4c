"""InMemoryStateStore: the testkit fake's own helpers (the contract is tested elsewhere)."""

from __future__ import annotations

import asyncio

import pytest

from penguiflow.state import RemoteBinding, StoredEvent
from penguiflow.testkit._stores import InMemoryStateStore


def _event(trace_id: str | None, kind: str = "node_start", n: int = 0) -> StoredEvent:
    return StoredEvent(trace_id, float(n), kind, "a", "id", {"n": n})


async def test_save_calls_keep_duplicates_that_history_drops() -> None:
    store = InMemoryStateStore()
    await store.save_event(_event("t"))
    await store.save_event(_event("t"))
    assert len(store.save_calls) == 2
    assert len(store.events) == 1


async def test_kinds_filter_by_trace() -> None:
    store = InMemoryStateStore()
    await store.save_event(_event("t", "node_start"))
    await store.save_event(_event("u", "node_success"))
    assert store.kinds() == ["node_start", "node_success"]
    assert store.kinds("u") == ["node_success"]


async def test_fail_with_makes_saves_raise_but_records_the_call() -> None:
    store = InMemoryStateStore()
    store.fail_with = OSError("disk full")
    with pytest.raises(OSError, match="disk full"):
        await store.save_event(_event("t"))
    with pytest.raises(OSError, match="disk full"):
        await store.save_remote_binding(RemoteBinding("t", "c", "k", "u"))
    assert len(store.save_calls) == 1
    assert store.events == ()
    assert store.bindings == ()


async def test_wait_for_event_returns_once_enough_events_are_stored() -> None:
    store = InMemoryStateStore()
    waiter = asyncio.create_task(store.wait_for_event("node_success", trace_id="t", count=2))
    await store.save_event(_event("t", "node_success", 1))
    await store.save_event(_event("u", "node_success", 2))
    await asyncio.sleep(0)  # one turn for the waiter: two matching events are still needed
    assert not waiter.done()
    await store.save_event(_event("t", "node_success", 3))
    async with asyncio.timeout(5):
        found = await waiter
    assert [e.payload["n"] for e in found] == [1, 3]


async def test_wait_for_event_returns_at_once_when_already_stored() -> None:
    store = InMemoryStateStore()
    await store.save_event(_event("t", "node_start"))
    async with asyncio.timeout(5):
        assert len(await store.wait_for_event("node_start")) == 1


async def test_wait_for_binding_returns_the_first_binding_of_the_trace() -> None:
    store = InMemoryStateStore()
    waiter = asyncio.create_task(store.wait_for_binding("t"))
    await store.save_remote_binding(RemoteBinding("other", "c", "k", "u"))
    await store.save_remote_binding(RemoteBinding("t", "c", "k", "u"))
    async with asyncio.timeout(5):
        assert await waiter == RemoteBinding("t", "c", "k", "u")
    assert len(store.bindings) == 2
