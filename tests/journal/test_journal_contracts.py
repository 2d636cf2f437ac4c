"""Every shipped journal passes the one journal contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from penguiflow.journal import Journal
from penguiflow.stores.sqlite import SQLiteStateStore
from penguiflow.testkit._journal import InMemoryJournal
from penguiflow.testkit._journal_contracts import (
    JOURNAL_CHECKS,
    check_journal,
    check_journal_reopen,
)


@pytest.fixture(params=["memory", "sqlite", "sqlite-in-memory"])
async def journal(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Journal]:
    if request.param == "memory":
        yield InMemoryJournal()
        return
    path = ":memory:" if request.param == "sqlite-in-memory" else tmp_path / "journal.db"
    store = SQLiteStateStore(path)
    try:
        yield store.journal
    finally:
        await store.close()


@pytest.mark.parametrize("check", list(JOURNAL_CHECKS.values()), ids=list(JOURNAL_CHECKS))
async def test_journal_contract(
    journal: Journal, check: Callable[[Journal], Awaitable[None]]
) -> None:
    await check(journal)


async def test_runner_passes_for_the_in_memory_journal() -> None:
    await check_journal(InMemoryJournal)


async def test_runner_takes_a_store_and_closes_it(tmp_path: Path) -> None:
    made: list[SQLiteStateStore] = []

    async def factory() -> SQLiteStateStore:
        made.append(SQLiteStateStore(tmp_path / f"{len(made)}.db"))
        return made[-1]

    await check_journal(factory)
    assert len(made) == len(JOURNAL_CHECKS)


async def test_runner_names_the_failing_check() -> None:
    class ForgetfulJournal(InMemoryJournal):
        async def parked_traces(self) -> list[str]:
            return []

    with pytest.raises(AssertionError, match="'interrupt_parks_resumes_and_is_used_once' failed"):
        await check_journal(ForgetfulJournal)


async def test_sqlite_journal_passes_the_reopen_check(tmp_path: Path) -> None:
    await check_journal_reopen(lambda: SQLiteStateStore(tmp_path / "reopen.db"))


async def test_reopen_check_fails_for_a_journal_that_forgets() -> None:
    with pytest.raises(AssertionError, match="reloaded"):
        await check_journal_reopen(InMemoryJournal)
