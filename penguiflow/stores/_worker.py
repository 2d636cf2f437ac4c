"""One thread that owns one SQLite connection and runs calls on it in FIFO order."""

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

__all__ = ["MAX_BATCH", "ConnectionWorker", "WriteCounters"]

_T = TypeVar("_T")

MAX_BATCH = 256
"""Most consecutive writes committed in one transaction."""


@dataclass(slots=True)
class WriteCounters:
    """Write calls served and transactions committed; owned by the store, so they
    outlive one worker (a closed store reopens with a new one). Written by the
    worker thread only; readers see a recent value."""

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


class ConnectionWorker:
    """A daemon thread serving calls ``fn(connection)`` one at a time, in submission order.

    The connection is opened by ``connect`` on the first call (and again after a
    failed open); ``errors`` maps driver errors to the caller's exception type.
    Because calls run in FIFO order, ``stop()`` runs after every call submitted
    before it, so closing never races an in-flight write. Writes that queued up
    while the thread was busy are committed together in one transaction (group
    commit); each caller still gets its own result or error. Callers on any
    event loop (or several) may share one worker.

    The calls a loop makes in one turn reach the thread together: the first
    schedules a flush on its loop (``call_soon``) and the others join it, so the
    thread is woken once per turn rather than once per call (a wake-up is a
    thread switch, and both threads want the GIL); replies go back the same way,
    one hand-off per batch and loop.
    """

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        errors: Callable[[sqlite3.Error], BaseException],
        name: str,
        counters: WriteCounters | None = None,
    ) -> None:
        self._connect = connect
        self._errors = errors
        self._counters = counters if counters is not None else WriteCounters()
        self._conn: sqlite3.Connection | None = None  # touched by the worker thread only
        self._queue: queue.SimpleQueue[list[_Call]] = queue.SimpleQueue()
        # Calls made this turn of each loop, not handed to the thread yet (see _flush).
        self._lock = threading.Lock()
        self._pending: dict[asyncio.AbstractEventLoop, list[_Call]] = {}
        # Daemon: a store nobody closed must not keep the interpreter alive; SQLite's
        # journal keeps the file consistent even if the process ends mid-write.
        self._thread = threading.Thread(target=self._serve, name=name, daemon=True)
        self._thread.start()

    async def call(self, fn: Callable[[sqlite3.Connection], _T], *, write: bool = False) -> _T:
        """Run ``fn(connection)`` on the worker thread and return its result.

        ``write=True`` runs the call in a transaction, shared with the writes
        queued beside it (group commit); it must then not manage transactions
        itself, and must change nothing but the database (a failed neighbour
        makes it run again). A read (``write=False``) runs alone and may open
        its own read transaction for a consistent view.
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
        """Hand the calls ``loop`` made this turn to the thread, in order."""
        with self._lock:
            pending = self._pending.pop(loop, None)
            if pending:  # stop() may have handed them over already
                self._queue.put(pending)

    async def stop(self) -> None:
        """Close the connection after every call submitted so far; end the thread."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            for pending in self._pending.values():  # every call made so far goes first
                self._queue.put(pending)
            self._pending.clear()
            self._queue.put([_Call(None, False, loop, future)])
        await future

    # --- the thread -----------------------------------------------------------------

    def _serve(self) -> None:
        backlog: collections.deque[_Call] = collections.deque()
        while True:
            if not backlog:
                backlog.extend(self._queue.get())
            while True:  # everything handed over meanwhile joins the backlog
                try:
                    backlog.extend(self._queue.get_nowait())
                except queue.Empty:
                    break
            call = backlog.popleft()
            if call.fn is None:
                outcome = _Outcome(None, self._close())
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
            self._reply(batch, self._execute(batch))

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

    def _close(self) -> BaseException | None:
        conn, self._conn = self._conn, None
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

    def _transaction(self, conn: sqlite3.Connection, batch: list[_Call]) -> list[_Outcome]:
        """Run ``batch`` in one transaction: all of it is committed, or none of it."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:  # e.g. locked: every write of the batch fails alike
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
            if len(batch) == 1:
                return [_Outcome(None, self._wrap(exc))]
            # One call failed (or the commit did): the batch is undone, and each
            # call runs again alone, so every caller gets its own outcome and a
            # call never fails for a neighbour's fault.
            return [self._transaction(conn, [call])[0] for call in batch]
        self._counters.commits += 1
        self._counters.calls += len(batch)
        return [_Outcome(result, None) for result in results]

    def _execute(self, batch: list[_Call]) -> list[_Outcome]:
        try:
            if self._conn is None:
                self._conn = self._connect()
        except BaseException as exc:
            return [_Outcome(None, self._wrap(exc))] * len(batch)
        conn = self._conn
        if not batch[0].write:
            return [self._one(conn, batch[0])]
        # Even a lone write runs in a transaction: a journal call is several
        # statements that must land together.
        return self._transaction(conn, batch)
