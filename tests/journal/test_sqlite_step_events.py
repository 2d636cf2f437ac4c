"""SQLiteJournal.commit_step(events=...): a step's events share its transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from penguiflow.errors import JournalConflict, JournalError
from penguiflow.journal import Input
from penguiflow.state import StoredEvent
from penguiflow.stores import SQLiteStateStore
from penguiflow.stores.sqlite_journal import SQLiteJournal


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStateStore]:
    s = SQLiteStateStore(tmp_path / "journal.db")
    try:
        yield s
    finally:
        await s.close()


def _event(kind: str, trace_id: str = "t-1") -> StoredEvent:
    return StoredEvent(trace_id, 1.0, kind, "work", "work-id", {"attempt": 0})


async def test_a_step_and_its_events_are_one_write(store: SQLiteStateStore) -> None:
    journal = store.journal
    (accepted,) = await journal.accept([Input("in", 1, trace_id="t-1")])
    before = journal.statistics()
    await journal.commit_step(
        "t-1",
        consumed=accepted.entry_id,
        produced=[("a->b", 2)],
        events=[_event("node_start"), _event("node_success")],
    )
    after = journal.statistics()
    assert (after.writes - before.writes, after.commits - before.commits) == (1, 1)
    history = await store.load_history("t-1")
    assert [e.kind for e in history] == ["node_start", "node_success"]
    assert history[0].payload == {"attempt": 0}


async def test_a_failed_step_stores_none_of_its_events(store: SQLiteStateStore) -> None:
    journal = store.journal
    with pytest.raises(JournalConflict):
        await journal.commit_step("t-1", consumed=12345, events=[_event("node_start")])
    assert await store.load_history("t-1") == []


async def test_events_of_a_cancelled_trace_step_are_kept(store: SQLiteStateStore) -> None:
    journal = store.journal
    (accepted,) = await journal.accept([Input("in", 1, trace_id="t-1")])
    await journal.cancel("t-1")
    result = await journal.commit_step(
        "t-1", consumed=accepted.entry_id, events=[_event("node_success")]
    )
    assert result.dropped
    assert [e.kind for e in await store.load_history("t-1")] == ["node_success"]


async def test_the_journal_joins_the_events_of_its_own_store_only(
    store: SQLiteStateStore, tmp_path: Path
) -> None:
    other = SQLiteStateStore(tmp_path / "other.db")
    assert store.journal.joins_events_of(store)
    assert not store.journal.joins_events_of(other)
    assert not store.journal.joins_events_of(None)


async def test_a_journal_without_event_history_refuses_events(store: SQLiteStateStore) -> None:
    run = store._run  # noqa: SLF001 - white-box: a journal built without its store's events
    bare = SQLiteJournal(run, path=store.path, statistics=store.journal.statistics)
    assert not bare.joins_events_of(store)
    with pytest.raises(JournalError, match="keeps no event history"):
        await bare.commit_step("t-1", events=[_event("node_start")])
