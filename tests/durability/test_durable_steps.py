"""Steps: a node's outputs are journaled with its input's consumption before anyone sees them."""

from __future__ import annotations

import asyncio
from typing import Any

from durable_support import HeldJournal, bounded, fetch, fetch_all, memory_store, message, until

from penguiflow import Node, NodePolicy, create
from penguiflow.errors import JournalError
from penguiflow.metrics import FlowEvent
from penguiflow.testkit import InMemoryJournal
from penguiflow.types import Message


def passing(name: str, seen: list[Any] | None = None) -> Node:
    async def work(msg: Any, ctx: Any) -> Any:
        if seen is not None:
            seen.append(msg.payload)
        return msg

    return Node(work, name=name, policy=NodePolicy(validate="none"))


async def test_outputs_are_invisible_downstream_until_the_step_commits() -> None:
    journal = HeldJournal()
    seen: list[Any] = []
    first, second = passing("first"), passing("second", seen)
    flow = create(first.to(second), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        await flow.emit(message("x"))
        await bounded(journal.entered.wait())  # first's step is committing, held
        for _ in range(5):
            await asyncio.sleep(0)
        assert seen == []
        assert flow.mailboxes()["second"].depth == 0
        journal.release.set()
        assert (await fetch(flow)).payload == "x"
        assert seen == ["x"]
    finally:
        await flow.stop()


async def test_a_step_journals_its_outputs_with_the_consumption() -> None:
    journal = HeldJournal()
    first, second = passing("first"), passing("second")
    flow = create(first.to(second), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        sent = message("x")
        await flow.emit(sent)
        journal.release.set()
        await until(lambda: journal.commits >= 1)
        await bounded(flow.wait_idle())
        snapshot = await journal.load()
        assert [r.decode() for r in snapshot.rookery] == [sent]  # second's final, unfetched
        assert snapshot.entries == ()
        assert await fetch(flow) == sent
        assert (await journal.load()).traces == ()  # delivered: settled
    finally:
        await flow.stop()


async def test_a_failing_commit_fails_the_hop_visibly() -> None:
    journal = HeldJournal()
    journal.fail_commits = JournalError("disk gone")
    journal.release.set()
    calls: list[Any] = []
    failures: list[FlowEvent] = []

    async def watch(event: FlowEvent) -> None:
        if event.event_type == "node_failed":
            failures.append(event)

    work = passing("work", calls)
    flow = create(work.to(), state_store=memory_store(journal), durable=True, middlewares=[watch])
    flow.run()
    try:
        await flow.emit(message("x"))
        await until(lambda: bool(failures))
        # The step crashed the node; the redelivered item ran again and failed.
        assert calls == ["x", "x"]
        assert failures[0].extra["flow_error"]["metadata"]["reason"] == "crashed"
        assert "disk gone" in failures[0].extra["exception"]
        assert flow.mailboxes()["Rookery"].depth == 0  # nothing was released
        assert len((await journal.load()).entries) == 1  # still journaled: runs again
    finally:
        await flow.stop()


async def test_retry_attempts_are_journaled() -> None:
    journal = InMemoryJournal()
    attempts: list[int] = []
    holds: list[int] = []
    release = asyncio.Event()

    async def flaky(msg: Any, ctx: Any) -> Any:
        attempts.append(len(attempts))
        if len(attempts) < 3:
            raise RuntimeError("try again")
        (entry,) = (await journal.load()).entries
        holds.append(entry.attempt)
        await release.wait()
        return msg

    node = Node(
        flaky, name="flaky", policy=NodePolicy(validate="none", max_retries=3, backoff_base=0)
    )
    flow = create(node.to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        await flow.emit(message("x"))
        await until(lambda: bool(holds))
        assert holds == [2]
        (entry,) = (await journal.load()).entries
        assert entry.holder == "flaky"
        release.set()
        assert (await fetch(flow)).payload == "x"
    finally:
        await flow.stop()


async def test_stream_chunks_are_journaled_in_order() -> None:
    journal = InMemoryJournal()

    async def stream(msg: Message, ctx: Any) -> None:
        for index in range(3):
            await ctx.emit_chunk(parent=msg, text=f"c{index}", done=index == 2)

    node = Node(stream, name="stream", policy=NodePolicy(validate="none"))
    flow = create(node.to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        await flow.emit(message("x"))
        await bounded(flow.wait_idle())
        texts = [r.decode().payload.text for r in (await journal.load()).rookery]
        assert texts == ["c0", "c1", "c2"]
        assert [m.payload.text for m in await fetch_all(flow, 3)] == texts
    finally:
        await flow.stop()


def test_a_flow_that_is_not_durable_keeps_the_direct_path() -> None:
    plain = create(passing("a").to())
    durable = create(passing("b").to(), state_store=memory_store(), durable=True)
    assert plain._run.io.direct is True  # noqa: SLF001 - white-box: the hot-path flag
    assert durable._run.io.direct is False  # noqa: SLF001 - white-box: the hot-path flag


async def test_stop_keeps_a_journaled_item_in_hand_for_the_next_run() -> None:
    gate = asyncio.Event()
    calls: list[Any] = []

    async def work(msg: Any, ctx: Any) -> Any:
        calls.append(msg.payload)
        await gate.wait()
        return msg

    node = Node(work, name="work", policy=NodePolicy(validate="none"))
    flow = create(node.to(), state_store=memory_store(), durable=True)
    flow.run()
    sent = message("x")
    await flow.emit(sent)
    await until(lambda: bool(calls))
    await flow.stop()
    assert flow.mailboxes()["work"].depth == 1
    gate.set()
    flow.run()
    try:
        assert await fetch(flow) == sent
        assert calls == ["x", "x"]  # handled again from its first line
    finally:
        await flow.stop()


async def test_mailbox_snapshots_show_the_items_not_the_journal_wrappers() -> None:
    gate = asyncio.Event()
    calls: list[Any] = []

    async def work(msg: Any, ctx: Any) -> Any:
        calls.append(msg)
        await gate.wait()
        return msg

    node = Node(work, name="work", policy=NodePolicy(validate="none"))
    flow = create(node.to(), state_store=memory_store(), durable=True)
    flow.run()
    try:
        first, second = message("a"), message("b")
        await flow.emit(first)
        await flow.emit(second)
        await until(lambda: bool(calls))
        assert flow.mailboxes()["work"].items == (second,)
        gate.set()
        await fetch_all(flow, 2)
    finally:
        await flow.stop()
