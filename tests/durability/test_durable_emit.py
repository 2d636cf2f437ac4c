"""flow.emit on a durable flow: journaled before it returns, keys, bad payloads, failures."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from durable_support import HeldJournal, bounded, fetch, memory_store, message

from penguiflow import Node, NodePolicy, create
from penguiflow.errors import JournalError, SerializationError
from penguiflow.stores import SQLiteStateStore
from penguiflow.testkit import InMemoryJournal


def gated(gate: asyncio.Event, name: str = "work") -> Node:
    async def work(msg: Any, ctx: Any) -> Any:
        await gate.wait()
        return msg

    return Node(work, name=name, policy=NodePolicy(validate="none"))


async def test_emit_is_journaled_before_it_returns() -> None:
    journal = InMemoryJournal()
    gate = asyncio.Event()
    flow = create(gated(gate).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        sent = message("order")
        await flow.emit(sent)
        (entry,) = (await journal.load()).entries
        assert entry.edge == "OpenSea->work"
        assert entry.trace_id == sent.trace_id
        assert entry.decode() == sent
        gate.set()
        assert await fetch(flow) == sent
    finally:
        await flow.stop()


async def test_a_known_idempotency_key_does_nothing() -> None:
    journal = InMemoryJournal()
    gate = asyncio.Event()
    flow = create(gated(gate).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        await flow.emit(message("first"), idempotency_key="order-17")
        await flow.emit(message("again"), idempotency_key="order-17")
        assert [e.decode().payload for e in (await journal.load()).entries] == ["first"]
        gate.set()
        assert (await fetch(flow)).payload == "first"
        await bounded(flow.wait_idle())
        assert flow.mailboxes()["Rookery"].depth == 0
        assert flow.context(flow.nodes[0]).queue_depth_in() == 0
    finally:
        await flow.stop()


async def test_an_unencodable_payload_raises_and_journals_nothing() -> None:
    journal = InMemoryJournal()
    flow = create(gated(asyncio.Event()).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        with pytest.raises(SerializationError):
            await flow.emit(message(object()), idempotency_key="bad")
        snapshot = await journal.load()
        assert snapshot.entries == ()
        assert snapshot.traces == ()
        assert flow.mailboxes()["work"].depth == 0
    finally:
        await flow.stop()


async def test_a_failing_journal_fails_the_emit() -> None:
    journal = HeldJournal()
    journal.fail_accepts = JournalError("disk gone")
    flow = create(gated(asyncio.Event()).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        with pytest.raises(JournalError, match="disk gone"):
            await flow.emit(message())
        assert flow.mailboxes()["work"].depth == 0
    finally:
        await flow.stop()


async def test_concurrent_emits_share_commits(tmp_path: Path) -> None:
    async with SQLiteStateStore(tmp_path / "runs.db") as store:
        gate = asyncio.Event()
        flow = create(gated(gate).to(), state_store=store, durable=True, queue_maxsize=0)
        flow.run()
        try:
            before = store.journal.statistics()
            await bounded(asyncio.gather(*(flow.emit(message(i)) for i in range(64))))
            after = store.journal.statistics()
            writes = after.writes - before.writes
            commits = after.commits - before.commits
            assert writes >= 64  # the emits, and the events the store saves too
            assert commits * 4 <= writes  # group commit: many emits per transaction
            assert len((await store.journal.load()).entries) == 64
            gate.set()
            got = sorted([(await fetch(flow)).payload for _ in range(64)])
            assert got == list(range(64))
        finally:
            await flow.stop()


async def test_an_emit_for_a_cancelled_trace_puts_nothing() -> None:
    journal = InMemoryJournal()
    gate = asyncio.Event()
    flow = create(gated(gate).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        first = message("a")
        await flow.emit(first)
        assert await flow.cancel(first.trace_id) is True
        await flow.emit(message("b", trace_id=first.trace_id))
        assert (await journal.load()).entries == ()
        assert flow.mailboxes()["work"].depth == 0
    finally:
        await flow.stop()


async def test_emit_of_a_too_deep_payload_raises_and_journals_nothing() -> None:
    journal = InMemoryJournal()
    flow = create(gated(asyncio.Event()).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    deep: list[Any] = []
    cur = deep
    for _ in range(10_000):
        cur.append([])
        cur = cur[0]
    try:
        with pytest.raises(SerializationError, match="nested too deeply"):
            await flow.emit(message(deep), idempotency_key="deep")
        snapshot = await journal.load()
        assert snapshot.entries == ()
        assert snapshot.traces == ()
    finally:
        await flow.stop()
