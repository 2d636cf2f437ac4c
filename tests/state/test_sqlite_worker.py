"""The SQLite store's connection thread: FIFO calls and group commit of queued writes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from penguiflow.errors import StateStoreError
from penguiflow.stores._worker import MAX_BATCH, ConnectionWorker, WriteCounters


class _Boom(StateStoreError):
    pass


def _connect(path: Path) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, timeout=0)
        conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER)")
        return conn

    return connect


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[ConnectionWorker]:
    w = ConnectionWorker(_connect(tmp_path / "w.db"), lambda e: _Boom(str(e)), name="test")
    try:
        yield w
    finally:
        await w.stop()


def _insert(value: int, seen: list[bool] | None = None) -> Callable[[sqlite3.Connection], int]:
    def fn(conn: sqlite3.Connection) -> int:
        if seen is not None:
            seen.append(conn.in_transaction)
        conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
        return value

    return fn


def _values(conn: sqlite3.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT v FROM t ORDER BY rowid")]


async def _park(worker: ConnectionWorker) -> tuple[threading.Event, asyncio.Future[Any]]:
    """Occupy the worker thread until the returned event is set."""
    entered, release = threading.Event(), threading.Event()

    def hold(conn: sqlite3.Connection) -> None:
        entered.set()
        release.wait(10)

    parked = asyncio.ensure_future(worker.call(hold))
    await asyncio.to_thread(entered.wait, 10)
    return release, parked


async def test_writes_queued_behind_a_busy_thread_commit_together(
    worker: ConnectionWorker,
) -> None:
    release, parked = await _park(worker)
    seen: list[bool] = []
    writes = [asyncio.ensure_future(worker.call(_insert(n, seen), write=True)) for n in range(5)]
    read = asyncio.ensure_future(worker.call(_values))
    await asyncio.sleep(0)  # every call is queued behind the parked one
    release.set()
    async with asyncio.timeout(5):
        await parked
        assert await asyncio.gather(*writes) == [0, 1, 2, 3, 4]
        assert await read == [0, 1, 2, 3, 4]  # the read after the batch sees it all
    assert seen == [True] * 5  # all inside one transaction


async def test_a_failing_write_fails_alone(worker: ConnectionWorker) -> None:
    release, parked = await _park(worker)

    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (v) VALUES (99)")
        raise ValueError("bad row")

    calls = [
        asyncio.ensure_future(worker.call(_insert(1), write=True)),
        asyncio.ensure_future(worker.call(broken, write=True)),
        asyncio.ensure_future(worker.call(_insert(2), write=True)),
    ]
    await asyncio.sleep(0)
    release.set()
    async with asyncio.timeout(5):
        await parked
        first, failed, last = await asyncio.gather(*calls, return_exceptions=True)
        assert (first, last) == (1, 2)
        assert isinstance(failed, ValueError)
        # The batch was rolled back, then each call ran alone in its own
        # transaction: the broken call's own insert is undone with it.
        assert await worker.call(_values) == [1, 2]


async def test_a_locked_database_fails_the_whole_batch(
    worker: ConnectionWorker, tmp_path: Path
) -> None:
    await worker.call(_values)  # connected, table created
    holder = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        release, parked = await _park(worker)
        calls = [asyncio.ensure_future(worker.call(_insert(n), write=True)) for n in range(3)]
        await asyncio.sleep(0)
        release.set()
        async with asyncio.timeout(5):
            await parked
            outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert all(isinstance(o, _Boom) for o in outcomes)
        assert all(isinstance(o.__cause__, sqlite3.OperationalError) for o in outcomes)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_batches_are_capped(tmp_path: Path) -> None:
    counters = WriteCounters()
    worker = ConnectionWorker(
        _connect(tmp_path / "w.db"), lambda e: _Boom(str(e)), name="test", counters=counters
    )
    try:
        await _fill_past_one_batch(worker, counters)
    finally:
        await worker.stop()


async def _fill_past_one_batch(worker: ConnectionWorker, counters: WriteCounters) -> None:
    release, parked = await _park(worker)
    seen: list[bool] = []
    writes = [
        asyncio.ensure_future(worker.call(_insert(n, seen), write=True))
        for n in range(MAX_BATCH + 1)
    ]
    await asyncio.sleep(0)
    release.set()
    async with asyncio.timeout(10):
        await parked
        await asyncio.gather(*writes)
        assert len(await worker.call(_values)) == MAX_BATCH + 1
    # One full batch in a transaction, then the one write left over in its own.
    assert seen == [True] * (MAX_BATCH + 1)
    assert (counters.commits, counters.calls) == (2, MAX_BATCH + 1)


async def test_failed_connect_reaches_every_caller_and_is_retried(tmp_path: Path) -> None:
    attempts: list[int] = []

    def connect() -> sqlite3.Connection:
        attempts.append(1)
        if len(attempts) == 1:
            raise sqlite3.OperationalError("unable to open database file")
        return _connect(tmp_path / "late.db")()

    w = ConnectionWorker(connect, lambda e: _Boom(str(e)), name="test")
    try:
        with pytest.raises(_Boom, match="unable to open"):
            await w.call(_values)
        assert await w.call(_values) == []
    finally:
        await w.stop()


async def test_stop_without_any_call_is_clean(tmp_path: Path) -> None:
    w = ConnectionWorker(_connect(tmp_path / "never.db"), lambda e: _Boom(str(e)), name="x")
    await w.stop()
    assert not (tmp_path / "never.db").exists()


async def test_a_lone_write_is_one_transaction(worker: ConnectionWorker) -> None:
    def two_rows_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (v) VALUES (1)")
        conn.execute("INSERT INTO t (v) VALUES (2)")
        raise ValueError("half done")

    with pytest.raises(ValueError, match="half done"):
        await worker.call(two_rows_then_fail, write=True)
    assert await worker.call(_values) == []


def _connect_with_deferred_check(path: Path) -> Callable[[], sqlite3.Connection]:
    """A table whose foreign key is checked only at COMMIT, to make a commit fail."""

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, timeout=0)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("CREATE TABLE IF NOT EXISTS parent (id INTEGER PRIMARY KEY)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS t (v INTEGER REFERENCES parent (id) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )
        conn.execute("INSERT OR IGNORE INTO parent (id) VALUES (1), (2)")
        return conn

    return connect


async def test_a_failed_commit_fails_its_own_calls_and_applies_nothing_of_them(
    tmp_path: Path,
) -> None:
    counters = WriteCounters()
    worker = ConnectionWorker(
        _connect_with_deferred_check(tmp_path / "fk.db"),
        lambda e: _Boom(str(e)),
        name="test",
        counters=counters,
    )
    try:
        release, parked = await _park(worker)
        # 99 has no parent row: every statement succeeds, and the COMMIT fails.
        calls = [asyncio.ensure_future(worker.call(_insert(v), write=True)) for v in (1, 99, 2)]
        await asyncio.sleep(0)
        release.set()
        async with asyncio.timeout(5):
            await parked
            first, failed, last = await asyncio.gather(*calls, return_exceptions=True)
            lone = await asyncio.gather(
                worker.call(_insert(98), write=True), return_exceptions=True
            )
        assert (first, last) == (1, 2)
        assert isinstance(failed, _Boom)
        assert "FOREIGN KEY" in str(failed)
        assert isinstance(lone[0], _Boom)
        assert await worker.call(_values) == [1, 2]
        # The batch's commit failed, then 1 and 2 committed alone; 99 and 98 never did.
        assert (counters.commits, counters.calls) == (2, 2)
    finally:
        await worker.stop()


async def test_the_writes_of_one_loop_turn_share_a_transaction(tmp_path: Path) -> None:
    counters = WriteCounters()
    w = ConnectionWorker(
        _connect(tmp_path / "turn.db"), lambda e: _Boom(str(e)), name="turn", counters=counters
    )
    try:
        await w.call(_values)  # connected: the table exists
        async with asyncio.timeout(5):
            # Made in one turn, handed to the idle thread together: one batch.
            assert await asyncio.gather(
                *(w.call(_insert(n), write=True) for n in range(10))
            ) == list(range(10))
        assert (counters.calls, counters.commits) == (10, 1)
    finally:
        await w.stop()


async def test_stop_serves_the_calls_of_this_turn_first(tmp_path: Path) -> None:
    w = ConnectionWorker(_connect(tmp_path / "stop.db"), lambda e: _Boom(str(e)), name="stop")
    writes = [asyncio.ensure_future(w.call(_insert(n), write=True)) for n in range(3)]
    await asyncio.sleep(0)  # each call is made; none is handed to the thread yet
    async with asyncio.timeout(5):
        await w.stop()
        assert [write.done() for write in writes] == [True] * 3
        assert await asyncio.gather(*writes) == [0, 1, 2]
