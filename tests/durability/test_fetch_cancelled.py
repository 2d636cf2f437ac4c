"""A fetch cancelled while it marks an item delivered loses nothing.

``fetch()`` marks a Rookery item delivered in the journal before returning it. When
the fetch is cancelled during that mark, the item must stay in Rookery for the next
fetch (already marked or not): it was returned to no one. The mark is held open by
a journal whose ``mark_delivered`` waits for a gate, so the cancellations land inside
it deterministically.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from durable_support import bounded, memory_store, message

from penguiflow import Node, NodePolicy, PenguiFlow, create
from penguiflow.errors import JournalError
from penguiflow.testkit import InMemoryJournal


class GatedMarks(InMemoryJournal):
    """An ``InMemoryJournal`` whose ``mark_delivered`` waits for ``release``."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.fail_marks: BaseException | None = None

    async def mark_delivered(self, rookery_id: int) -> bool:
        self.entered.set()
        await self.release.wait()
        if self.fail_marks is not None:
            raise self.fail_marks
        return await super().mark_delivered(rookery_id)


async def _echo(msg: Any, ctx: Any) -> Any:
    return msg


@pytest.fixture
async def gated() -> AsyncIterator[tuple[PenguiFlow, GatedMarks]]:
    journal = GatedMarks()
    node = Node(_echo, name="echo", policy=NodePolicy(validate="none"))
    flow = create(node.to(), state_store=memory_store(journal), durable=True)
    flow.run()
    await flow.recover()
    try:
        yield flow, journal
    finally:
        journal.release.set()
        await flow.stop()


async def _cancel_during_mark(flow: PenguiFlow, journal: GatedMarks, times: int) -> None:
    """Start a fetch, cancel it ``times`` times while its mark waits, then let it end."""
    await flow.emit(message("order-1"))
    fetching = asyncio.ensure_future(flow.fetch())
    await bounded(journal.entered.wait())
    for _ in range(times):
        fetching.cancel()
        # Let the fetch take the cancellation (and enter whatever it does about it).
        for _ in range(3):
            await asyncio.sleep(0)
    journal.release.set()
    with pytest.raises(asyncio.CancelledError):
        await bounded(fetching)


async def test_a_fetch_cancelled_once_during_the_mark_leaves_the_item_for_the_next(
    gated: tuple[PenguiFlow, GatedMarks],
) -> None:
    flow, journal = gated
    await _cancel_during_mark(flow, journal, times=1)
    assert (await bounded(flow.fetch())).payload == "order-1"


async def test_a_fetch_cancelled_twice_during_the_mark_leaves_the_item_for_the_next(
    gated: tuple[PenguiFlow, GatedMarks],
) -> None:
    """A second cancellation arrives while the fetch waits for the mark it shielded."""
    flow, journal = gated
    await _cancel_during_mark(flow, journal, times=2)
    assert (await bounded(flow.fetch())).payload == "order-1"


async def test_a_fetch_cancelled_during_a_mark_that_fails_leaves_the_item_for_the_next(
    gated: tuple[PenguiFlow, GatedMarks],
) -> None:
    """The mark fails (nothing stored) after the cancellation: the item was returned to
    no one and is not marked, so the next fetch, once the journal works, returns it."""
    flow, journal = gated
    journal.fail_marks = JournalError("disk full")
    await _cancel_during_mark(flow, journal, times=1)
    journal.fail_marks = None
    assert (await bounded(flow.fetch())).payload == "order-1"
