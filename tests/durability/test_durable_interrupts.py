"""ctx.interrupt on a durable flow: a parked trace survives a restart.

As in test_durable_recover, flow A is stopped with a trace parked (what a crash
leaves: the journal keeps the entry and the interrupt) and flow B, built anew on
a new store over the same journal, recovers. B holds the parked entry off its
edge until ``resume``, which runs the node again from the top with
``ctx.interrupt`` returning the stored value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest
from durable_support import bounded, fetch, memory_store, message, until

from penguiflow import Interrupt, Node, NodePolicy, PenguiFlow, create
from penguiflow.errors import InterruptTokenError
from penguiflow.testkit import InMemoryJournal
from penguiflow.types import Message

Reopen = Callable[[], Any]
NONE = NodePolicy(validate="none")


def asking(calls: list[Any], *, after: asyncio.Event | None = None) -> Node:
    """Asks for a number, then (if ``after``) waits for it, then adds the number."""

    async def ask(msg: Message, ctx: Any) -> Message:
        calls.append(msg.payload)
        answer = await ctx.interrupt({"question": msg.payload})
        if after is not None:
            await after.wait()
        return msg.model_copy(update={"payload": msg.payload + answer})

    return Node(ask, name="ask", policy=NONE)


def passing(name: str = "after") -> Node:
    async def through(msg: Message, ctx: Any) -> Message:
        return msg

    return Node(through, name=name, policy=NONE)


def flow_on(store: Any, node: Node) -> PenguiFlow:
    after = passing()
    return create(node.to(after), after.to(), state_store=store, durable=True)


async def start(flow: PenguiFlow) -> list[str]:
    flow.run()
    return await bounded(flow.recover())


async def parked_notice(flow: PenguiFlow) -> Interrupt:
    item = await fetch(flow)
    assert isinstance(item, Interrupt)
    return item


async def test_a_parked_trace_resumes_in_a_new_process(reopen: Reopen) -> None:
    store_a = reopen()
    a = flow_on(store_a, asking([]))
    await start(a)
    sent = message(10)
    await a.emit(sent, idempotency_key="k")
    notice = await parked_notice(a)
    await a.stop()

    store_b = reopen()
    calls: list[Any] = []
    b = flow_on(store_b, asking(calls))
    assert await start(b) == [sent.trace_id]
    try:
        assert await store_b.journal.parked_traces() == [sent.trace_id]
        assert calls == []  # parked: the node does not run again before resume
        await b.emit(sent, idempotency_key="k")  # a re-sent input is a duplicate
        await bounded(b.resume(notice.token, 5))
        result = await fetch(b)
        assert (result.trace_id, result.payload) == (sent.trace_id, 15)
        assert calls == [10]  # run again from the top, once
        await until(lambda: not b.mailboxes()["Rookery"].depth)
        assert await store_b.journal.unfinished_traces() == []
        assert await store_b.journal.parked_traces() == []
    finally:
        await b.stop()


async def test_an_unfetched_interrupt_is_delivered_after_recover(reopen: Reopen) -> None:
    store_a = reopen()
    a = flow_on(store_a, asking([]))
    await start(a)
    sent = message(1)
    await a.emit(sent)
    await until(lambda: bool(a.mailboxes()["Rookery"].depth))  # journaled, not fetched
    await a.stop()

    b = flow_on(reopen(), asking([]))
    await start(b)
    try:
        notice = await parked_notice(b)
        assert (notice.trace_id, notice.node, notice.payload) == (
            sent.trace_id,
            "ask",
            {"question": 1},
        )
        await bounded(b.resume(notice.token, 2))
        assert (await fetch(b)).payload == 3
    finally:
        await b.stop()


async def test_a_value_resumed_before_the_crash_is_returned_again(reopen: Reopen) -> None:
    store_a = reopen()
    never = asyncio.Event()  # flow A dies after the resume, before the step commits
    a = flow_on(store_a, asking([], after=never))
    await start(a)
    sent = message(100)
    await a.emit(sent)
    notice = await parked_notice(a)
    await bounded(a.resume(notice.token, 7))
    await a.stop()

    calls: list[Any] = []
    b = flow_on(reopen(), asking(calls))
    await start(b)
    try:
        result = await fetch(b)  # no new Interrupt: the stored answer is replayed
        assert (result.trace_id, result.payload) == (sent.trace_id, 107)
        assert calls == [100]
    finally:
        await b.stop()


async def test_a_recovered_parked_trace_can_be_cancelled(reopen: Reopen) -> None:
    store_a = reopen()
    a = flow_on(store_a, asking([]))
    await start(a)
    sent = message(1)
    await a.emit(sent)
    notice = await parked_notice(a)
    await a.stop()

    store_b = reopen()
    b = flow_on(store_b, asking([]))
    await start(b)
    try:
        assert await b.cancel(sent.trace_id) is True
        with pytest.raises(InterruptTokenError):
            await bounded(b.resume(notice.token, 1))
        assert await store_b.journal.unfinished_traces() == []
    finally:
        await b.stop()


async def test_in_one_process_a_durable_interrupt_continues_the_node() -> None:
    journal = InMemoryJournal()
    calls: list[Any] = []
    flow = flow_on(memory_store(journal), asking(calls))
    await start(flow)
    try:
        first, second = message(1), message(2)
        await flow.emit(first)
        notice = await parked_notice(flow)
        await flow.emit(second)  # the node is free while `first` waits
        second_notice = await parked_notice(flow)
        assert await journal.parked_traces() == [first.trace_id, second.trace_id]
        await bounded(flow.resume(notice.token, 10))
        assert (await fetch(flow)).payload == 11
        await bounded(flow.resume(second_notice.token, 20))
        assert (await fetch(flow)).payload == 22
        assert calls == [1, 2]  # continued, not run again
        await until(lambda: not flow.mailboxes()["Rookery"].depth)
        assert (await journal.load()).interrupts == ()  # both used
        assert await journal.unfinished_traces() == []
        with pytest.raises(InterruptTokenError):
            await flow.resume(notice.token, 1)
    finally:
        await flow.stop()


async def test_a_durable_trace_parked_at_stop_resumes_after_the_next_run() -> None:
    journal = InMemoryJournal()
    calls: list[Any] = []
    flow = flow_on(memory_store(journal), asking(calls))
    await start(flow)
    try:
        sent = message(3)
        await flow.emit(sent)
        notice = await parked_notice(flow)
        await flow.stop()
        flow.run()
        await bounded(flow.resume(notice.token, 4))
        result = await fetch(flow)
        assert (result.trace_id, result.payload) == (sent.trace_id, 7)
        assert calls == [3, 3]  # the node ran again from the top after the stop
    finally:
        await flow.stop()


async def test_a_recovered_parked_trace_is_listed_without_a_time(reopen: Reopen) -> None:
    from penguiflow import hosting

    a = flow_on(reopen(), asking([]))
    await start(a)
    sent = message(10)
    await a.emit(sent)
    notice = await parked_notice(a)
    await a.stop()

    b = flow_on(reopen(), asking([]))
    await start(b)
    try:
        (entry,) = hosting.parked_interrupts(b)
        assert (entry.trace_id, entry.node, entry.payload, entry.token, entry.since) == (
            sent.trace_id,
            "ask",
            {"question": 10},
            notice.token,
            None,
        )
        await bounded(b.resume(notice.token, 5))
        assert hosting.parked_interrupts(b) == []
        assert (await fetch(b)).payload == 15
    finally:
        await b.stop()


async def test_a_durable_trace_kept_by_stop_stays_listed() -> None:
    from penguiflow import hosting

    flow = flow_on(memory_store(), asking([]))
    await start(flow)
    try:
        sent = message(3)
        await flow.emit(sent)
        notice = await parked_notice(flow)
        (before,) = hosting.parked_interrupts(flow)
        await flow.stop()
        (kept,) = hosting.parked_interrupts(flow)
        assert kept == before
        assert (kept.token, kept.trace_id) == (notice.token, sent.trace_id)
        flow.run()
        await bounded(flow.resume(notice.token, 4))
        assert hosting.parked_interrupts(flow) == []
        assert (await fetch(flow)).payload == 7
    finally:
        await flow.stop()


class UnreadablePayloads(InMemoryJournal):
    """Loads interrupts with a payload naming a type this process cannot import."""

    missing = '{"$model":"nowhere.at_all:Missing","$fields":{}}'

    async def load(self) -> Any:
        snapshot = await super().load()
        interrupts = tuple(replace(r, payload=self.missing) for r in snapshot.interrupts)
        return replace(snapshot, interrupts=interrupts)


async def test_a_recovered_interrupt_whose_payload_cannot_be_decoded_shows_its_text() -> None:
    from penguiflow import hosting

    journal = UnreadablePayloads()
    a = flow_on(memory_store(journal), asking([]))
    await start(a)
    await a.emit(message(1))
    notice = await parked_notice(a)
    await a.stop()
    b = flow_on(memory_store(journal), asking([]))
    await start(b)
    try:
        (entry,) = hosting.parked_interrupts(b)
        assert (entry.token, entry.payload) == (notice.token, UnreadablePayloads.missing)
    finally:
        await b.stop()
