"""One SQLite connection, and the thread that serves what cannot run on the caller's loop.

Writes run where they are cheapest. The calls a loop makes in one turn are
collected (the first schedules a flush with ``call_soon``, the others join it);
the flush runs consecutive writes in one transaction on the caller's loop
thread (group commit) and settles their futures at once. A commit in WAL mode
with ``synchronous=NORMAL`` writes to the WAL without an fsync, so it costs
tens of microseconds, less than handing the batch to a thread and back (two
thread switches, and both threads want the GIL).

The thread takes what must not block a loop, in submission order: the first
open of the file (schema, migration, the switch to WAL, which may wait for
another process), reads (``write=False``, which may scan), writes that find the
file locked by another connection (inline writes never wait: busy timeout 0;
the thread waits up to the store's ``busy_timeout``), WAL checkpoints (they
fsync), and ``stop()``. Once any call is with the thread, every later call
goes there too until it has run them, so the calls of one caller keep their
order whichever path they take.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

__all__ = ["CHECKPOINT_EVERY", "MAX_BATCH", "ConnectionWorker", "WriteCounters"]

_T = TypeVar("_T")

MAX_BATCH = 256
"""Most consecutive writes committed in one transaction."""

CHECKPOINT_EVERY = 256
"""Commits between two WAL checkpoints (run by the thread: a checkpoint fsyncs)."""


@dataclass(slots=True)
class WriteCounters:
    """Write calls served and transactions committed; owned by the store, so they
    outlive one worker (a closed store reopens with a new one). Written under the
    worker's connection lock; readers see a recent value."""

    calls: int = 0
    commits: int = 0


class _Call(NamedTuple):
    fn: Callable[[sqlite3.Connection], Any] | None  # None: close and stop
    write: bool
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


class _Outcome(NamedTuple):
    result: Any
    error: BaseException | None


class _Busy(Exception):
    """An inline write found the file locked by another connection: the thread retries."""


def _settle(future: asyncio.Future[Any], outcome: _Outcome) -> None:
    # Runs on the caller's loop. A caller that was cancelled has stopped listening.
    if future.done():
        return
    if outcome.error is not None:
        future.set_exception(outcome.error)
    else:
        future.set_result(outcome.result)


def _settle_all(replies: list[tuple[asyncio.Future[Any], _Outcome]]) -> None:
    for future, outcome in replies:
        _settle(future, outcome)


def _busy(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.OperationalError) or code is None:
        return False
    return (code & 0xFF) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _checkpoint(conn: sqlite3.Connection) -> None:
    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


class ConnectionWorker:
    """Runs calls ``fn(connection)`` on one connection, one at a time, in submission order.

    The connection is opened by ``connect`` on the thread at the first call (and
    again after a failed open); ``errors`` maps driver errors to the caller's
    exception type. With ``inline=True`` (``connect`` must then open the connection
    with ``check_same_thread=False``) writes run on the caller's loop as the
    module docstring says; otherwise every call runs on the thread. The thread
    waits for another connection's write lock as long as the connection's own
    busy timeout says, a loop never. Writes that queue up together are committed
    in one transaction (group commit); each caller still gets its own result or
    error.
    ``stop()`` runs after every call submitted before it, so closing never races
    an in-flight write. Callers on any event loop (or several) may share one
    worker; the calls of one loop keep their order.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        errors: Callable[[sqlite3.Error], BaseException],
        name: str,
        counters: WriteCounters | None = None,
        *,
        inline: bool = False,
    ) -> None:
        self._connect = connect
        self._errors = errors
        self._counters = counters if counters is not None else WriteCounters()
        self._busy_ms = 0  # the connection's own busy timeout, kept for the thread
        self._allow_inline = inline
        # Whoever runs SQL on the connection holds _conn_lock: the thread, or a
        # loop flushing inline (which never waits for it: it hands over instead).
        self._conn_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._checkpointer: sqlite3.Connection | None = None  # the thread's only
        self._inline = False  # the connection is open and writes may run on the loop
        self._wal = False  # checkpoints are ours (inline commits never run one)
        self._since_checkpoint = 0  # commits since the last WAL checkpoint
        self._checkpoint_asked = False
        self._queue: queue.SimpleQueue[list[_Call]] = queue.SimpleQueue()
        # Calls made this turn of each loop, not run yet (see _flush); calls with
        # the thread and not run yet (while > 0, new calls join them there).
        self._lock = threading.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, list[_Call]] = {}
        self._handed = 0
        self._stopped = False
        # Daemon: a store nobody closed must not keep the interpreter alive; SQLite's
        # journal keeps the file consistent even if the process ends mid-write.
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    async def call(self, fn: Callable[[sqlite3.Connection], _T], *, write: bool = False) -> _T:
        """Run ``fn(connection)`` and return its result.

        ``write=True`` runs the call in a transaction, shared with the writes
        queued beside it (group commit); it must then not manage transactions
        itself, and must change nothing but the database (a failed neighbour
        makes it run again), and it may run on the calling loop's thread. A read
        (``write=False``) runs alone on the thread and may open its own read
        transaction for a consistent view.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_T] = loop.create_future()
        call = _Call(fn, write, loop, future)
        with self._lock:
            pending = self._pending.get(loop)
            if pending is None:
                self._pending[loop] = [call]
            else:
                pending.append(call)  # the flush of this turn is scheduled already
        if pending is None:
            loop.call_soon(self._flush, loop)
        return await future

    def _flush(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run the calls ``loop`` made this turn: writes inline if they can, else the thread."""
        with self._lock:
            calls = self._pending.pop(loop, None)
            if not calls:  # stop() handed them over already
                return
            if not self._inline or self._handed:
                self._hand(calls)
                return
        rest = self._run_inline(calls)
        if rest:
            with self._lock:
                self._hand(rest)

    def _hand(self, calls: list[_Call]) -> None:
        """Give ``calls`` to the thread, after what it has (caller holds ``_lock``)."""
        if self._stopped:  # a call raced stop() from another loop: never left waiting
            error = _Outcome(None, self._wrap(sqlite3.ProgrammingError("the connection is closed")))
            for call in calls:
                with contextlib.suppress(RuntimeError):
                    call.loop.call_soon_threadsafe(_settle, call.future, error)
            return
        self._handed += len(calls)
        self._queue.put(calls)

    def _run_inline(self, calls: list[_Call]) -> list[_Call]:
        """Commit the leading writes of ``calls`` here; return what the thread must run."""
        if not self._conn_lock.acquire(blocking=False):
            return calls  # the thread is on the connection (a read, a checkpoint)
        index = 0
        try:
            conn = self._conn
            if conn is None or not self._inline:
                return calls
            while index < len(calls):
                end = index
                while end < len(calls) and end - index < MAX_BATCH and calls[end].write:
                    end += 1
                if end == index:
                    break  # a read: it and everything after it go to the thread
                batch = calls[index:end]
                try:
                    outcomes = self._transaction(conn, batch, inline=True)
                except _Busy:
                    break
                for call, outcome in zip(batch, outcomes, strict=True):
                    _settle(call.future, outcome)
                index = end
        finally:
            self._conn_lock.release()
        if self._wal and self._since_checkpoint >= CHECKPOINT_EVERY and not self._checkpoint_asked:
            self._checkpoint_asked = True
            self._queue.put([])  # a checkpoint, on its own connection: writes go on
        return calls[index:]

    async def stop(self) -> None:
        """Close the connection after every call submitted so far; end the thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            for pending in self._pending.values():  # every call made so far goes first
                self._hand(pending)
            self._pending.clear()
            self._hand([_Call(None, False, loop, future)])
            self._stopped = True
        await future

    # --- the thread -----------------------------------------------------------------

    def _serve(self) -> None:
        backlog: collections.deque[_Call] = collections.deque()
        checkpoint = False
        while True:
            if not backlog:
                calls = self._queue.get()
                checkpoint = checkpoint or not calls
                backlog.extend(calls)
            while True:  # everything handed over meanwhile joins the backlog
                try:
                    calls = self._queue.get_nowait()
                except queue.Empty:
                    break
                checkpoint = checkpoint or not calls
                backlog.extend(calls)
            if checkpoint:
                checkpoint = False
                self._checkpoint()
            if not backlog:
                continue
            call = backlog.popleft()
            if call.fn is None:
                with self._conn_lock:
                    outcome = _Outcome(None, self._close())
                self._done(1)
                self._reply([call], [outcome])
                return
            batch = [call]
            # Consecutive writes share a transaction; a read or stop() is served
            # after them, in its turn: order is kept.
            while call.write and backlog and len(batch) < MAX_BATCH:
                queued = backlog[0]
                if queued.fn is None or not queued.write:
                    break
                batch.append(backlog.popleft())
            with self._conn_lock:
                outcomes = self._execute(batch)
            self._done(len(batch))
            self._reply(batch, outcomes)

    def _done(self, count: int) -> None:
        with self._lock:
            self._handed -= count

    def _reply(self, calls: list[_Call], outcomes: list[_Outcome]) -> None:
        # One hand-off per caller loop and batch, not per call: each wakes the loop
        # (a write to its self-pipe) and costs the GIL twice; callers are settled
        # in submission order.
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], _Outcome]]] = {}
        for call, outcome in zip(calls, outcomes, strict=True):
            by_loop.setdefault(call.loop, []).append((call.future, outcome))
        for loop, replies in by_loop.items():
            # A closed caller loop raises RuntimeError: nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_settle_all, replies)

    def _wrap(self, exc: BaseException) -> BaseException:
        if isinstance(exc, sqlite3.Error):
            error = self._errors(exc)
            error.__cause__ = exc
            return error
        return exc

    def _checkpoint(self) -> None:
        # Runs on the thread, on a connection of its own: a PASSIVE checkpoint copies
        # committed pages into the file (and fsyncs it) while writers go on.
        self._checkpoint_asked = False
        self._since_checkpoint = 0
        try:
            if self._checkpointer is None:
                self._checkpointer = self._connect()
            _checkpoint(self._checkpointer)
        except Exception:  # not fatal: the WAL grows, and the next commits ask again
            return

    def _close(self) -> BaseException | None:
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            with contextlib.suppress(sqlite3.Error):
                checkpointer.close()
        conn, self._conn = self._conn, None
        self._inline = False
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:
                return self._wrap(exc)
        return None

    def _one(self, conn: sqlite3.Connection, call: _Call) -> _Outcome:
        assert call.fn is not None
        try:
            return _Outcome(call.fn(conn), None)
        except BaseException as exc:  # handed to the caller, never lost in this thread
            return _Outcome(None, self._wrap(exc))

    def _transaction(
        self, conn: sqlite3.Connection, batch: list[_Call], *, inline: bool = False
    ) -> list[_Outcome]:
        """Run ``batch`` in one transaction: all of it is committed, or none of it.

        ``inline`` (on a caller's loop): raises ``_Busy`` instead of failing when
        the file is locked, or when a batch of several fails (the thread reruns
        it, each call alone); nothing of the batch is then committed.
        """
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # e.g. locked: every write of the batch fails alike
            if inline and _busy(exc):
                raise _Busy from exc
            return [_Outcome(None, self._wrap(exc))] * len(batch)
        results: list[Any] = []
        try:
            for call in batch:
                assert call.fn is not None
                results.append(call.fn(conn))
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if inline and (len(batch) > 1 or _busy(exc)):
                raise _Busy from exc
            if len(batch) == 1:
                return [_Outcome(None, self._wrap(exc))]
            # One call failed (or the commit did): the batch is undone, and each
            # call runs again alone, so every caller gets its own outcome and a
            # call never fails for a neighbour's fault.
            return [self._transaction(conn, [call])[0] for call in batch]
        self._counters.commits += 1
        self._counters.calls += len(batch)
        self._since_checkpoint += 1
        return [_Outcome(result, None) for result in results]

    def _open(self) -> sqlite3.Connection:
        conn = self._connect()
        if self._allow_inline:
            try:
                # Inline writes never wait for a lock (the thread does, see _execute);
                # checkpoints run on the thread, not in a loop's commit.
                self._busy_ms = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
                conn.execute("PRAGMA busy_timeout = 0")
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                self._wal = str(mode).lower() == "wal"  # ":memory:" has no WAL
                if self._wal:
                    conn.execute("PRAGMA wal_autocheckpoint = 0")
            except BaseException:
                conn.close()
                raise
            self._inline = True
        return conn

    def _execute(self, batch: list[_Call]) -> list[_Outcome]:
        # Runs on the thread, holding _conn_lock.
        try:
            if self._conn is None:
                self._conn = self._open()
        except BaseException as exc:
            return [_Outcome(None, self._wrap(exc))] * len(batch)
        conn = self._conn
        try:
            if self._inline:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            if not batch[0].write:
                outcomes = [self._one(conn, batch[0])]
            else:
                # Even a lone write runs in a transaction: a journal call is several
                # statements that must land together.
                outcomes = self._transaction(conn, batch)
            if self._wal and self._since_checkpoint >= CHECKPOINT_EVERY:
                self._checkpoint()
            return outcomes
        finally:
            if self._inline:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA busy_timeout = 0")
