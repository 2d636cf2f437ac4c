"""Streaming through running flows: order, no gaps or duplicates, under backpressure."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from penguiflow import (
    Headers,
    Message,
    Node,
    NodePolicy,
    StreamChunk,
    create,
    emit_stream_events,
    stream_flow,
)
from penguiflow.testkit import FakeClock

NO_VALIDATION = NodePolicy(validate="none")


def _message(payload: Any = "q", trace_id: str | None = None) -> Message:
    if trace_id is None:
        return Message(payload=payload, headers=Headers(tenant="acme"))
    return Message(payload=payload, headers=Headers(tenant="acme"), trace_id=trace_id)


async def _tokens(count: int) -> AsyncIterator[str]:
    for index in range(count):
        yield f"t{index}"


def _producer(count: int, *, final: Any = None) -> Node:
    async def produce(message: Message, ctx: Any) -> Any:
        await emit_stream_events(_tokens(count), ctx, message)
        return None if final is None else message.model_copy(update={"payload": final})

    return Node(produce, name="producer", policy=NO_VALIDATION)


async def _collect(gen: AsyncIterator[Any]) -> list[Any]:
    async with asyncio.timeout(5):
        return [item async for item in gen]


async def test_stream_flow_yields_numbered_chunks_until_done(
    flow_factory: Any, running_flow: Any
) -> None:
    producer = _producer(3)
    flow = running_flow(flow_factory(producer.to()))
    parent = _message(trace_id="S1")
    chunks = await _collect(stream_flow(flow, parent))
    assert [(c.stream_id, c.seq, c.text, c.done) for c in chunks] == [
        ("S1", 0, "t0", False),
        ("S1", 1, "t1", False),
        ("S1", 2, "t2", False),
        ("S1", 3, "", True),
    ]


async def test_stream_flow_include_final_yields_the_final_payload_last(
    flow_factory: Any, running_flow: Any
) -> None:
    flow = running_flow(flow_factory(_producer(2, final={"answer": 1}).to()))
    items = await _collect(stream_flow(flow, _message(), include_final=True))
    assert [item.seq for item in items[:-1]] == [0, 1, 2]
    assert items[-1] == {"answer": 1}


async def test_emit_stream_events_carries_the_parent_envelope(
    flow_factory: Any, running_flow: Any
) -> None:
    received: list[Message] = []

    async def sink(message: Message, _ctx: Any) -> Message:
        received.append(message)
        return message

    producer = _producer(1)
    sink_node = Node(sink, name="sink", policy=NO_VALIDATION)
    flow = running_flow(flow_factory(producer.to(sink_node), sink_node.to()))
    parent = _message(trace_id="S2")
    parent.meta["user"] = "u1"
    await _collect(stream_flow(flow, parent))
    assert [m.payload.seq for m in received] == [0, 1]
    for envelope in received:
        assert envelope.trace_id == "S2"
        assert envelope.headers is parent.headers
        assert envelope.meta == {"user": "u1"}
        assert envelope.meta is not parent.meta


async def test_emit_stream_events_from_the_flow_feeds_ingress_nodes(
    flow_factory: Any, running_flow: Any
) -> None:
    async def echo(message: Message, _ctx: Any) -> Message:
        return message

    flow = running_flow(flow_factory(Node(echo, name="echo", policy=NO_VALIDATION).to()))

    async def events() -> AsyncIterator[tuple[str, bool]]:
        yield ("a", False)
        yield ("b", True)

    parent = _message(trace_id="S3")
    await emit_stream_events(events(), flow, parent, adapter=lambda e: (e[0], e[1], {}))
    async with asyncio.timeout(5):
        first, second = await flow.fetch(), await flow.fetch()
    assert [(m.payload.seq, m.payload.text, m.payload.done) for m in (first, second)] == [
        (0, "a", False),
        (1, "b", True),
    ]


async def test_interleaved_traces_keep_independent_sequences(
    flow_factory: Any, running_flow: Any
) -> None:
    producer = _producer(4)
    flow = running_flow(flow_factory(producer.to()))
    await flow.emit(_message(trace_id="SA"))
    await flow.emit(_message(trace_id="SB"))
    seen: dict[str, list[int]] = {"SA": [], "SB": []}
    async with asyncio.timeout(5):
        while sum(len(v) for v in seen.values()) < 10:
            chunk = (await flow.fetch()).payload
            assert isinstance(chunk, StreamChunk)
            seen[chunk.stream_id].append(chunk.seq)
    assert seen == {"SA": [0, 1, 2, 3, 4], "SB": [0, 1, 2, 3, 4]}


@settings(max_examples=25, deadline=None)
@given(
    count=st.integers(min_value=0, max_value=40),
    maxsize=st.integers(min_value=1, max_value=4),
    relay_yields=st.lists(st.integers(min_value=0, max_value=2), min_size=1, max_size=8),
    reader_yields=st.lists(st.integers(min_value=0, max_value=2), min_size=1, max_size=8),
)
def test_property_chunks_arrive_in_order_without_gaps_or_duplicates(
    count: int, maxsize: int, relay_yields: list[int], reader_yields: list[int]
) -> None:
    """A producer, a slow relay and a slow reader on tiny queues: seq is 0..n exactly."""

    async def relay(message: Message, _ctx: Any) -> Message:
        for _ in range(relay_yields[message.payload.seq % len(relay_yields)]):
            await asyncio.sleep(0)
        return message

    async def main() -> list[int]:
        relay_node = Node(relay, name="relay", policy=NO_VALIDATION)
        producer = _producer(count)
        flow = create(producer.to(relay_node), relay_node.to(), queue_maxsize=maxsize)
        flow.run()
        seqs: list[int] = []
        try:
            async with asyncio.timeout(5):
                async for chunk in stream_flow(flow, _message()):
                    seqs.append(chunk.seq)
                    for _ in range(reader_yields[chunk.seq % len(reader_yields)]):
                        await asyncio.sleep(0)
        finally:
            await flow.stop()
        return seqs

    assert asyncio.run(main()) == list(range(count + 1))


async def test_stream_flow_timeout_runs_on_the_flows_fake_clock(
    flow_factory: Any, running_flow: Any, fake_clock: FakeClock
) -> None:
    async def silent(message: Message, _ctx: Any) -> None:
        return None

    flow = running_flow(
        flow_factory(Node(silent, name="silent", policy=NO_VALIDATION).to(), clock=fake_clock)
    )
    gen = stream_flow(flow, _message(), timeout=30.0)
    pending = asyncio.ensure_future(gen.__anext__())
    try:
        async with asyncio.timeout(5):
            await fake_clock.wait_for_timers(1)
            fake_clock.advance(30.0)
            with pytest.raises(TimeoutError):
                await pending
    finally:
        pending.cancel()
        await gen.aclose()
