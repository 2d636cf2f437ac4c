"""Both shipped state stores pass the shipped contract suite."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from penguiflow.state import StateStore
from penguiflow.stores.sqlite import SQLiteStateStore
from penguiflow.testkit._contracts import (
    STATE_STORE_CHECKS,
    check_state_store,
    check_state_store_reopen,
)
from penguiflow.testkit._stores import InMemoryStateStore


@pytest.fixture(params=["memory", "sqlite", "sqlite-in-memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield InMemoryStateStore()
        return
    path = ":memory:" if request.param == "sqlite-in-memory" else tmp_path / "state.db"
    sqlite = SQLiteStateStore(path)
    try:
        yield sqlite
    finally:
        await sqlite.close()


@pytest.mark.parametrize(
    "check", list(STATE_STORE_CHECKS.values()), ids=list(STATE_STORE_CHECKS.keys())
)
async def test_store_contract(
    store: StateStore, check: Callable[[StateStore], Awaitable[None]]
) -> None:
    await check(store)


async def test_runner_passes_for_in_memory_store() -> None:
    await check_state_store(InMemoryStateStore)


async def test_runner_accepts_async_factory_and_closes_stores(tmp_path: Path) -> None:
    made: list[SQLiteStateStore] = []

    async def factory() -> SQLiteStateStore:
        made.append(SQLiteStateStore(tmp_path / f"{len(made)}.db"))
        return made[-1]

    await check_state_store(factory)
    assert len(made) == len(STATE_STORE_CHECKS)


async def test_runner_names_the_failing_check() -> None:
    class ForgetfulStore(InMemoryStateStore):
        async def load_history(self, trace_id: str) -> list:  # type: ignore[override]
            return []

    with pytest.raises(AssertionError, match="'saved_event_round_trips' failed"):
        await check_state_store(ForgetfulStore)


async def test_sqlite_store_passes_reopen_check(tmp_path: Path) -> None:
    await check_state_store_reopen(lambda: SQLiteStateStore(tmp_path / "reopen.db"))


async def test_reopen_check_fails_for_a_store_that_forgets() -> None:
    with pytest.raises(AssertionError, match="expected 3 events, got 0"):
        await check_state_store_reopen(InMemoryStateStore)
