"""``SQLiteStateStore``: the embedded default state store, one SQLite file.

The stdlib ``sqlite3`` driver runs off the event loop: every operation is a short
function run, in submission order, by one thread that owns the store's connection
(``penguiflow.stores._worker``). The database uses WAL mode, so readers
never block the writer and several stores (threads, processes) can share one
file; a writer that finds the file locked waits up to ``busy_timeout`` seconds.

It stays one module past ~400 lines: the store's tables (events, bindings, A2A
tasks) share one connection, one schema version and one migration; the journal
(``sqlite_journal``), the connection thread (``_worker``) and the owner lock
(``_owner``) are modules of their own already.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import quote

from penguiflow.errors import StateStoreCorrupt, StateStoreError, StateStoreLocked
from penguiflow.state import RemoteBinding, StoredEvent
from penguiflow.stores._worker import ConnectionWorker, WriteCounters
from penguiflow.stores.encoding import dumps_payload, event_key
from penguiflow.stores.sqlite_journal import JOURNAL_SCHEMA, JournalStatistics, SQLiteJournal

__all__ = ["SCHEMA_VERSION", "SQLiteStateStore"]

SCHEMA_VERSION = 3
"""``PRAGMA user_version`` of the schema this module writes.

1: event history, remote bindings, planner state. 2 adds the journal of
durable flows (``penguiflow.stores.sqlite_journal``); 3 adds the A2A task
records of durable A2A servers (``penguiflow_a2a.task_store``). An older
file is brought to 3 when a store first opens it, keeping everything it holds.
"""

_T = TypeVar("_T")

_INSERT_EVENT = (
    "INSERT OR IGNORE INTO penguiflow_events "
    "(trace_id, ts, kind, node_name, node_id, payload, event_key) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _event_row(event: StoredEvent) -> tuple[Any, ...]:
    payload = dumps_payload(event.payload)
    return (
        event.trace_id,
        event.ts,
        event.kind,
        event.node_name,
        event.node_id,
        payload,
        event_key(event, payload),
    )


def _insert_events(conn: sqlite3.Connection, events: Sequence[StoredEvent]) -> None:
    # Run by the durable journal inside a step's transaction (SQLiteJournal.commit_step):
    # the rows are built on the connection thread, off the event loop.
    conn.executemany(_INSERT_EVENT, [_event_row(event) for event in events])


_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS penguiflow_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id TEXT,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    node_name TEXT,
    node_id TEXT,
    payload TEXT NOT NULL,
    event_key TEXT NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS penguiflow_events_by_trace ON penguiflow_events (trace_id, id);
CREATE TABLE IF NOT EXISTS penguiflow_remote_bindings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id TEXT NOT NULL,
    context_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    agent_url TEXT NOT NULL,
    UNIQUE (trace_id, context_id, task_id, agent_url)
);
CREATE TABLE IF NOT EXISTS penguiflow_planner_state (
    token TEXT PRIMARY KEY,
    payload TEXT NOT NULL
);
"""

_SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS penguiflow_a2a_tasks (
    task_id TEXT PRIMARY KEY,
    record TEXT NOT NULL
);
"""


def _translate(exc: sqlite3.Error, path: str, busy_timeout: float) -> StateStoreError:
    """Map a driver error to the PenguiFlow error a caller can act on."""
    name = getattr(exc, "sqlite_errorname", "")
    text = str(exc)
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in text:
        return StateStoreLocked(
            f"state store {path!r} stayed locked by another writer for more than "
            f"{busy_timeout}s: {text}",
            path=path,
        )
    if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")) or "not a database" in text:
        return StateStoreCorrupt(
            f"state store {path!r} is not a readable SQLite database: {text}", path=path
        )
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return StateStoreError(f"cannot open state store {path!r}: {text}", path=path)
    return StateStoreError(f"state store {path!r} failed: {text}", path=path)


class SQLiteStateStore:
    """A ``StateStore`` keeping event history and remote bindings in one SQLite file.

    The file (and its parent folder) is created on first use unless
    ``create=False``; the schema is created on first use. Events of every flow
    sharing the store land in one table, in save order. An event saved twice
    (equal in every field) is stored once. ``close()`` releases the file; the
    next call opens it again, so a store outlives a stopped flow.

    ``path=":memory:"`` keeps everything in memory for the store's lifetime
    (until ``close()``).

    Also implements the optional extensions ``load_remote_bindings``,
    ``save_planner_state`` and ``load_planner_state``, keeps the journal of
    durable flows (``journal``, in the same file; see docs/durability.md) and
    the task records of a durable A2A server (``save_a2a_task``,
    ``load_a2a_tasks``, ``delete_a2a_tasks``; see docs/a2a.md).

    Args:
        path: the database file.
        create: create a missing file (``False``: a missing file is an error).
        busy_timeout: seconds a write waits for another writer's lock before
            ``StateStoreLocked`` is raised.

    Raises (from any operation):
        penguiflow.errors.StateStoreCorrupt: the file is not a SQLite database.
        penguiflow.errors.StateStoreLocked: the file stayed locked.
        penguiflow.errors.StateStoreError: any other failure (missing file with
            ``create=False``, unwritable folder, newer schema).

    .. versionadded:: 3.0
    """

    def __init__(
        self, path: str | os.PathLike[str], *, create: bool = True, busy_timeout: float = 5.0
    ) -> None:
        self._path = os.fspath(path)
        self._create = create
        self._busy_timeout = busy_timeout
        # One thread owns the connection; it starts on first use and ends at close().
        self._lock = threading.Lock()
        self._worker: ConnectionWorker | None = None
        self._counters = WriteCounters()
        self._journal: SQLiteJournal | None = None

    def __repr__(self) -> str:
        return f"SQLiteStateStore({self._path!r})"

    @property
    def path(self) -> str:
        """The database file path."""
        return self._path

    @property
    def journal(self) -> SQLiteJournal:
        """The journal of durable flows kept in this store's file (one per store).

        .. versionadded:: 3.0
        """
        with self._lock:
            if self._journal is None:
                self._journal = SQLiteJournal(
                    self._run,
                    path=self._path,
                    statistics=self._statistics,
                    events=(self, _insert_events),
                )
            return self._journal

    def _statistics(self) -> JournalStatistics:
        return JournalStatistics(writes=self._counters.calls, commits=self._counters.commits)

    # --- connection -------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        memory = self._path == ":memory:"
        if not memory:
            if not self._create and not os.path.exists(self._path):
                raise StateStoreError(
                    f"state store file {self._path!r} does not exist", path=self._path
                )
            if self._create:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
        mode = "rwc" if self._create else "rw"
        target = ":memory:" if memory else f"file:{quote(self._path)}?mode={mode}"
        conn = sqlite3.connect(
            target,
            uri=not memory,
            timeout=self._busy_timeout,
            isolation_level=None,  # autocommit; writes open their own transaction
            # Opened on the worker thread; writes may run on a caller's loop thread
            # (ConnectionWorker serialises every use).
            check_same_thread=False,
        )
        try:
            self._prepare(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _prepare(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateStoreError(
                f"state store {self._path!r} has schema version {version}; this PenguiFlow "
                f"reads up to {SCHEMA_VERSION}",
                path=self._path,
            )
        self._enter_wal(conn)
        # WAL + NORMAL: a commit survives a process crash (kill -9); only an OS
        # crash or power loss can lose the last transactions. The runtime saves
        # every event inline, and the journal commits once per batch of calls.
        conn.execute("PRAGMA synchronous=NORMAL")
        if version < SCHEMA_VERSION:
            self._migrate(conn)

    def _enter_wal(self, conn: sqlite3.Connection) -> None:
        # SQLite's busy handler does not cover a journal-mode change: while a
        # second connection opens the same new file, the switch to WAL fails at
        # once with "database is locked", whatever the timeout. Wait for it here,
        # up to the same busy_timeout a write waits (this runs on the worker thread).
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.001
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _migrate(self, conn: sqlite3.Connection) -> None:
        # One transaction, the version re-read under the write lock: two processes
        # opening one old file at once migrate it once, and a failed migration
        # leaves the file as it was.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            steps = ((1, _SCHEMA_V1), (2, JOURNAL_SCHEMA), (3, _SCHEMA_V3))
            for target, schema in steps:
                if version < target:
                    for statement in schema.split(";"):
                        if statement.strip():
                            conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def _translate(self, exc: sqlite3.Error) -> StateStoreError:
        return _translate(exc, self._path, self._busy_timeout)

    async def _run(self, fn: Callable[[sqlite3.Connection], _T], *, write: bool = False) -> _T:
        with self._lock:  # held for a check and maybe a thread start, never for I/O
            if self._worker is None:
                self._worker = ConnectionWorker(
                    self._open,
                    self._translate,
                    name=f"penguiflow-sqlite:{self._path}",
                    counters=self._counters,
                    inline=True,
                )
            worker = self._worker
        return await worker.call(fn, write=write)

    async def close(self) -> None:
        """Close the file once the calls already made have run; a later call reopens it."""
        with self._lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            await worker.stop()

    async def __aenter__(self) -> SQLiteStateStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- StateStore -----------------------------------------------------------------

    async def save_event(self, event: StoredEvent) -> None:
        """Append ``event`` to its trace's history (once, however often it is saved)."""
        row = _event_row(event)

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(_INSERT_EVENT, row)

        await self._run(insert, write=True)

    async def load_history(self, trace_id: str) -> list[StoredEvent]:
        """Return the events of ``trace_id`` in the order they were saved."""

        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT trace_id, ts, kind, node_name, node_id, payload "
                "FROM penguiflow_events WHERE trace_id = ? ORDER BY id",
                (trace_id,),
            ).fetchall()

        rows = await self._run(select)
        return [
            StoredEvent(
                trace_id=row[0],
                ts=row[1],
                kind=row[2],
                node_name=row[3],
                node_id=row[4],
                payload=json.loads(row[5]),
            )
            for row in rows
        ]

    async def list_traces(self, limit: int = 100) -> list[tuple[str, float, float, int]]:
        """The most recently active traces: ``(trace_id, first ts, last ts, events)``.

        Newest first (by last saved event). Used by ``penguiflow-admin inspect``.

        .. versionadded:: 3.0
        """

        def select(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            return conn.execute(
                "SELECT trace_id, MIN(ts), MAX(ts), COUNT(*), MAX(id) AS last "
                "FROM penguiflow_events WHERE trace_id IS NOT NULL "
                "GROUP BY trace_id ORDER BY last DESC LIMIT ?",
                (int(limit),),
            ).fetchall()

        rows = await self._run(select)
        return [(str(r[0]), float(r[1]), float(r[2]), int(r[3])) for r in rows]

    async def save_remote_binding(self, binding: RemoteBinding) -> None:
        """Record which remote task serves ``binding.trace_id`` (once per distinct binding)."""
        row = (binding.trace_id, binding.context_id, binding.task_id, binding.agent_url)

        def insert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT OR IGNORE INTO penguiflow_remote_bindings "
                "(trace_id, context_id, task_id, agent_url) VALUES (?, ?, ?, ?)",
                row,
            )

        await self._run(insert, write=True)

    # --- optional extensions ------------------------------------------------------------

    async def load_remote_bindings(self, trace_id: str) -> list[RemoteBinding]:
        """Return the bindings saved for ``trace_id``, oldest first."""

        def select(conn: sqlite3.Connection) -> list[tuple[str, str, str, str]]:
            return conn.execute(
                "SELECT trace_id, context_id, task_id, agent_url "
                "FROM penguiflow_remote_bindings WHERE trace_id = ? ORDER BY id",
                (trace_id,),
            ).fetchall()

        return [RemoteBinding(*row) for row in await self._run(select)]

    async def save_planner_state(self, token: str, payload: Mapping[str, Any]) -> None:
        """Store a paused planner's record under ``token`` (the last save wins)."""
        data = dumps_payload(payload)

        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO penguiflow_planner_state (token, payload) VALUES (?, ?) "
                "ON CONFLICT (token) DO UPDATE SET payload = excluded.payload",
                (token, data),
            )

        await self._run(upsert, write=True)

    async def load_planner_state(self, token: str) -> dict[str, Any] | None:
        """Return the record saved under ``token``, or ``None``."""

        def select(conn: sqlite3.Connection) -> tuple[str] | None:
            row: tuple[str] | None = conn.execute(
                "SELECT payload FROM penguiflow_planner_state WHERE token = ?", (token,)
            ).fetchone()
            return row

        row = await self._run(select)
        if row is None:
            return None
        result: dict[str, Any] = json.loads(row[0])
        return result

    async def save_a2a_task(self, task_id: str, record: Mapping[str, Any]) -> None:
        """Store the A2A task record ``task_id`` (the last save wins).

        .. versionadded:: 3.0
        """
        data = dumps_payload(record)

        def upsert(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO penguiflow_a2a_tasks (task_id, record) VALUES (?, ?) "
                "ON CONFLICT (task_id) DO UPDATE SET record = excluded.record",
                (task_id, data),
            )

        await self._run(upsert, write=True)

    async def load_a2a_tasks(self) -> list[dict[str, Any]]:
        """Every stored A2A task record, in the order they were first saved.

        .. versionadded:: 3.0
        """

        def select(conn: sqlite3.Connection) -> list[tuple[str]]:
            return conn.execute("SELECT record FROM penguiflow_a2a_tasks ORDER BY rowid").fetchall()

        return [json.loads(row[0]) for row in await self._run(select)]

    async def delete_a2a_tasks(self, task_ids: Sequence[str]) -> None:
        """Forget the A2A task records ``task_ids`` (unknown ids are ignored).

        .. versionadded:: 3.0
        """
        rows = [(task_id,) for task_id in task_ids]

        def delete(conn: sqlite3.Connection) -> None:
            conn.executemany("DELETE FROM penguiflow_a2a_tasks WHERE task_id = ?", rows)

        if rows:
            await self._run(delete, write=True)
