"""The SQLite connection worker with ``inline=True``: writes commit on the caller's loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from penguiflow.errors import StateStoreError
from penguiflow.stores import _worker
from penguiflow.stores._worker import ConnectionWorker, WriteCounters


class _Boom(StateStoreError):
    pass


def _connect(path: Path, timeout: float = 5.0) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, timeout=timeout, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE IF NOT EXISTS t (v INTEGER, blob TEXT)")
        return conn

    return connect


def _inline(path: Path, counters: WriteCounters | None = None) -> ConnectionWorker:
    return ConnectionWorker(
        _connect(path), lambda e: _Boom(str(e)), name="inline", counters=counters, inline=True
    )


@pytest.fixture
async def worker(tmp_path: Path) -> AsyncIterator[ConnectionWorker]:
    w = _inline(tmp_path / "w.db")
    try:
        async with asyncio.timeout(10):
            await w.call(_values)  # opened on the thread: inline from now on
        yield w
    finally:
        await w.stop()


def _insert(value: int, threads: list[int] | None = None) -> Callable[[sqlite3.Connection], int]:
    def fn(conn: sqlite3.Connection) -> int:
        if threads is not None:
            threads.append(threading.get_ident())
        conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
        return value

    return fn


def _values(conn: sqlite3.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT v FROM t ORDER BY rowid")]


async def _turns(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_writes_commit_on_the_calling_loop_thread(worker: ConnectionWorker) -> None:
    threads: list[int] = []
    async with asyncio.timeout(10):
        assert await worker.call(_insert(1, threads), write=True) == 1
    assert threads == [threading.get_ident()]


async def test_the_writes_of_one_turn_share_one_inline_transaction(tmp_path: Path) -> None:
    counters = WriteCounters()
    w = _inline(tmp_path / "turn.db", counters)
    try:
        async with asyncio.timeout(10):
            await w.call(_values)
            before = counters.commits
            got = await asyncio.gather(*(w.call(_insert(n), write=True) for n in range(10)))
        assert got == list(range(10))
        assert counters.commits - before == 1
    finally:
        await w.stop()


async def test_the_first_write_opens_the_file_on_the_thread(tmp_path: Path) -> None:
    w = _inline(tmp_path / "first.db")
    threads: list[int] = []
    try:
        async with asyncio.timeout(10):
            await w.call(_insert(1, threads), write=True)
            await w.call(_insert(2, threads), write=True)
        assert threads[0] != threading.get_ident()  # schema, WAL switch: off the loop
        assert threads[1] == threading.get_ident()
    finally:
        await w.stop()


async def test_a_write_that_finds_the_file_locked_waits_on_the_thread(
    worker: ConnectionWorker, tmp_path: Path
) -> None:
    holder = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    threads: list[int] = []
    try:
        write = asyncio.ensure_future(worker.call(_insert(7, threads), write=True))
        await _turns(3)  # the flush tried inline (never waiting) and handed it over
        assert not write.done()
        holder.execute("ROLLBACK")  # the thread's busy wait now gets the lock
        async with asyncio.timeout(10):
            assert await write == 7
        assert threads == [worker._thread.ident]  # noqa: SLF001 - which thread ran it
    finally:
        holder.close()


async def test_writes_after_a_handed_over_one_keep_their_order(
    worker: ConnectionWorker, tmp_path: Path
) -> None:
    holder = sqlite3.connect(tmp_path / "w.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        first = asyncio.ensure_future(worker.call(_insert(1), write=True))
        await _turns(3)  # handed to the thread, waiting for the lock
        second = asyncio.ensure_future(worker.call(_insert(2), write=True))
        await _turns(3)  # must not overtake the first inline
        holder.execute("ROLLBACK")
        async with asyncio.timeout(10):
            assert await asyncio.gather(first, second) == [1, 2]
            assert await worker.call(_values) == [1, 2]
    finally:
        holder.close()


async def test_a_read_between_writes_sees_exactly_the_writes_before_it(
    worker: ConnectionWorker,
) -> None:
    async with asyncio.timeout(10):
        got = await asyncio.gather(
            worker.call(_insert(1), write=True),
            worker.call(_values),
            worker.call(_insert(2), write=True),
            worker.call(_values),
        )
    assert got == [1, [1], 2, [1, 2]]


async def test_a_failing_write_in_an_inline_batch_fails_alone(worker: ConnectionWorker) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO t (v) VALUES (99)")
        raise ValueError("bad row")

    async with asyncio.timeout(10):
        first, failed, last = await asyncio.gather(
            worker.call(_insert(1), write=True),
            worker.call(broken, write=True),
            worker.call(_insert(2), write=True),
            return_exceptions=True,
        )
        assert (first, last) == (1, 2)
        assert isinstance(failed, ValueError)
        assert await worker.call(_values) == [1, 2]  # the broken call's row is undone


async def test_a_lone_failing_inline_write_gets_its_error(worker: ConnectionWorker) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO nowhere (v) VALUES (1)")

    async with asyncio.timeout(10):
        with pytest.raises(_Boom, match="no such table"):
            await worker.call(broken, write=True)


async def test_checkpoints_copy_the_wal_into_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_worker, "CHECKPOINT_EVERY", 4)
    path = tmp_path / "ckpt.db"
    w = _inline(path)
    try:
        async with asyncio.timeout(10):
            await w.call(_values)
            size = path.stat().st_size
            for n in range(8):  # separate turns: a commit each

                def big(conn: sqlite3.Connection, n: int = n) -> None:
                    conn.execute("INSERT INTO t (v, blob) VALUES (?, ?)", (n, "x" * 20_000))

                await w.call(big, write=True)
            await w.call(_values)  # served after the checkpoint the commits asked for
        # Inline commits never checkpoint (wal_autocheckpoint=0): only the thread's
        # checkpoint moved the pages out of the WAL into the database file.
        assert path.stat().st_size > size + 100_000
    finally:
        await w.stop()


async def test_a_call_after_stop_fails_instead_of_waiting(tmp_path: Path) -> None:
    w = _inline(tmp_path / "stopped.db")
    async with asyncio.timeout(10):
        await w.call(_insert(1), write=True)
        await w.stop()
        with pytest.raises(_Boom, match="closed"):
            await w.call(_insert(2), write=True)


async def test_an_in_memory_database_works_inline(tmp_path: Path) -> None:
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        conn.execute("CREATE TABLE t (v INTEGER, blob TEXT)")
        return conn

    w = ConnectionWorker(connect, lambda e: _Boom(str(e)), name="memory", inline=True)
    try:
        async with asyncio.timeout(10):
            for n in range(3):
                await w.call(_insert(n), write=True)
            assert await w.call(_values) == [0, 1, 2]
    finally:
        await w.stop()


def test_loops_in_several_threads_share_one_worker(tmp_path: Path) -> None:
    w = _inline(tmp_path / "threads.db")
    per_loop = 200

    async def writer(base: int) -> list[int]:
        async with asyncio.timeout(30):
            done = []
            for n in range(per_loop):  # each call waits: one loop's calls stay in order
                done.append(await w.call(_insert(base + n), write=True))
            return done

    results: dict[int, list[int]] = {}

    def run(base: int) -> None:
        results[base] = asyncio.run(writer(base))

    threads = [threading.Thread(target=run, args=(base,)) for base in (0, 10_000, 20_000)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    async def check() -> list[int]:
        async with asyncio.timeout(10):
            values = await w.call(_values)
            await w.stop()
            return values

    values = asyncio.run(check())
    assert sorted(results) == [0, 10_000, 20_000]
    for base, done in results.items():
        assert done == [base + n for n in range(per_loop)]
        assert [v for v in values if base <= v < base + per_loop] == done  # committed in order
    assert len(values) == 3 * per_loop
