"""RedisMessageBus passes the shipped bus contract, consumer side included."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence

import pytest

from penguiflow import Headers, Message, Node, NodePolicy, create
from penguiflow.bus import BusEnvelope
from penguiflow.distributed import RedisMessageBus
from penguiflow.errors import SerializationError
from penguiflow.testkit._contracts import MESSAGE_BUS_CHECKS, check_message_bus

pytestmark = pytest.mark.redis


@pytest.fixture
async def bus(redis_url: str, namespace: str, redis_client) -> AsyncIterator[RedisMessageBus]:
    made = RedisMessageBus(redis_url, stream=f"{namespace}:bus")
    try:
        yield made
    finally:
        await made.close()


async def _received(bus: RedisMessageBus, count: int) -> Sequence[BusEnvelope]:
    records = await bus.read(count=count)
    return [r.envelope for r in records]


@pytest.mark.parametrize(
    "check", list(MESSAGE_BUS_CHECKS.values()), ids=list(MESSAGE_BUS_CHECKS.keys())
)
async def test_bus_contract(bus: RedisMessageBus, check) -> None:  # type: ignore[no-untyped-def]
    await check(bus, _received)


async def test_contract_runner_passes(redis_url: str, namespace: str, redis_client) -> None:
    made: list[RedisMessageBus] = []

    def factory() -> RedisMessageBus:
        made.append(RedisMessageBus(redis_url, stream=f"{namespace}:bus{len(made)}"))
        return made[-1]

    await check_message_bus(factory, received=_received)
    assert len(made) == len(MESSAGE_BUS_CHECKS)


async def test_message_payload_reads_back_as_a_message(bus: RedisMessageBus) -> None:
    msg = Message(payload={"x": 1}, headers=Headers(tenant="acme"))
    await bus.publish(
        BusEnvelope("a->b", "a", "b", msg.trace_id, msg, msg.headers.model_dump(), {})
    )
    (record,) = await bus.read()
    assert record.envelope.payload == msg
    assert isinstance(record.envelope.payload, Message)


async def test_read_after_an_entry_returns_only_later_ones(bus: RedisMessageBus) -> None:
    for i in range(3):
        await bus.publish(BusEnvelope(f"a->{i}", "a", str(i), None, i, None, None))
    first = await bus.read(count=1)
    rest = await bus.read(after=first[0].entry_id)
    assert [r.envelope.payload for r in rest] == [1, 2]


async def test_strict_bus_refuses_an_unserialisable_payload(bus: RedisMessageBus) -> None:
    with pytest.raises(SerializationError, match="payload"):
        await bus.publish(BusEnvelope("a->b", "a", "b", None, object(), None, None))
    assert await bus.read() == []


async def test_lenient_bus_publishes_the_repr(redis_url: str, namespace: str, redis_client) -> None:
    bus = RedisMessageBus(redis_url, stream=f"{namespace}:lenient", strict=False)
    try:
        await bus.publish(BusEnvelope("a->b", "a", "b", None, object(), None, None))
        (record,) = await bus.read()
        assert record.envelope.payload.startswith("<object object")
    finally:
        await bus.close()


async def test_maxlen_trims_old_entries(redis_url: str, namespace: str, redis_client) -> None:
    bus = RedisMessageBus(redis_client, stream=f"{namespace}:trim", maxlen=5)
    for i in range(300):
        await bus.publish(BusEnvelope("a->b", "a", "b", None, i, None, None))
    assert await redis_client.xlen(f"{namespace}:trim") < 300
    await bus.close()  # a shared client stays open
    assert await redis_client.ping()


async def test_flow_publishes_every_edge_put_to_the_stream(bus: RedisMessageBus) -> None:
    async def echo(msg: Message, ctx) -> Message:
        return msg

    node = Node(echo, name="echo", policy=NodePolicy(validate="none"))
    flow = create(node.to(), message_bus=bus)
    flow.run()
    try:
        msg = Message(payload="hi", headers=Headers(tenant="t"))
        await flow.emit(msg)
        async with asyncio.timeout(5):
            assert await flow.fetch() is msg
    finally:
        await flow.stop()
    edges = [r.envelope.edge for r in await bus.read()]
    assert edges == ["OpenSea->echo", "echo->Rookery"]


async def test_unserialisable_item_is_logged_by_the_flow_and_still_delivered(
    bus: RedisMessageBus, caplog: pytest.LogCaptureFixture
) -> None:
    async def echo(item, ctx):
        return item

    flow = create(Node(echo, name="echo", policy=NodePolicy(validate="none")).to(), message_bus=bus)
    flow.run()
    item = object()
    try:
        with caplog.at_level(logging.ERROR, logger="penguiflow.core"):
            await flow.emit(item)
            async with asyncio.timeout(5):
                assert await flow.fetch() is item
    finally:
        await flow.stop()
    assert "message_bus_publish_failed" in [r.getMessage() for r in caplog.records]
