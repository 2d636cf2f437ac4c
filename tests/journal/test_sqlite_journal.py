"""The SQLite journal beyond the contract: schema migration, group commit, failures."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from penguiflow.errors import JournalConflict, JournalError, StateStoreError, StateStoreLocked
from penguiflow.journal import Input, journal_of
from penguiflow.state import StoredEvent
from penguiflow.stores import SQLiteStateStore
from penguiflow.stores.sqlite import SCHEMA_VERSION
from penguiflow.stores.sqlite_journal import JournalStatistics, SQLiteJournal

V1_FILE = Path(__file__).with_name("data") / "schema_v1.db"
JOURNAL_TABLES = {
    "penguiflow_journal_traces",
    "penguiflow_journal_keys",
    "penguiflow_journal_entries",
    "penguiflow_journal_state",
    "penguiflow_journal_rookery",
    "penguiflow_journal_interrupts",
}


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _version(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "journal.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStateStore]:
    s = SQLiteStateStore(db_path)
    try:
        yield s
    finally:
        await s.close()


# --- schema -------------------------------------------------------------------------


def test_the_schema_version_is_3() -> None:
    assert SCHEMA_VERSION == 3


async def test_a_new_file_gets_the_journal_tables(store: SQLiteStateStore, db_path: Path) -> None:
    await store.journal.load()
    assert _tables(db_path) >= JOURNAL_TABLES
    assert _version(db_path) == 3


async def test_a_version_1_file_is_migrated_and_keeps_its_data(tmp_path: Path) -> None:
    """The v1 fixture was written by the store as it was before the journal (schema 1)."""
    path = tmp_path / "old.db"
    shutil.copy(V1_FILE, path)
    assert _version(path) == 1
    assert not JOURNAL_TABLES & _tables(path)
    async with SQLiteStateStore(path, create=False) as store:
        history = await store.load_history("v1-trace")
        assert [e.payload["attempt"] for e in history] == [0, 1, 2]
        assert [b.task_id for b in await store.load_remote_bindings("v1-trace")] == ["task"]
        assert await store.load_planner_state("v1-token") == {"reason": "await_input"}
        await store.save_event(StoredEvent("v1-trace", 9.0, "node_start", "a", "id-a", {}))
        (accepted,) = await store.journal.accept([Input("in", 1, trace_id="v1-new")])
        assert accepted.entry_id == 1
    assert _version(path) == 3
    assert _tables(path) >= JOURNAL_TABLES
    async with SQLiteStateStore(path) as reopened:
        assert len(await reopened.load_history("v1-trace")) == 4
        assert await reopened.journal.unfinished_traces() == ["v1-new"]


async def test_a_failed_migration_leaves_the_file_at_version_1(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copy(V1_FILE, path)
    with sqlite3.connect(path) as conn:  # a table in the way of the journal's index
        conn.execute("CREATE TABLE penguiflow_journal_keys (other TEXT)")
    store = SQLiteStateStore(path)
    with pytest.raises(StateStoreError, match="no such column: trace_id"):
        await store.load_history("v1-trace")
    await store.close()
    assert _version(path) == 1
    assert "penguiflow_journal_entries" not in _tables(path)


async def test_journal_uses_wal_with_synchronous_normal(store: SQLiteStateStore) -> None:
    def pragmas(conn: sqlite3.Connection) -> tuple[str, int]:
        return (
            conn.execute("PRAGMA journal_mode").fetchone()[0],
            conn.execute("PRAGMA synchronous").fetchone()[0],
        )

    assert await store._run(pragmas) == ("wal", 1)  # 1 = NORMAL


# --- the journal of a store -----------------------------------------------------------


async def test_journal_of_a_sqlite_store_is_its_journal(store: SQLiteStateStore) -> None:
    assert isinstance(store.journal, SQLiteJournal)
    assert store.journal is store.journal
    assert journal_of(store) is store.journal
    assert repr(store.journal) == f"SQLiteJournal({store.path!r})"


def test_journal_of_a_store_without_one_names_its_type() -> None:
    from penguiflow.testkit import InMemoryStateStore

    with pytest.raises(TypeError, match=r"penguiflow\.testkit\._stores\.InMemoryStateStore"):
        journal_of(InMemoryStateStore())
    with pytest.raises(TypeError, match="keeps no journal"):
        journal_of(object())


async def test_the_journal_reopens_with_a_closed_store(store: SQLiteStateStore) -> None:
    await store.journal.accept([Input("in", "x", trace_id="t-close")])
    await store.close()
    assert [e.decode() for e in (await store.journal.load()).entries] == ["x"]


async def test_two_stores_on_one_file_cannot_both_consume_an_entry(db_path: Path) -> None:
    """Two processes recovering one journal: the second consumer of an entry is refused."""
    async with SQLiteStateStore(db_path) as first, SQLiteStateStore(db_path) as second:
        (accepted,) = await first.journal.accept([Input("in", 1, trace_id="t-shared")])
        assert accepted.entry_id is not None
        await first.journal.commit_step("t-shared", consumed=accepted.entry_id)
        with pytest.raises(JournalConflict):
            await second.journal.commit_step(
                "t-shared", consumed=accepted.entry_id, produced=[("a->b", 2)]
            )
        assert (await second.journal.load()).entries == ()


# --- group commit ---------------------------------------------------------------------


async def test_concurrent_steps_share_commits(store: SQLiteStateStore, db_path: Path) -> None:
    journal = store.journal
    accepted = await journal.accept([Input("in", n, trace_id=f"t-{n}") for n in range(50)])
    before = journal.statistics()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the writer waits: every step queues behind it
    try:
        steps = [
            asyncio.ensure_future(
                journal.commit_step(a.trace_id, consumed=a.entry_id, produced=[("a->b", n)])
            )
            for n, a in enumerate(accepted)
        ]
        await asyncio.sleep(0)  # each step has encoded its call and queued it
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    async with asyncio.timeout(10):
        results = await asyncio.gather(*steps)
    assert all(len(r.entry_ids) == 1 for r in results)
    after = journal.statistics()
    assert after.writes - before.writes == 50
    # The first step may have been taken alone before the others queued; the rest
    # wait behind it and commit as one transaction.
    assert after.commits - before.commits <= 2


async def test_statistics_count_every_write_of_the_store(store: SQLiteStateStore) -> None:
    assert store.journal.statistics() == JournalStatistics(writes=0, commits=0)
    await store.save_event(StoredEvent("t", 1.0, "node_start", "a", "id", {}))
    await store.journal.accept([Input("in", 1)])
    await store.journal.load()  # reads are not counted
    assert store.journal.statistics() == JournalStatistics(writes=2, commits=2)


async def test_a_locked_file_fails_every_caller_of_the_batch(db_path: Path) -> None:
    store = SQLiteStateStore(db_path, busy_timeout=0.05)
    journal = store.journal
    await journal.load()  # file and schema exist
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        async with asyncio.timeout(10):
            outcomes = await asyncio.gather(
                *(journal.accept([Input("in", n, idempotency_key=f"k{n}")]) for n in range(5)),
                return_exceptions=True,
            )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert all(isinstance(o, JournalError) for o in outcomes), outcomes
    assert all(isinstance(o.__cause__, StateStoreLocked) for o in outcomes)  # type: ignore[union-attr]
    assert "nothing of it was stored" in str(outcomes[0])
    assert (await journal.load()).entries == ()
    (retry,) = await journal.accept([Input("in", 0, idempotency_key="k0")])
    assert not retry.duplicate  # the failed call kept no key
    await store.close()


async def test_an_unreadable_file_fails_reads_with_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database\n" * 300)
    store = SQLiteStateStore(path)
    with pytest.raises(JournalError, match="journal read") as caught:
        await store.journal.load()
    assert isinstance(caught.value, StateStoreError)
    assert caught.value.path == str(path)
    await store.close()
