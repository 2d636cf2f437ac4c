"""``SQLiteJournal``: the journal of durable flows in the tables of a ``SQLiteStateStore``.

Every operation is one function run on the store's connection thread inside a
transaction; writes queued while a transaction is in flight share the next one
(group commit, ``penguiflow.stores._worker``), so concurrent callers pay one
commit per batch. The database is in WAL mode with ``synchronous=NORMAL``: a
committed transaction survives a crash of the process (kill -9); only a crash
of the operating system or a power loss can lose the last commits.

It stays one module past ~400 lines: the schema and the statements that rely on
it are one concept; split, a change to a table would span two files.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from penguiflow._journal_steps import (
    EncodedInput,
    EncodedStep,
    derive_status,
    encode_inputs,
)
from penguiflow.errors import (
    InterruptTokenError,
    JournalConflict,
    JournalError,
    JournalInUse,
    StateStoreError,
)
from penguiflow.journal import (
    Acceptance,
    EdgeEntry,
    Input,
    InterruptRecord,
    JournalSnapshot,
    Outgoing,
    RookeryEntry,
    StateEntry,
    StateUpdate,
    StepResult,
    TraceRecord,
    encode_item,
)
from penguiflow.state import StoredEvent
from penguiflow.stores._owner import FileOwner

__all__ = ["JOURNAL_SCHEMA", "JournalStatistics", "SQLiteJournal"]

_T = TypeVar("_T")

JOURNAL_SCHEMA = """
CREATE TABLE IF NOT EXISTS penguiflow_journal_traces (
    trace_id TEXT PRIMARY KEY,
    cancelled INTEGER NOT NULL DEFAULT 0,
    first_seen REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS penguiflow_journal_keys (
    idempotency_key TEXT PRIMARY KEY,
    trace_id TEXT,
    accepted REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS penguiflow_journal_keys_by_trace
    ON penguiflow_journal_keys (trace_id);
CREATE TABLE IF NOT EXISTS penguiflow_journal_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    edge TEXT NOT NULL,
    trace_id TEXT,
    item TEXT NOT NULL,
    attempt INTEGER NOT NULL DEFAULT 0,
    deadline REAL,
    holder TEXT
);
CREATE INDEX IF NOT EXISTS penguiflow_journal_entries_by_trace
    ON penguiflow_journal_entries (trace_id);
CREATE TABLE IF NOT EXISTS penguiflow_journal_state (
    trace_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (trace_id, key)
);
CREATE TABLE IF NOT EXISTS penguiflow_journal_rookery (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id TEXT,
    item TEXT NOT NULL,
    delivered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS penguiflow_journal_rookery_pending
    ON penguiflow_journal_rookery (delivered, trace_id);
CREATE TABLE IF NOT EXISTS penguiflow_journal_interrupts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    token TEXT NOT NULL UNIQUE,
    trace_id TEXT,
    node TEXT NOT NULL,
    payload TEXT NOT NULL,
    entry_id INTEGER,
    resume_value TEXT,
    resumed INTEGER NOT NULL DEFAULT 0,
    used INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS penguiflow_journal_interrupts_by_trace
    ON penguiflow_journal_interrupts (trace_id, used);
"""
"""The tables schema version 2 adds to version 1 (event history, bindings, planner)."""

# A trace is live while anything is left of it; settled traces are never scanned.
_LIVE = """
SELECT trace_id FROM penguiflow_journal_entries WHERE trace_id IS NOT NULL
UNION SELECT trace_id FROM penguiflow_journal_state
UNION SELECT trace_id FROM penguiflow_journal_rookery
    WHERE delivered = 0 AND trace_id IS NOT NULL
UNION SELECT trace_id FROM penguiflow_journal_interrupts
    WHERE used = 0 AND trace_id IS NOT NULL
"""

_TRACES = """
SELECT t.trace_id, t.cancelled,
    (SELECT COUNT(*) FROM penguiflow_journal_entries e WHERE e.trace_id = t.trace_id),
    (SELECT COUNT(*) FROM penguiflow_journal_state s WHERE s.trace_id = t.trace_id),
    (SELECT COUNT(*) FROM penguiflow_journal_rookery r
        WHERE r.delivered = 0 AND r.trace_id = t.trace_id),
    (SELECT COUNT(*) FROM penguiflow_journal_interrupts i
        WHERE i.used = 0 AND i.resumed = 0 AND i.trace_id = t.trace_id),
    (SELECT COUNT(*) FROM penguiflow_journal_interrupts i
        WHERE i.used = 0 AND i.trace_id = t.trace_id),
    (SELECT group_concat(k.idempotency_key, char(31)) FROM
        (SELECT idempotency_key FROM penguiflow_journal_keys
            WHERE trace_id = t.trace_id ORDER BY rowid) k)
FROM penguiflow_journal_traces t
"""


_EventWriter = Callable[[sqlite3.Connection, Sequence[StoredEvent]], None]


class _Runner(Protocol):
    """The store's connection thread, as the journal sees it."""

    def __call__(
        self, fn: Callable[[sqlite3.Connection], _T], *, write: bool = False
    ) -> Awaitable[_T]: ...


@dataclass(frozen=True, slots=True)
class JournalStatistics:
    """What the store's writer did since the store was created.

    ``commits`` counts transactions and ``writes`` the write calls they carried
    (journal operations and every other write of the store, event history
    included), so ``writes / commits`` is the group commit's batch size.

    .. versionadded:: 3.0
    """

    writes: int
    commits: int


def _now() -> float:
    return time.time()


def _touch(conn: sqlite3.Connection, trace_id: str | None) -> None:
    if trace_id is not None:
        conn.execute(
            "INSERT OR IGNORE INTO penguiflow_journal_traces (trace_id, first_seen) VALUES (?, ?)",
            (trace_id, _now()),
        )


def _cancelled(conn: sqlite3.Connection, trace_id: str | None) -> bool:
    if trace_id is None:
        return False
    row = conn.execute(
        "SELECT cancelled FROM penguiflow_journal_traces WHERE trace_id = ?", (trace_id,)
    ).fetchone()
    return row is not None and bool(row[0])


def _entry_exists(conn: sqlite3.Connection, entry_id: int) -> bool:
    row = conn.execute(
        "SELECT 1 FROM penguiflow_journal_entries WHERE id = ?", (entry_id,)
    ).fetchone()
    return row is not None


def _add_entry(
    conn: sqlite3.Connection,
    edge: str,
    trace_id: str | None,
    item: str,
    deadline: float | None,
    touched: str | None = None,
) -> int:
    if trace_id != touched:  # ``touched``: a trace the transaction has touched already
        _touch(conn, trace_id)
    cursor = conn.execute(
        "INSERT INTO penguiflow_journal_entries (edge, trace_id, item, deadline) "
        "VALUES (?, ?, ?, ?)",
        (edge, trace_id, item, deadline),
    )
    assert cursor.lastrowid is not None
    return cursor.lastrowid


def _add_rookery(
    conn: sqlite3.Connection, trace_id: str | None, items: Sequence[str]
) -> tuple[int, ...]:
    ids = []
    for item in items:
        cursor = conn.execute(
            "INSERT INTO penguiflow_journal_rookery (trace_id, item) VALUES (?, ?)",
            (trace_id, item),
        )
        assert cursor.lastrowid is not None
        ids.append(cursor.lastrowid)
    return tuple(ids)


def _accept(conn: sqlite3.Connection, inputs: Sequence[EncodedInput]) -> list[Acceptance]:
    results = []
    for item in inputs:
        if item.key is not None:
            row = conn.execute(
                "SELECT trace_id FROM penguiflow_journal_keys WHERE idempotency_key = ?",
                (item.key,),
            ).fetchone()
            if row is not None:
                results.append(Acceptance(row[0], None, duplicate=True))
                continue
            conn.execute(
                "INSERT INTO penguiflow_journal_keys (idempotency_key, trace_id, accepted) "
                "VALUES (?, ?, ?)",
                (item.key, item.trace_id, _now()),
            )
        _touch(conn, item.trace_id)
        if _cancelled(conn, item.trace_id):
            results.append(Acceptance(item.trace_id, None, cancelled=True))
            continue
        entry_id = _add_entry(conn, item.edge, item.trace_id, item.item, item.deadline)
        results.append(Acceptance(item.trace_id, entry_id))
    return results


def _commit_step(conn: sqlite3.Connection, step: EncodedStep) -> StepResult:
    # Any raise below rolls the whole transaction back: a step lands entirely or not at all.
    if _cancelled(conn, step.trace_id):
        if step.consumed is not None:
            conn.execute("DELETE FROM penguiflow_journal_entries WHERE id = ?", (step.consumed,))
        return StepResult(dropped=True)
    if step.consumed is not None:
        cursor = conn.execute(
            "DELETE FROM penguiflow_journal_entries WHERE id = ?", (step.consumed,)
        )
        if cursor.rowcount != 1:
            raise JournalConflict(
                f"edge entry {step.consumed} is not in the journal (consumed already?)",
                entry_id=step.consumed,
            )
    for token in step.interrupts_used:
        cursor = conn.execute(
            "UPDATE penguiflow_journal_interrupts SET used = 1 WHERE token = ? AND used = 0",
            (token,),
        )
        if cursor.rowcount != 1:
            raise InterruptTokenError(
                f"interrupt token {token!r} is unknown or already used", token=token
            )
    _touch(conn, step.trace_id)
    entry_ids = tuple(
        _add_entry(conn, out.edge, out.trace_id, out.item, out.deadline, step.trace_id)
        for out in step.produced
    )
    rookery_ids = _add_rookery(conn, step.trace_id, step.rookery)
    for update in step.state:
        _touch(conn, update.trace_id)
        if update.value is None:
            conn.execute(
                "DELETE FROM penguiflow_journal_state WHERE trace_id = ? AND key = ?",
                (update.trace_id, update.key),
            )
        else:
            conn.execute(
                "INSERT INTO penguiflow_journal_state (trace_id, key, value) VALUES (?, ?, ?) "
                "ON CONFLICT (trace_id, key) DO UPDATE SET value = excluded.value",
                (update.trace_id, update.key, update.value),
            )
    return StepResult(entry_ids, rookery_ids)


def _interrupt(row: Sequence[Any]) -> InterruptRecord:
    token, trace_id, node, payload, entry_id, resume_value, resumed, used = row
    return InterruptRecord(
        token, trace_id, node, payload, entry_id, resume_value, bool(resumed), bool(used)
    )


_INTERRUPT_COLUMNS = "token, trace_id, node, payload, entry_id, resume_value, resumed, used"


def _trace_records(conn: sqlite3.Connection, include_finished: bool) -> list[TraceRecord]:
    where = "" if include_finished else f" WHERE t.trace_id IN ({_LIVE})"
    records = []
    for row in conn.execute(f"{_TRACES}{where} ORDER BY t.rowid"):
        trace_id, cancelled, entries, state, undelivered, waiting, unused, keys = row
        status = derive_status(
            cancelled=bool(cancelled),
            waiting=bool(waiting),
            running=bool(entries or state or unused),
            undelivered=bool(undelivered),
        )
        keys_tuple = tuple(keys.split("\x1f")) if keys else ()
        records.append(TraceRecord(trace_id, status, keys_tuple, entries, undelivered))
    return records


def _load(conn: sqlite3.Connection) -> JournalSnapshot:
    conn.execute("BEGIN")  # one read transaction: a consistent view of every table
    try:
        entries = tuple(
            EdgeEntry(*row)
            for row in conn.execute(
                "SELECT id, edge, trace_id, item, attempt, deadline, holder "
                "FROM penguiflow_journal_entries ORDER BY id"
            )
        )
        state = tuple(
            StateEntry(*row)
            for row in conn.execute(
                "SELECT trace_id, key, value FROM penguiflow_journal_state ORDER BY rowid"
            )
        )
        rookery = tuple(
            RookeryEntry(row[0], row[1], row[2], False)
            for row in conn.execute(
                "SELECT id, trace_id, item FROM penguiflow_journal_rookery "
                "WHERE delivered = 0 ORDER BY id"
            )
        )
        interrupts = tuple(
            _interrupt(row)
            for row in conn.execute(
                f"SELECT {_INTERRUPT_COLUMNS} FROM penguiflow_journal_interrupts "
                "WHERE used = 0 ORDER BY seq"
            )
        )
        traces = tuple(_trace_records(conn, include_finished=False))
    finally:
        conn.execute("COMMIT")
    return JournalSnapshot(entries, state, rookery, interrupts, traces)


class SQLiteJournal:
    """The ``penguiflow.journal.Journal`` of a ``SQLiteStateStore`` (``store.journal``).

    Get it from the store rather than building it. Operations go through the
    store's connection thread (so the journal opens, closes and reopens with the
    store); each is one transaction, and writes issued concurrently share one
    commit. A failed write raises ``penguiflow.errors.JournalError`` with the
    store's error as ``__cause__``, and nothing of that call is stored.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        run: _Runner,
        *,
        path: str,
        statistics: Callable[[], JournalStatistics],
        events: tuple[object, _EventWriter] | None = None,
    ) -> None:
        self._run = run
        self._path = path
        self._statistics = statistics
        # The store whose event history shares this journal's transactions, and
        # how its events are written (SQLiteStateStore passes itself).
        self._events = events
        # ":memory:" is this store object's own: owning the object is enough.
        self._owner = FileOwner(path) if path != ":memory:" else None
        self._claimed = False

    def claim(self) -> None:
        """Make the calling durable flow the journal's one owner (see ``FileOwner``).

        Raises:
            penguiflow.errors.JournalInUse: another running durable flow, in this
                process or another, owns the file.
        """
        if self._claimed:
            raise JournalInUse(
                f"journal {self._path!r} is owned by a durable flow that is still running "
                "on this store: stop it before running another",
                path=self._path,
            )
        if self._owner is not None:
            self._owner.claim(self._path)
        self._claimed = True

    def unclaim(self) -> None:
        """Let go of the journal (``stop()`` of its flow); no-op if not claimed."""
        self._claimed = False
        if self._owner is not None:
            self._owner.release()

    def __repr__(self) -> str:
        return f"SQLiteJournal({self._path!r})"

    def statistics(self) -> JournalStatistics:
        """Write calls and transactions of the store so far (group commit's effect)."""
        return self._statistics()

    def joins_events_of(self, store: object) -> bool:
        """True if ``store``'s events can be saved in this journal's steps.

        That is, ``store`` is the ``SQLiteStateStore`` this journal belongs to:
        ``commit_step(..., events=...)`` then writes them in the step's transaction.
        """
        return self._events is not None and self._events[0] is store

    async def _call(self, fn: Callable[[sqlite3.Connection], _T], *, write: bool) -> _T:
        try:
            return await self._run(fn, write=write)
        except JournalError:
            raise
        except StateStoreError as exc:
            action = "write" if write else "read"
            raise JournalError(
                f"journal {action} on {self._path!r} failed, nothing of it was stored: {exc}"
                if write
                else f"journal read on {self._path!r} failed: {exc}",
                path=self._path,
            ) from exc

    # --- Journal --------------------------------------------------------------------

    async def accept(self, inputs: Sequence[Input]) -> list[Acceptance]:
        """Journal new inputs; a known idempotency key is reported, not added."""
        encoded = encode_inputs(inputs)
        return await self._call(lambda conn: _accept(conn, encoded), write=True)

    async def hold(self, entry_id: int, *, node: str, attempt: int = 0) -> None:
        """Record that ``node`` has the entry in hand at retry ``attempt``."""

        def update(conn: sqlite3.Connection) -> None:
            cursor = conn.execute(
                "UPDATE penguiflow_journal_entries SET holder = ?, attempt = ? WHERE id = ?",
                (node, attempt, entry_id),
            )
            if cursor.rowcount != 1:
                raise JournalConflict(
                    f"edge entry {entry_id} is not in the journal", entry_id=entry_id
                )

        await self._call(update, write=True)

    async def commit_step(
        self,
        trace_id: str | None,
        *,
        consumed: int | None = None,
        produced: Sequence[Outgoing | tuple[str, Any]] = (),
        rookery: Sequence[Any] = (),
        state: Sequence[StateUpdate] = (),
        interrupts_used: Sequence[str] = (),
        events: Sequence[StoredEvent] = (),
    ) -> StepResult:
        """Record one step: its input consumed and its outputs, together.

        ``events`` (a durable flow's events of the step, see ``joins_events_of``)
        go to the store's event history in the same transaction: all of it lands,
        or none of it does.
        """
        step = EncodedStep.build(
            trace_id,
            consumed=consumed,
            produced=produced,
            rookery=rookery,
            state=state,
            interrupts_used=interrupts_used,
        )
        if not events:
            return await self._call(lambda conn: _commit_step(conn, step), write=True)
        if self._events is None:
            raise JournalError(
                f"journal on {self._path!r} keeps no event history: pass no events",
                path=self._path,
            )
        write_events = self._events[1]

        def commit(conn: sqlite3.Connection) -> StepResult:
            result = _commit_step(conn, step)
            write_events(conn, events)
            return result

        return await self._call(commit, write=True)

    async def mark_delivered(self, rookery_id: int) -> bool:
        """Mark a Rookery item delivered; ``False`` if it already was."""

        def mark(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE penguiflow_journal_rookery SET delivered = 1 "
                "WHERE id = ? AND delivered = 0",
                (rookery_id,),
            )
            if cursor.rowcount == 1:
                return True
            row = conn.execute(
                "SELECT 1 FROM penguiflow_journal_rookery WHERE id = ?", (rookery_id,)
            ).fetchone()
            if row is None:
                raise JournalError(
                    f"Rookery item {rookery_id} is not in the journal", path=self._path
                )
            return False

        return await self._call(mark, write=True)

    async def park(
        self,
        token: str,
        *,
        trace_id: str | None,
        node: str,
        payload: Any,
        entry_id: int | None = None,
        rookery: Sequence[Any] = (),
    ) -> StepResult:
        """Journal an interrupt and its Rookery items."""
        encoded = encode_item(payload)
        items = [encode_item(item) for item in rookery]

        def insert(conn: sqlite3.Connection) -> StepResult:
            known = conn.execute(
                "SELECT 1 FROM penguiflow_journal_interrupts WHERE token = ?", (token,)
            ).fetchone()
            if known is not None:
                raise InterruptTokenError(
                    f"interrupt token {token!r} is already parked", token=token
                )
            if _cancelled(conn, trace_id):
                return StepResult(dropped=True)
            if entry_id is not None and not _entry_exists(conn, entry_id):
                raise JournalConflict(
                    f"edge entry {entry_id} is not in the journal", entry_id=entry_id
                )
            _touch(conn, trace_id)
            conn.execute(
                "INSERT INTO penguiflow_journal_interrupts "
                "(token, trace_id, node, payload, entry_id) VALUES (?, ?, ?, ?, ?)",
                (token, trace_id, node, encoded, entry_id),
            )
            return StepResult(rookery_ids=_add_rookery(conn, trace_id, items))

        return await self._call(insert, write=True)

    async def resume(self, token: str, value: Any) -> InterruptRecord:
        """Store the value a parked interrupt resumes with."""
        encoded = encode_item(value)

        def update(conn: sqlite3.Connection) -> InterruptRecord:
            row = conn.execute(
                f"SELECT {_INTERRUPT_COLUMNS} FROM penguiflow_journal_interrupts WHERE token = ?",
                (token,),
            ).fetchone()
            record = None if row is None else _interrupt(row)
            if record is None or record.resumed or record.used:
                state = "unknown" if record is None else "already resumed"
                raise InterruptTokenError(f"interrupt token {token!r} is {state}", token=token)
            conn.execute(
                "UPDATE penguiflow_journal_interrupts SET resume_value = ?, resumed = 1 "
                "WHERE token = ?",
                (encoded, token),
            )
            return InterruptRecord(
                record.token,
                record.trace_id,
                record.node,
                record.payload,
                record.entry_id,
                encoded,
                resumed=True,
            )

        return await self._call(update, write=True)

    async def cancel(self, trace_id: str) -> bool:
        """Cancel a trace for good; ``False`` if it already was."""

        def mark(conn: sqlite3.Connection) -> bool:
            if _cancelled(conn, trace_id):
                return False
            _touch(conn, trace_id)
            conn.execute(
                "UPDATE penguiflow_journal_traces SET cancelled = 1 WHERE trace_id = ?",
                (trace_id,),
            )
            for table in ("entries", "state", "interrupts"):
                conn.execute(
                    f"DELETE FROM penguiflow_journal_{table} WHERE trace_id = ?",
                    (trace_id,),
                )
            # Its Rookery items not fetched yet are dropped (cancel drops them from
            # Rookery): marked delivered, so recover() never hands them out.
            conn.execute(
                "UPDATE penguiflow_journal_rookery SET delivered = 1 "
                "WHERE trace_id = ? AND delivered = 0",
                (trace_id,),
            )
            return True

        return await self._call(mark, write=True)

    async def load(self) -> JournalSnapshot:
        """Everything unfinished, in journal order, read in one consistent view."""
        return await self._call(_load, write=False)

    async def traces(self, *, include_finished: bool = False) -> list[TraceRecord]:
        """The traces not settled (or all: ``include_finished``), oldest first."""
        return await self._call(lambda conn: _trace_records(conn, include_finished), write=False)

    async def unfinished_traces(self) -> list[str]:
        """Ids of the traces not settled, oldest first."""
        return [r.trace_id for r in await self.traces()]

    async def parked_traces(self) -> list[str]:
        """Ids of the traces with an interrupt waiting for ``resume``."""
        return [r.trace_id for r in await self.traces() if r.status == "parked"]
