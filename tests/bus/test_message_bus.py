"""MessageBus, BusEnvelope, the in-memory bus and the bus contract suite."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

import pytest

from penguiflow.bus import BusEnvelope, MessageBus
from penguiflow.testkit._contracts import MESSAGE_BUS_CHECKS, check_message_bus
from penguiflow.testkit._stores import InMemoryMessageBus


def _envelope(edge: str = "a->b", trace_id: str | None = "t") -> BusEnvelope:
    source, target = edge.split("->")
    return BusEnvelope(edge, source, target, trace_id, {"x": 1}, None, None)


async def _received(bus: InMemoryMessageBus, count: int) -> Sequence[BusEnvelope]:
    async with asyncio.timeout(5):
        return await bus.wait_for(count)


def test_module_exports_the_spec_names() -> None:
    import penguiflow.bus as bus

    assert sorted(bus.__all__) == ["BusEnvelope", "MessageBus"]


def test_envelope_fields_are_in_spec_order() -> None:
    names = [f.name for f in dataclasses.fields(BusEnvelope)]
    assert names == ["edge", "source", "target", "trace_id", "payload", "headers", "meta"]


def test_message_bus_is_a_subclassable_protocol() -> None:
    class Printer(MessageBus):
        async def publish(self, envelope: BusEnvelope) -> None:
            return None

    assert isinstance(Printer(), MessageBus)
    assert not isinstance(object(), MessageBus)


@pytest.mark.parametrize(
    "check", list(MESSAGE_BUS_CHECKS.values()), ids=list(MESSAGE_BUS_CHECKS.keys())
)
async def test_in_memory_bus_contract(check) -> None:  # type: ignore[no-untyped-def]
    await check(InMemoryMessageBus(), _received)


async def test_contract_runner_passes_without_a_consumer_side() -> None:
    await check_message_bus(InMemoryMessageBus)


async def test_contract_runner_names_the_failing_check() -> None:
    class Reversing(InMemoryMessageBus):
        async def publish(self, envelope: BusEnvelope) -> None:
            await super().publish(envelope)
            self.published.insert(0, self.published.pop())

    with pytest.raises(AssertionError, match="'bus_keeps_publish_order' failed"):
        await check_message_bus(Reversing, received=_received)


async def test_in_memory_bus_records_in_order() -> None:
    bus = InMemoryMessageBus()
    await bus.publish(_envelope("OpenSea->a"))
    await bus.publish(_envelope("a->Rookery", trace_id="u"))
    assert bus.edges() == ["OpenSea->a", "a->Rookery"]
    assert bus.edges("u") == ["a->Rookery"]


async def test_wait_for_returns_once_enough_envelopes_arrived() -> None:
    bus = InMemoryMessageBus()
    waiter = asyncio.create_task(bus.wait_for(1, edge="a->b"))
    await bus.publish(_envelope("a->c"))
    await asyncio.sleep(0)  # give the waiter a turn: it must still be waiting
    assert not waiter.done()
    await bus.publish(_envelope("a->b"))
    async with asyncio.timeout(5):
        got = await waiter
    assert [e.edge for e in got] == ["a->b"]


async def test_cancelled_wait_leaves_no_waiter_behind() -> None:
    bus = InMemoryMessageBus()
    waiter = asyncio.create_task(bus.wait_for(1))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert bus._waiters._waiting == []


async def test_failing_bus_raises_and_records_nothing() -> None:
    bus = InMemoryMessageBus()
    bus.fail_with = ConnectionError("down")
    with pytest.raises(ConnectionError):
        await bus.publish(_envelope())
    assert bus.published == []
