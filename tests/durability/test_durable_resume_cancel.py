"""A cancelled durable resume whose value the journal stored still wakes its trace.

The journal marks the token used as it stores the value, so a retry of the
resume is refused: if the cancelled caller left the trace parked, it would wait
for a restart's ``recover()`` (or for ever, with nobody left to resume it).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from durable_support import bounded, fetch, memory_store, message

from penguiflow import Interrupt, Node, NodePolicy, PenguiFlow, create
from penguiflow.errors import InterruptTokenError
from penguiflow.testkit import InMemoryJournal
from penguiflow.types import Message


class SlowResumeJournal(InMemoryJournal):
    """An ``InMemoryJournal`` whose ``resume`` stores once ``release`` is set.

    Like a real journal's write already on its way, the store happens even if
    the caller stops waiting for it. ``slow`` arms it (recovery runs first).
    """

    def __init__(self) -> None:
        super().__init__()
        self.slow = False
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.writes: set[asyncio.Task[Any]] = set()

    async def resume(self, token: str, value: Any) -> Any:
        if not self.slow:
            return await super().resume(token, value)
        self.entered.set()
        write = asyncio.ensure_future(self._store(token, value))
        self.writes.add(write)
        return await asyncio.shield(write)

    async def _store(self, token: str, value: Any) -> Any:
        await self.release.wait()
        return await super().resume(token, value)


def asking() -> Node:
    async def ask(msg: Message, ctx: Any) -> Message:
        answer = await ctx.interrupt({"question": msg.payload})
        return msg.model_copy(update={"payload": msg.payload + answer})

    return Node(ask, name="ask", policy=NodePolicy(validate="none"))


def flow_on(journal: InMemoryJournal) -> PenguiFlow:
    return create(asking().to(), state_store=memory_store(journal), durable=True)


async def cancelled_resume(flow: PenguiFlow, journal: SlowResumeJournal, token: str) -> None:
    """Resume ``token`` with 5; cancel the call while the journal stores the value."""
    journal.slow = True
    call = asyncio.ensure_future(flow.resume(token, 5))
    await bounded(journal.entered.wait())
    call.cancel()
    await asyncio.sleep(0)  # the cancellation reaches the resume first
    journal.release.set()  # then the journal stores the value
    with pytest.raises(asyncio.CancelledError):
        await bounded(call)


async def test_a_resume_cancelled_while_journaling_wakes_the_waiting_node() -> None:
    journal = SlowResumeJournal()
    flow = flow_on(journal)
    flow.run()
    try:
        sent = message(10)
        await bounded(flow.emit(sent))
        notice = await fetch(flow)
        assert isinstance(notice, Interrupt)
        await cancelled_resume(flow, journal, notice.token)
        result = await fetch(flow)
        assert (result.trace_id, result.payload) == (sent.trace_id, 15)
        with pytest.raises(InterruptTokenError):
            await bounded(flow.resume(notice.token, 5))  # used once, by the cancelled call
    finally:
        await flow.stop()


async def test_a_resume_cancelled_while_journaling_releases_a_recovered_item() -> None:
    journal = SlowResumeJournal()
    first = flow_on(journal)
    first.run()
    sent = message(10)
    await bounded(first.emit(sent))
    notice = await fetch(first)
    assert isinstance(notice, Interrupt)
    await first.stop()  # what a crash leaves: the entry parked in the journal

    again = flow_on(journal)
    again.run()
    try:
        assert await bounded(again.recover()) == [sent.trace_id]
        await cancelled_resume(again, journal, notice.token)
        result = await fetch(again)
        assert (result.trace_id, result.payload) == (sent.trace_id, 15)
        assert await journal.parked_traces() == []
    finally:
        await again.stop()
