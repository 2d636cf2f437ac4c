"""SQLiteStateStore: the embedded default store, one file, WAL, across restarts."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import BaseModel

from penguiflow.errors import (
    PenguiFlowError,
    StateStoreCorrupt,
    StateStoreError,
    StateStoreLocked,
)
from penguiflow.state import RemoteBinding, StoredEvent
from penguiflow.stores import SQLiteStateStore
from penguiflow.stores.sqlite import SCHEMA_VERSION, _translate


def _event(trace_id: str | None, n: int = 0, **payload: object) -> StoredEvent:
    return StoredEvent(trace_id, 100.0 + n, "node_success", "a", "id-a", {"n": n, **payload})


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "state.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStateStore]:
    s = SQLiteStateStore(db_path)
    try:
        yield s
    finally:
        await s.close()


def test_construction_does_not_touch_the_file(db_path: Path) -> None:
    SQLiteStateStore(db_path)
    assert not db_path.exists()


async def test_first_use_creates_folder_file_and_schema(
    store: SQLiteStateStore, db_path: Path
) -> None:
    await store.save_event(_event("t"))
    with sqlite3.connect(db_path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert {"penguiflow_events", "penguiflow_remote_bindings"} <= tables
    assert version == SCHEMA_VERSION


async def test_database_uses_wal_mode(store: SQLiteStateStore, db_path: Path) -> None:
    await store.load_history("t")
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_path_and_repr_name_the_file(store: SQLiteStateStore, db_path: Path) -> None:
    assert store.path == str(db_path)
    assert repr(store) == f"SQLiteStateStore({str(db_path)!r})"


async def test_store_reopens_after_close(store: SQLiteStateStore) -> None:
    await store.save_event(_event("t", 1))
    await store.close()
    await store.save_event(_event("t", 2))
    assert [e.payload["n"] for e in await store.load_history("t")] == [1, 2]


async def test_close_twice_is_harmless(store: SQLiteStateStore) -> None:
    await store.close()
    await store.close()
    assert await store.load_history("t") == []


def _store_threads(path: Path) -> list[threading.Thread]:
    # This file's store threads only: stores of earlier tests (left open on
    # purpose, e.g. a simulated crash) may still have theirs.
    return [t for t in threading.enumerate() if t.name == f"penguiflow-sqlite:{path}"]


async def test_async_with_closes_the_connection_and_its_thread(db_path: Path) -> None:
    async with SQLiteStateStore(db_path) as s:
        await s.save_event(_event("t"))
        assert len(_store_threads(db_path)) == 1
    await asyncio.to_thread(lambda: [t.join(5) for t in _store_threads(db_path)])
    assert _store_threads(db_path) == []


async def test_close_waits_for_calls_already_made(store: SQLiteStateStore) -> None:
    saves = [asyncio.ensure_future(store.save_event(_event("t", n))) for n in range(20)]
    await asyncio.sleep(0)  # the saves are submitted to the store's thread
    await store.close()
    async with asyncio.timeout(5):
        await asyncio.gather(*saves)
    assert len(await store.load_history("t")) == 20


async def test_a_save_whose_caller_was_cancelled_still_lands(store: SQLiteStateStore) -> None:
    save = asyncio.ensure_future(store.save_event(_event("t", 1)))
    await asyncio.sleep(0)  # submitted to the store's thread
    save.cancel()
    await store.close()
    assert [e.payload["n"] for e in await store.load_history("t")] == [1]


async def test_history_survives_a_process_restart(db_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio
        from penguiflow.state import RemoteBinding, StoredEvent
        from penguiflow.stores import SQLiteStateStore

        async def main():
            store = SQLiteStateStore({str(db_path)!r})
            await store.save_event(StoredEvent("T", 1.0, "node_start", "a", "i", {{"x": 1}}))
            await store.save_remote_binding(RemoteBinding("T", "c", "k", "http://agent"))
            await store.close()

        asyncio.run(main())
        """
    )
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", script], check=True, timeout=60)
    async with SQLiteStateStore(db_path, create=False) as s:
        assert await s.load_history("T") == [
            StoredEvent("T", 1.0, "node_start", "a", "i", {"x": 1})
        ]
        assert await s.load_remote_bindings("T") == [RemoteBinding("T", "c", "k", "http://agent")]


async def test_two_stores_on_one_file_write_concurrently(db_path: Path) -> None:
    # What is tested is that both writers' events land; the lock wait itself is
    # tested elsewhere.
    first = SQLiteStateStore(db_path, busy_timeout=60.0)
    second = SQLiteStateStore(db_path, busy_timeout=60.0)
    try:
        await asyncio.gather(
            *(first.save_event(_event("t", n)) for n in range(0, 100, 2)),
            *(second.save_event(_event("t", n)) for n in range(1, 100, 2)),
        )
        history = await first.load_history("t")
    finally:
        await first.close()
        await second.close()
    assert sorted(e.payload["n"] for e in history) == list(range(100))


async def test_stores_opening_one_new_file_at_once_all_open(tmp_path: Path) -> None:
    # The switch of a new file to WAL fails at once with "database is locked"
    # while another connection opens it (SQLite's busy handler does not cover
    # it); this once failed CI. Many rounds of four stores opening one new file.
    for round_ in range(40):
        path = tmp_path / f"r{round_}.db"
        stores = [SQLiteStateStore(path) for _ in range(4)]
        try:
            await asyncio.gather(*(s.save_event(_event("t", n)) for n, s in enumerate(stores)))
            history = await stores[0].load_history("t")
        finally:
            for s in stores:
                await s.close()
        assert sorted(e.payload["n"] for e in history) == [0, 1, 2, 3]


async def test_writers_in_other_threads_and_loops_share_one_store(
    store: SQLiteStateStore,
) -> None:
    def writer(offset: int) -> None:
        async def write() -> None:
            for n in range(offset, offset + 20):
                await store.save_event(_event("t", n))

        asyncio.run(write())

    threads = [threading.Thread(target=writer, args=(i * 100,)) for i in range(3)]
    for t in threads:
        t.start()
    await asyncio.to_thread(lambda: [t.join(30) for t in threads])
    assert len(await store.load_history("t")) == 60


async def test_traces_are_kept_apart(store: SQLiteStateStore) -> None:
    await store.save_event(_event("a", 1))
    await store.save_event(_event("b", 2))
    await store.save_event(_event(None, 3))
    assert [e.payload["n"] for e in await store.load_history("a")] == [1]
    assert [e.payload["n"] for e in await store.load_history("b")] == [2]


async def test_non_json_payload_values_are_stored_as_data_or_text(
    store: SQLiteStateStore,
) -> None:
    class Model(BaseModel):
        x: int

    await store.save_event(
        _event("t", obj=ValueError("boom"), model=Model(x=1), raw=b"hi", tags=("a",))
    )
    (loaded,) = await store.load_history("t")
    assert loaded.payload["model"] == {"x": 1}
    assert loaded.payload["raw"] == "hi"
    assert loaded.payload["tags"] == ["a"]
    assert loaded.payload["obj"] == "boom"


async def test_duplicate_bindings_are_stored_once(store: SQLiteStateStore) -> None:
    binding = RemoteBinding("t", "c", "k", "u")
    await store.save_remote_binding(binding)
    await store.save_remote_binding(RemoteBinding("t", "c", "k", "u"))
    assert await store.load_remote_bindings("t") == [binding]


async def test_planner_state_last_save_wins(store: SQLiteStateStore) -> None:
    await store.save_planner_state("tok", {"v": 1})
    await store.save_planner_state("tok", {"v": 2})
    assert await store.load_planner_state("tok") == {"v": 2}
    assert await store.load_planner_state("missing") is None


# --- errors ----------------------------------------------------------------------------


async def test_missing_file_without_create_is_a_state_store_error(tmp_path: Path) -> None:
    missing = tmp_path / "absent.db"
    s = SQLiteStateStore(missing, create=False)
    with pytest.raises(StateStoreError, match="does not exist") as info:
        await s.load_history("t")
    assert info.value.path == str(missing)
    assert not missing.exists()


async def test_garbage_file_is_reported_corrupt(tmp_path: Path) -> None:
    bad = tmp_path / "notes.db"
    bad.write_text("this is not a database, just some notes\n" * 200)
    s = SQLiteStateStore(bad)
    with pytest.raises(StateStoreCorrupt, match="not a readable SQLite database") as info:
        await s.load_history("t")
    assert isinstance(info.value, PenguiFlowError)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    assert info.value.path == str(bad)


async def test_locked_file_is_reported_locked(db_path: Path) -> None:
    async with SQLiteStateStore(db_path) as first:
        await first.save_event(_event("t", 1))
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        s = SQLiteStateStore(db_path, busy_timeout=0)
        try:
            with pytest.raises(StateStoreLocked, match="locked by another writer"):
                await s.save_event(_event("t", 2))
        finally:
            await s.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_store_recovers_once_the_lock_is_released(db_path: Path) -> None:
    async with SQLiteStateStore(db_path, busy_timeout=0) as s:
        await s.save_event(_event("t", 1))
        holder = sqlite3.connect(db_path, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StateStoreLocked):
            await s.save_event(_event("t", 2))
        holder.execute("ROLLBACK")
        holder.close()
        await s.save_event(_event("t", 3))
        assert [e.payload["n"] for e in await s.load_history("t")] == [1, 3]


async def test_directory_path_cannot_be_opened(tmp_path: Path) -> None:
    s = SQLiteStateStore(tmp_path)
    with pytest.raises(StateStoreError, match="cannot open state store"):
        await s.load_history("t")


async def test_newer_schema_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    s = SQLiteStateStore(db_path)
    newer = f"schema version {SCHEMA_VERSION + 1}"
    with pytest.raises(StateStoreError, match=newer):
        await s.load_history("t")
    with pytest.raises(StateStoreError, match=newer):  # retried, refused again
        await s.save_event(_event("t"))
    await s.close()


def test_unclassified_driver_errors_become_state_store_errors() -> None:
    err = _translate(sqlite3.OperationalError("disk I/O error"), "x.db", 5.0)
    assert type(err) is StateStoreError
    assert str(err) == "state store 'x.db' failed: disk I/O error"


def _scribble_over_pages(path: Path) -> None:
    """Overwrite every page but the first two and the last: the header stays valid."""
    data = bytearray(path.read_bytes())
    page = 4096
    data[2 * page : len(data) - page] = b"\xa5" * (len(data) - 3 * page)
    path.write_bytes(bytes(data))
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def test_damaged_database_is_reported_corrupt(db_path: Path) -> None:
    async with SQLiteStateStore(db_path) as s:
        for n in range(300):
            await s.save_event(_event("t", n, filler="x" * 200))
    await asyncio.to_thread(_scribble_over_pages, db_path)
    async with SQLiteStateStore(db_path) as damaged:
        with pytest.raises(StateStoreCorrupt, match="malformed"):
            await damaged.load_history("t")


async def test_writers_in_two_processes_share_one_file(db_path: Path) -> None:
    script = textwrap.dedent(
        """
        import asyncio, sys
        from penguiflow.state import StoredEvent
        from penguiflow.stores import SQLiteStateStore

        async def main(path, offset):
            async with SQLiteStateStore(path) as store:
                for n in range(offset, offset + 200):
                    await store.save_event(StoredEvent("T", float(n), "k", None, None, {"n": n}))

        asyncio.run(main(sys.argv[1], int(sys.argv[2])))
        """
    )
    async with SQLiteStateStore(db_path) as s:
        await s.load_history("T")  # create the schema up front
        procs = [
            await asyncio.create_subprocess_exec(sys.executable, "-c", script, str(db_path), str(o))
            for o in (0, 1000)
        ]
        async with asyncio.timeout(60):
            codes = [await p.wait() for p in procs]
        assert codes == [0, 0]
        history = await s.load_history("T")
    assert sorted(e.payload["n"] for e in history) == [*range(200), *range(1000, 1200)]
