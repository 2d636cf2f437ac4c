"""Durable flows at their edges: bare payloads, several ingress nodes, crashes, fetch faults."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from durable_support import bounded, fetch, memory_store, message, until

from penguiflow import Node, NodePolicy, create, hosting
from penguiflow._runtime.durable import current_step
from penguiflow.errors import DurabilityError, JournalError
from penguiflow.journal import Input
from penguiflow.testkit import InMemoryJournal, kill_actor

NONE = NodePolicy(validate="none")
Reopen = Callable[[], Any]


def node(name: str, fn: Callable[[Any, Any], Any]) -> Node:
    return Node(fn, name=name, policy=NONE)


async def test_a_bare_payload_keeps_its_trace_through_the_journal() -> None:
    journal = InMemoryJournal()

    async def unwrap(msg: Any, ctx: Any) -> Any:
        return {"value": msg.payload}

    async def bare(item: Any, ctx: Any) -> Any:
        return {"value": item["value"] + 1}

    flow = create(
        node("unwrap", unwrap).to(node("bare", bare)),
        state_store=memory_store(journal),
        durable=True,
    )
    flow.run()
    try:
        sent = message(1)
        await flow.emit(sent)
        delivery = await bounded(flow.fetch_traced())
        assert delivery.item == {"value": 2}
        assert delivery.trace_id == sent.trace_id
    finally:
        await flow.stop()


async def test_a_recovered_bare_payload_keeps_its_trace(reopen: Reopen) -> None:
    gate = asyncio.Event()
    calls: list[Any] = []

    async def unwrap(msg: Any, ctx: Any) -> Any:
        return {"value": msg.payload}

    async def stuck(item: Any, ctx: Any) -> Any:
        calls.append(item)
        await gate.wait()
        return item

    async def plain(item: Any, ctx: Any) -> Any:
        return item

    a = create(node("unwrap", unwrap).to(node("bare", stuck)), state_store=reopen(), durable=True)
    a.run()
    await bounded(a.recover())
    sent = message(5)
    await a.emit(sent)
    await until(lambda: bool(calls))
    await a.stop()

    b = create(node("unwrap", unwrap).to(node("bare", plain)), state_store=reopen(), durable=True)
    b.run()
    try:
        assert await bounded(b.recover()) == [sent.trace_id]
        delivery = await bounded(b.fetch_traced())
        assert (delivery.item, delivery.trace_id) == ({"value": 5}, sent.trace_id)
    finally:
        await b.stop()


async def test_an_emit_to_several_ingress_nodes_is_one_keyed_input() -> None:
    journal = InMemoryJournal()

    async def ident(msg: Any, ctx: Any) -> Any:
        return msg

    flow = create(
        node("left", ident).to(),
        node("right", ident).to(),
        state_store=memory_store(journal),
        durable=True,
    )
    flow.run()
    try:
        sent = message("x")
        await flow.emit(sent, idempotency_key="k")
        await flow.emit(sent, idempotency_key="k")
        got = [await fetch(flow), await fetch(flow)]
        assert got == [sent, sent]
        (record,) = await journal.traces(include_finished=True)
        assert sorted(record.idempotency_keys) == ["k", "k#OpenSea->right"]
        await bounded(flow.wait_idle())
        assert flow.mailboxes()["Rookery"].depth == 0
    finally:
        await flow.stop()


async def test_a_crashed_node_releases_nothing_of_its_dropped_step() -> None:
    journal = InMemoryJournal()
    gate = asyncio.Event()
    runs: list[int] = []

    async def emitter(msg: Any, ctx: Any) -> None:
        runs.append(len(runs))
        await ctx.emit(msg.model_copy(update={"payload": "early"}))
        if len(runs) == 1:
            await gate.wait()  # killed here: "early" was only in the step
        return None

    async def sink(msg: Any, ctx: Any) -> Any:
        return msg

    flow = create(
        node("emitter", emitter).to(node("sink", sink)),
        state_store=memory_store(journal),
        durable=True,
    )
    flow.run()
    try:
        await flow.emit(message("x"))
        await until(lambda: bool(runs))
        assert kill_actor(flow, "emitter")
        assert (await fetch(flow)).payload == "early"
        await bounded(flow.wait_idle())
        assert runs == [0, 1]
        assert flow.mailboxes()["Rookery"].depth == 0  # once, from the redelivered run
    finally:
        await flow.stop()


class MarkJournal(InMemoryJournal):
    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.fail: BaseException | None = None

    async def mark_delivered(self, rookery_id: int) -> bool:
        self.entered.set()
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return await super().mark_delivered(rookery_id)


async def ident(msg: Any, ctx: Any) -> Any:
    return msg


async def test_a_fetch_whose_mark_fails_leaves_the_item_first() -> None:
    journal = MarkJournal()
    journal.release.set()
    journal.fail = JournalError("disk gone")
    flow = create(node("work", ident).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        sent = message("x")
        await flow.emit(sent)
        with pytest.raises(JournalError, match="disk gone"):
            await fetch(flow)
        journal.fail = None
        assert await fetch(flow) == sent
    finally:
        await flow.stop()


async def test_a_fetch_cancelled_while_marking_keeps_the_item() -> None:
    journal = MarkJournal()
    flow = create(node("work", ident).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        sent = message("x")
        await flow.emit(sent)
        waiting = asyncio.create_task(flow.fetch())
        await bounded(journal.entered.wait())
        waiting.cancel()
        await asyncio.sleep(0)
        journal.release.set()  # the mark commits after the caller gave up
        with pytest.raises(asyncio.CancelledError):
            await bounded(waiting)
        assert await fetch(flow) == sent  # marked, and still handed out once
    finally:
        await flow.stop()


async def test_cancel_of_a_trace_known_only_to_the_journal() -> None:
    journal = InMemoryJournal()
    await journal.accept([Input("OpenSea->work", message("x"), trace_id="t1")])
    flow = create(node("work", ident).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        assert await flow.cancel("t1") is True
        assert await flow.recover() == []
    finally:
        await flow.stop()


async def test_a_journal_from_another_graph_is_refused_whole() -> None:
    journal = InMemoryJournal()
    await journal.accept([Input("OpenSea->gone", message("x"), trace_id="t1")])
    flow = create(node("work", ident).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        with pytest.raises(DurabilityError, match="OpenSea->gone"):
            await flow.recover()
        assert flow.mailboxes()["work"].depth == 0
    finally:
        await flow.stop()


async def test_the_park_seam_journals_the_entry_in_hand() -> None:
    journal = InMemoryJournal()
    parked = asyncio.Event()

    async def asks(msg: Any, ctx: Any) -> None:
        step = current_step()
        assert step is not None
        await step.io.park(step, "tok-1", {"question": "ok?"})
        parked.set()
        await asyncio.Event().wait()

    flow = create(node("asks", asks).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        sent = message("x")
        await flow.emit(sent)
        await bounded(parked.wait())
        assert await journal.parked_traces() == [sent.trace_id]
        (record,) = (await journal.load()).interrupts
        assert (record.node, record.decode_payload()) == ("asks", {"question": "ok?"})
    finally:
        await flow.stop()


async def test_a_step_of_a_trace_cancelled_meanwhile_releases_nothing() -> None:
    journal = InMemoryJournal()
    gate = asyncio.Event()
    calls: list[Any] = []

    async def work(msg: Any, ctx: Any) -> Any:
        calls.append(msg)
        await gate.wait()
        return msg

    flow = create(node("work", work).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        sent = message("x")
        await flow.emit(sent)
        await until(lambda: bool(calls))
        assert await journal.cancel(sent.trace_id) is True  # another process cancelled it
        gate.set()
        await bounded(flow.wait_idle())
        assert flow.mailboxes()["Rookery"].depth == 0
    finally:
        await flow.stop()


async def test_puts_outside_any_step_are_delivered_unjournaled() -> None:
    journal = InMemoryJournal()
    flow = create(node("work", ident).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        await hosting.deliver_to_rookery(flow, message("direct"))
        assert (await bounded(flow.context(hosting.ROOKERY).fetch())).payload == "direct"
        await hosting.inject(flow, 0, message("injected"))
        assert (await bounded(flow.fetch_any())).payload == "injected"
        assert (await journal.load()).traces == ()
    finally:
        await flow.stop()


async def test_a_playbook_runs_inside_a_durable_step() -> None:
    journal = InMemoryJournal()

    async def inner(msg: Any, ctx: Any) -> Any:
        return msg.model_copy(update={"payload": msg.payload * 2})

    def playbook() -> tuple[Any, None]:
        return create(node("inner", inner).to()), None

    async def outer(msg: Any, ctx: Any) -> Any:
        doubled = await ctx.call_playbook(playbook, msg, timeout=10)
        return msg.model_copy(update={"payload": doubled + 1})

    flow = create(node("outer", outer).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        await flow.emit(message(20))
        assert (await fetch(flow)).payload == 41
        assert (await journal.load()).traces == ()
    finally:
        await flow.stop()


async def test_emit_chunk_from_open_sea_on_a_durable_flow_is_refused() -> None:
    flow = create(node("work", ident).to(), state_store=memory_store(), durable=True)
    with pytest.raises(DurabilityError, match="emit_chunk"):
        await flow.emit_chunk(parent=message("x"), text="t")
