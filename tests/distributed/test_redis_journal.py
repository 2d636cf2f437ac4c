"""RedisJournal passes the journal contract suite, like the SQLite journal and the fake."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from penguiflow.distributed import RedisStateStore
from penguiflow.errors import JournalError
from penguiflow.journal import Input, Journal, journal_of
from penguiflow.testkit import JOURNAL_CHECKS, check_journal_reopen

pytestmark = pytest.mark.redis


@pytest.fixture
async def store(redis_url: str, namespace: str) -> AsyncIterator[RedisStateStore]:
    made = RedisStateStore(redis_url, namespace=namespace)
    try:
        yield made
    finally:
        await made.clear()
        await made.close()


@pytest.mark.parametrize("check", list(JOURNAL_CHECKS.values()), ids=list(JOURNAL_CHECKS))
async def test_journal_contract(
    store: RedisStateStore, check: Callable[[Journal], Awaitable[None]]
) -> None:
    await check(store.journal)


async def test_reopen_check(redis_url: str, namespace: str) -> None:
    try:
        await check_journal_reopen(lambda: RedisStateStore(redis_url, namespace=namespace))
    finally:
        cleanup = RedisStateStore(redis_url, namespace=namespace)
        await cleanup.clear()
        await cleanup.close()


async def test_journal_of_a_redis_store_is_its_journal(store: RedisStateStore) -> None:
    assert journal_of(store) is store.journal
    assert repr(store.journal) == f"RedisJournal(prefix='{store.namespace}:journal:')"


async def test_deadlines_keep_full_precision(store: RedisStateStore) -> None:
    deadline = 1_733_222_111.123456
    await store.journal.accept([Input("in", 1, trace_id="t", deadline=deadline)])
    (entry,) = (await store.journal.load()).entries
    assert entry.deadline == deadline


async def test_an_unreachable_server_is_a_journal_error() -> None:
    store = RedisStateStore("redis://127.0.0.1:1/0")
    with pytest.raises(JournalError, match="nothing of it was stored"):
        await store.journal.accept([Input("in", 1)])
    await store.close()
