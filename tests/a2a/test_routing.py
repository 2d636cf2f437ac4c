"""RookeryRouter: which request gets which Rookery item."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from penguiflow_a2a._routing import CANCELLED, SHUTDOWN, DispatchFailed, RookeryRouter


class Record:
    def __init__(self, item: Any, trace_id: str | None) -> None:
        self.item = item
        self.trace_id = trace_id


class TracedFlow:
    """Offers ``fetch_traced``: items come from a queue the test fills."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Record] = asyncio.Queue()

    async def fetch_traced(self) -> Record:
        return await self.queue.get()


class PlainFlow:
    """Only ``fetch``: items are routed by their own ``trace_id``."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    async def fetch(self) -> Any:
        return await self.queue.get()


class Item:
    def __init__(self, trace_id: str) -> None:
        self.trace_id = trace_id


async def get(inbox: asyncio.Queue[Any]) -> Any:
    async with asyncio.timeout(5):
        return await inbox.get()


@pytest.fixture
async def traced() -> Any:
    flow = TracedFlow()
    router = RookeryRouter(flow, hold_limit=2, finished_limit=1)
    router.start()
    yield flow, router
    await router.stop()


async def test_items_reach_their_trace_inbox(traced: Any) -> None:
    flow, router = traced
    a, b = router.register("a"), router.register("b")
    flow.queue.put_nowait(Record({"x": 2}, "b"))
    flow.queue.put_nowait(Record({"x": 1}, "a"))
    assert await get(b) == {"x": 2}
    assert await get(a) == {"x": 1}


async def test_items_for_unregistered_traces_are_held_until_registration() -> None:
    router = RookeryRouter(PlainFlow())
    router.route("late", "item")
    assert (await get(router.register("late"))) == "item"


async def test_hold_limit_drops_the_oldest_held_item() -> None:
    router = RookeryRouter(PlainFlow(), hold_limit=2)
    for index in range(3):
        router.route("t", index)
    inbox = router.register("t")
    assert [inbox.get_nowait(), inbox.get_nowait()] == [1, 2]
    assert inbox.empty()


async def test_items_of_finished_traces_are_dropped() -> None:
    router = RookeryRouter(PlainFlow(), finished_limit=1)
    router.register("old")
    router.unregister("old")
    router.route("old", "late item")
    assert router.register("old").empty()


async def test_finished_memory_is_bounded() -> None:
    router = RookeryRouter(PlainFlow(), finished_limit=1)
    for trace in ("a", "b"):
        router.register(trace)
        router.unregister(trace)
    router.route("a", "held again")  # "a" was forgotten: held, not dropped
    assert router.register("a").get_nowait() == "held again"


async def test_unregistering_twice_is_harmless() -> None:
    router = RookeryRouter(PlainFlow())
    router.unregister("never")
    router.register("t")
    router.unregister("t")
    router.unregister("t")
    router.route("t", "x")
    assert router.register("t").empty()


async def test_without_fetch_traced_items_are_routed_by_their_trace_id(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flow = PlainFlow()
    router = RookeryRouter(flow)
    router.start()
    try:
        first, second = router.register("a"), router.register("b")
        with caplog.at_level(logging.WARNING, logger="penguiflow_a2a.routing"):
            flow.queue.put_nowait({"bare": True})  # no trace: nobody's
            flow.queue.put_nowait(Item("b"))
            flow.queue.put_nowait(Item("a"))
            assert (await get(second)).trace_id == "b"
            assert (await get(first)).trace_id == "a"
        assert first.empty()
        assert second.empty()
        assert [r.message for r in caplog.records] == ["a2a_untraced_item_dropped"]
    finally:
        await router.stop()


def test_traceless_items_nobody_can_claim_are_dropped() -> None:
    router = RookeryRouter(TracedFlow())
    router.route(None, "orphan")  # nobody waits: dropped, not held
    inbox = router.register("t")
    router.route("t", "mine")
    assert inbox.get_nowait() == "mine"
    assert inbox.empty()


async def test_with_fetch_traced_an_unattributed_item_is_dropped_not_guessed(
    traced: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Never handed to the oldest (or any) waiting request."""
    flow, router = traced
    first, second = router.register("a"), router.register("b")
    with caplog.at_level(logging.WARNING, logger="penguiflow_a2a.routing"):
        flow.queue.put_nowait(Record({"bare": True}, None))
        flow.queue.put_nowait(Record({"mine": True}, "b"))
        assert await get(second) == {"mine": True}
    assert first.empty()
    assert second.empty()
    (record,) = caplog.records
    assert record.message == "a2a_untraced_item_dropped"
    assert record.levelno == logging.WARNING


async def test_signals_reach_every_inbox() -> None:
    router = RookeryRouter(PlainFlow())
    a, b = router.register("a"), router.register("b")
    router.signal_all(SHUTDOWN)
    assert (a.get_nowait(), b.get_nowait()) == (SHUTDOWN, SHUTDOWN)
    assert repr(CANCELLED) == "<cancelled>"


async def test_a_failed_dispatcher_fails_later_registrations_too() -> None:
    class Broken:
        async def fetch(self) -> Any:
            raise OSError("gone")

    router = RookeryRouter(Broken())
    router.start()
    early = router.register("early")
    failure = await get(early)
    assert isinstance(failure, DispatchFailed)
    assert isinstance(router.register("late").get_nowait(), DispatchFailed)
    await router.stop()


async def test_stop_without_start_is_a_no_op() -> None:
    await RookeryRouter(PlainFlow()).stop()
