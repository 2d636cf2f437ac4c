"""Fixtures of the durable-flow tests: one journal shared by successive "processes".

``reopen`` opens a new store on the same journal each call, as a restarted
process would: the testkit's ``InMemoryJournal`` and a SQLite file always, a Redis namespace when
``PENGUIFLOW_TEST_REDIS_URL`` names a server (else that variant skips, or fails
under ``CI``, as in tests/distributed).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

REDIS_ENV = "PENGUIFLOW_TEST_REDIS_URL"


def _redis_url() -> str:
    url = os.environ.get(REDIS_ENV)
    if url:
        return url
    if os.environ.get("CI"):
        pytest.fail(f"{REDIS_ENV} is not set under CI: the redis tests must run")
    pytest.skip(f"{REDIS_ENV} is not set: no redis-server for this run (scripts/redis.sh)")


@pytest.fixture(params=["memory", "sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def reopen(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], Any]]:
    """A factory of stores on one journal; every store it made is closed at the end."""
    opened: list[Any] = []
    if request.param == "memory":
        from durable_support import memory_store

        from penguiflow.testkit import InMemoryJournal

        journal = InMemoryJournal()

        def make() -> Any:
            return memory_store(journal)  # a new store, the same (in-memory) journal
    elif request.param == "sqlite":
        from penguiflow.stores import SQLiteStateStore

        path = tmp_path / "runs.db"

        def make() -> Any:
            store = SQLiteStateStore(path)
            opened.append(store)
            return store
    else:
        from penguiflow.distributed import RedisStateStore

        url = _redis_url()
        namespace = f"pftest-{uuid.uuid4().hex[:12]}"

        def make() -> Any:
            store = RedisStateStore(url, namespace=namespace)
            opened.append(store)
            return store

    try:
        yield make
    finally:
        if request.param == "redis" and opened:
            await opened[-1].clear()
        for store in opened:
            await store.close()
