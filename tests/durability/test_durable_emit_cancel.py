"""A cancelled durable emit whose input the journal stored still reaches its edge.

Otherwise the trace would sit in the journal unrun until a restart, and a re-send
with the same idempotency key (a no-op) would never be answered.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from durable_support import bounded, fetch, memory_store, message, until

from penguiflow import Node, NodePolicy, create
from penguiflow.testkit import InMemoryJournal


class SlowAcceptJournal(InMemoryJournal):
    """An ``InMemoryJournal`` whose ``accept`` stores once ``release`` is set.

    Like a real journal's write already on its way (a SQLite commit, a Redis
    script), the store happens even if the caller stops waiting for it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.writes: set[asyncio.Task[Any]] = set()

    async def accept(self, inputs: Any) -> Any:
        self.entered.set()
        write = asyncio.ensure_future(self._store(inputs))
        self.writes.add(write)
        return await asyncio.shield(write)

    async def _store(self, inputs: Any) -> Any:
        await self.release.wait()
        return await super().accept(inputs)


class CountingJournal(InMemoryJournal):
    """An ``InMemoryJournal`` that counts the inputs it stored."""

    def __init__(self) -> None:
        super().__init__()
        self.accepted = 0

    async def accept(self, inputs: Any) -> Any:
        done = await super().accept(inputs)
        self.accepted += len(done)
        return done


def gated(gate: asyncio.Event) -> Node:
    async def work(msg: Any, ctx: Any) -> Any:
        await gate.wait()
        return msg

    return Node(work, name="work", policy=NodePolicy(validate="none"))


async def nothing_more(flow: Any) -> None:
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(flow.fetch(), 0.2)


async def test_an_emit_cancelled_while_journaling_is_answered_once() -> None:
    journal = SlowAcceptJournal()
    gate = asyncio.Event()
    gate.set()
    flow = create(gated(gate).to(), state_store=memory_store(journal), durable=True)
    flow.run()
    try:
        sent = message("order")
        emit = asyncio.ensure_future(flow.emit(sent, idempotency_key="order-17"))
        await bounded(journal.entered.wait())
        emit.cancel()
        await asyncio.sleep(0)  # the cancellation reaches the emit first
        journal.release.set()  # then the journal stores the input
        with pytest.raises(asyncio.CancelledError):
            await bounded(emit)
        await bounded(flow.emit(sent, idempotency_key="order-17"))  # a re-send: no-op
        assert await fetch(flow) == sent
        await nothing_more(flow)
    finally:
        await flow.stop()


async def test_an_emit_cancelled_while_waiting_for_room_is_answered_once() -> None:
    gate = asyncio.Event()
    journal = CountingJournal()
    flow = create(
        gated(gate).to(), state_store=memory_store(journal), durable=True, queue_maxsize=1
    )
    flow.run()
    try:
        first, second, third = message("a"), message("b"), message("c")
        await bounded(flow.emit(first))  # in hand, the node waits on the gate
        await until(lambda: flow.mailboxes()["work"].depth == 0)
        await bounded(flow.emit(second))  # fills the edge
        emit = asyncio.ensure_future(flow.emit(third, idempotency_key="c"))
        await until(lambda: journal.accepted == 3)  # journaled, waiting for room
        await asyncio.sleep(0)
        assert not emit.done()
        emit.cancel()
        with pytest.raises(asyncio.CancelledError):
            await bounded(emit)
        await bounded(flow.emit(third, idempotency_key="c"))  # a re-send: no-op
        gate.set()
        got = [await fetch(flow) for _ in range(3)]
        assert sorted(m.payload for m in got) == ["a", "b", "c"]
        await nothing_more(flow)
    finally:
        await flow.stop()
