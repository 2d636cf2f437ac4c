"""Shared pieces of the durable-flow tests: stores, gates, messages, bounded waits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from penguiflow import PenguiFlow
from penguiflow.testkit import InMemoryJournal, InMemoryStateStore
from penguiflow.types import Headers, Message

WAIT_S = 10.0


def message(payload: Any = 1, **kwargs: Any) -> Message:
    return Message(payload=payload, headers=Headers(tenant="t"), **kwargs)


def memory_store(journal: InMemoryJournal | None = None) -> InMemoryStateStore:
    """An in-memory state store whose ``journal`` is an ``InMemoryJournal``."""
    store = InMemoryStateStore()
    store.journal = journal if journal is not None else InMemoryJournal()  # type: ignore[attr-defined]
    return store


async def fetch(flow: PenguiFlow) -> Any:
    async with asyncio.timeout(WAIT_S):
        return await flow.fetch()


async def fetch_all(flow: PenguiFlow, count: int) -> list[Any]:
    return [await fetch(flow) for _ in range(count)]


async def until(predicate: Callable[[], bool]) -> None:
    """Wait (bounded) until ``predicate()`` holds, one loop turn at a time."""
    async with asyncio.timeout(WAIT_S):
        while not predicate():
            await asyncio.sleep(0)


async def bounded(awaitable: Awaitable[Any]) -> Any:
    async with asyncio.timeout(WAIT_S):
        return await awaitable


class HeldJournal(InMemoryJournal):
    """An ``InMemoryJournal`` whose ``commit_step`` waits for ``release`` (or fails)."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.entered = asyncio.Event()
        self.fail_commits: BaseException | None = None
        self.fail_accepts: BaseException | None = None
        self.commits = 0

    async def accept(self, inputs: Any) -> Any:
        if self.fail_accepts is not None:
            raise self.fail_accepts
        return await super().accept(inputs)

    async def commit_step(self, trace_id: Any, **kwargs: Any) -> Any:
        self.entered.set()
        await self.release.wait()
        if self.fail_commits is not None:
            raise self.fail_commits
        self.commits += 1
        return await super().commit_step(trace_id, **kwargs)
