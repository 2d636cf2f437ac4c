"""The A2A task store seam: one contract for the fake, SQLite and Redis; principals' stable form."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from a2a_support import AGENT_URL, Gates, build_flow, make_card

from penguiflow.stores import SQLiteStateStore
from penguiflow.testkit import InMemoryStateStore
from penguiflow.types import Headers, Message
from penguiflow_a2a import A2AServerAdapter
from penguiflow_a2a.principals import (
    SHARED_PRINCIPAL,
    UnpersistablePrincipal,
    decode_principal,
    encode_principal,
)
from penguiflow_a2a.service import A2AService
from penguiflow_a2a.task_store import (
    InMemoryTaskStore,
    StateStoreTaskStore,
    StoredTask,
    snapshot,
    task_store_for,
)

REDIS_URL = os.environ.get("PENGUIFLOW_TEST_REDIS_URL")
KINDS = [
    "memory",
    "sqlite",
    pytest.param(
        "redis",
        marks=pytest.mark.skipif(REDIS_URL is None, reason="PENGUIFLOW_TEST_REDIS_URL not set"),
    ),
]


@pytest.fixture(params=KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "memory":
        yield InMemoryTaskStore()
        return
    if request.param == "sqlite":
        async with SQLiteStateStore(tmp_path / "t.db") as state_store:
            yield StateStoreTaskStore(state_store)
        return
    from penguiflow.distributed import RedisStateStore

    async with RedisStateStore(REDIS_URL or "", namespace=uuid.uuid4().hex) as redis_store:
        try:
            yield StateStoreTaskStore(redis_store)
        finally:
            await redis_store.clear()


async def test_a_saved_record_is_loaded_back(store: Any) -> None:
    await store.save("t1", {"id": "t1", "state": "working"})
    assert await store.load() == [{"id": "t1", "state": "working"}]


async def test_the_last_save_of_a_task_wins(store: Any) -> None:
    await store.save("t1", {"state": "working"})
    await store.save("t1", {"state": "completed"})
    assert await store.load() == [{"state": "completed"}]


async def test_deleted_records_are_gone_and_unknown_ids_ignored(store: Any) -> None:
    await store.save("t1", {"n": 1})
    await store.save("t2", {"n": 2})
    await store.delete(["t1", "nope"])
    await store.delete([])
    assert await store.load() == [{"n": 2}]


async def test_sqlite_records_survive_reopening(tmp_path: Path) -> None:
    async with SQLiteStateStore(tmp_path / "t.db") as first:
        await first.save_a2a_task("t1", {"n": 1})
    async with SQLiteStateStore(tmp_path / "t.db") as second:
        assert await second.load_a2a_tasks() == [{"n": 1}]


async def test_a_version_2_file_is_migrated_keeping_its_journal(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    async with SQLiteStateStore(path) as store:
        await store.journal.cancel("kept")
    with sqlite3.connect(path) as conn:  # as a version 2 store left it
        conn.execute("DROP TABLE penguiflow_a2a_tasks")
        conn.execute("PRAGMA user_version = 2")
    async with SQLiteStateStore(path) as store:
        await store.save_a2a_task("t1", {"n": 1})
        assert await store.load_a2a_tasks() == [{"n": 1}]
        assert [t.trace_id for t in await store.journal.traces(include_finished=True)] == ["kept"]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3


def test_a_store_without_task_methods_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="InMemoryStateStore cannot keep durable A2A tasks"):
        StateStoreTaskStore(InMemoryStateStore())


def test_a_flow_that_is_not_durable_gets_no_task_store() -> None:
    flow = build_flow(Gates())
    assert task_store_for(flow) is None
    adapter = A2AServerAdapter(flow, agent_card=make_card(), agent_url=AGENT_URL)
    assert A2AService(adapter).durable is False


async def test_a_durable_flow_gets_its_state_stores_task_store(tmp_path: Path) -> None:
    async with SQLiteStateStore(tmp_path / "t.db") as state_store:
        flow = build_flow(Gates(), state_store=state_store, durable=True)
        store = task_store_for(flow)
        assert isinstance(store, StateStoreTaskStore)
        assert store.state_store is state_store


# -- principals -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "principal",
    [SHARED_PRINCIPAL, "alice", 7, ("acme", "alice"), ("acme", (1, "x")), ()],
    ids=["shared", "str", "int", "tuple", "nested", "empty"],
)
def test_a_principal_comes_back_equal_from_its_stable_form(principal: Any) -> None:
    data = encode_principal(principal)
    assert decode_principal(data) == principal
    assert hash(decode_principal(data)) == hash(principal)


def test_the_shared_principal_comes_back_as_itself() -> None:
    assert decode_principal(encode_principal(SHARED_PRINCIPAL)) is SHARED_PRINCIPAL


@pytest.mark.parametrize("principal", [True, 1.5, frozenset({"a"}), ("a", 1.5), b"x"])
def test_other_principals_cannot_own_durable_tasks(principal: Any) -> None:
    with pytest.raises(UnpersistablePrincipal, match="str, int or tuples"):
        encode_principal(principal)


def test_an_unknown_encoded_principal_is_refused() -> None:
    with pytest.raises(ValueError, match="not an encoded principal"):
        decode_principal(1.5)


# -- records --------------------------------------------------------------------------


def test_a_snapshot_reads_back_as_the_same_task() -> None:
    message = Message(payload={"q": 1}, headers=Headers(tenant="acme"))
    data = snapshot(
        task_id="t1",
        context_id="c1",
        trace_id=message.trace_id,
        principal=("acme", "alice"),
        state="input-required",
        updated=12.5,
        status_message={"role": "agent", "parts": [{"text": "?"}]},
        artifacts=[{"name": "stream", "parts": [{"text": "ab"}]}],
        history=[{"role": "user"}],
        metadata={"k": "v"},
        resume_token="tok",
        message=message,
    )
    task = StoredTask.from_json(data)
    assert task.principal == ("acme", "alice")
    assert task.message == message
    assert (task.state, task.updated, task.resume_token) == ("input-required", 12.5, "tok")
    assert task.artifacts == [{"name": "stream", "parts": [{"text": "ab"}]}]


def test_a_record_of_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown A2A task record format"):
        StoredTask.from_json({"format": 99})
