"""Event history of a durable flow: on its journal's own SQLite store, saved with each step."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

from durable_support import bounded, fetch, message, until

from penguiflow import Node, NodePolicy, create
from penguiflow.state import StoredEvent
from penguiflow.stores import SQLiteStateStore


def passing(name: str, calls: list[Any] | None = None) -> Node:
    async def work(msg: Any, ctx: Any) -> Any:
        if calls is not None:
            calls.append(msg.payload)
        return msg

    return Node(work, name=name, policy=NodePolicy(validate="none"))


def gated(started: asyncio.Event, gate: asyncio.Event) -> Node:
    async def work(msg: Any, ctx: Any) -> Any:
        started.set()
        await gate.wait()
        return msg

    return Node(work, name="work", policy=NodePolicy(validate="none"))


async def test_a_steps_events_share_its_commit(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "runs.db")
    first, second = passing("first"), passing("second")
    flow = create(first.to(second), second.to(), state_store=store, durable=True)
    flow.run()
    try:
        sent = message("x")
        await flow.emit(sent)
        assert await fetch(flow) == sent
        # One write each: the emit, two steps (with their events), the delivery mark.
        assert store.journal.statistics().writes == 4
        history = [(e.kind, e.node_name) for e in await store.load_history(sent.trace_id)]
        assert history == [
            ("node_start", "first"),
            ("node_success", "first"),
            ("node_start", "second"),
            ("node_success", "second"),
        ]
    finally:
        await flow.stop()
        await store.close()


async def test_a_steps_events_are_stored_when_it_commits(tmp_path: Path) -> None:
    store = SQLiteStateStore(tmp_path / "runs.db")
    started, gate = asyncio.Event(), asyncio.Event()
    flow = create(gated(started, gate).to(), state_store=store, durable=True)
    flow.run()
    try:
        sent = message("x")
        await flow.emit(sent)
        await bounded(started.wait())  # node_start is emitted: it waits in the step
        assert await store.load_history(sent.trace_id) == []
        gate.set()
        assert await fetch(flow) == sent
        kinds = [e.kind for e in await store.load_history(sent.trace_id)]
        assert kinds == ["node_start", "node_success"]
    finally:
        await flow.stop()
        await store.close()


class _Recording:
    """A state store of its own whose journal is another (SQLite) store's."""

    def __init__(self, journal: Any) -> None:
        self.journal = journal
        self.saved: list[StoredEvent] = []

    async def save_event(self, event: StoredEvent) -> None:
        self.saved.append(event)

    async def load_history(self, trace_id: str) -> list[StoredEvent]:
        return [e for e in self.saved if e.trace_id == trace_id]

    async def save_remote_binding(self, binding: Any) -> None:
        return None


async def test_events_of_another_store_are_saved_as_they_happen(tmp_path: Path) -> None:
    sqlite_store = SQLiteStateStore(tmp_path / "runs.db")
    store = _Recording(sqlite_store.journal)
    started, gate = asyncio.Event(), asyncio.Event()
    flow = create(gated(started, gate).to(), state_store=store, durable=True)
    flow.run()
    try:
        await flow.emit(message("x"))
        await bounded(started.wait())
        assert [e.kind for e in store.saved] == ["node_start"]  # before the step commits
        gate.set()
        await fetch(flow)
        assert [e.kind for e in store.saved] == ["node_start", "node_success"]
    finally:
        await flow.stop()
        await sqlite_store.close()


async def test_an_event_write_that_fails_fails_the_step(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteStateStore(path)
    await store.journal.load()  # the file and its tables exist
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TRIGGER no_events BEFORE INSERT ON penguiflow_events "
            "BEGIN SELECT RAISE(ABORT, 'events refused'); END"
        )
    calls: list[Any] = []
    flow = create(passing("work", calls).to(), state_store=store, durable=True)
    flow.run()
    try:
        await flow.emit(message("x"))
        await until(lambda: len(calls) >= 2)  # the step failed: the item ran again
        await bounded(flow.wait_idle())
        snapshot = await store.journal.load()
        assert len(snapshot.entries) == 1  # not consumed: it runs again after recover()
        assert snapshot.rookery == ()  # nothing was released
    finally:
        await flow.stop()
        await store.close()
