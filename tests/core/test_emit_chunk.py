"""Context.emit_chunk and PenguiFlow.emit_chunk (streaming.md, runtime.md §10)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pydantic
import pytest
from core_support import fetch, idle, message, run_state

from penguiflow.core import PenguiFlow
from penguiflow.node import Node
from penguiflow.types import Message, StreamChunk

MakeFlow = Callable[..., PenguiFlow]


async def echo(msg: Any, ctx: Any) -> Any:
    return msg


def streamer(texts: list[str], **kwargs: Any) -> Node:
    async def produce(msg: Message, ctx: Any) -> None:
        for i, text in enumerate(texts):
            await ctx.emit_chunk(parent=msg, text=text, done=i == len(texts) - 1, **kwargs)

    return Node(produce, name="producer")


async def test_chunks_are_numbered_and_wrapped(make_flow: MakeFlow) -> None:
    flow = make_flow(streamer(["a", "b", "c"]).to())
    flow.run()
    parent = message()
    parent.meta["m"] = 1
    await flow.emit(parent)
    envelopes = [await fetch(flow) for _ in range(3)]
    chunks = [e.payload for e in envelopes]
    assert [(c.seq, c.text, c.done) for c in chunks] == [
        (0, "a", False),
        (1, "b", False),
        (2, "c", True),
    ]
    assert all(c.stream_id == parent.trace_id for c in chunks)
    for envelope in envelopes:
        assert envelope is not parent
        assert envelope.trace_id == parent.trace_id
        assert envelope.headers is parent.headers
        assert envelope.meta == {"m": 1}
        assert envelope.meta is not parent.meta


async def test_done_resets_the_sequence(make_flow: MakeFlow) -> None:
    async def twice(msg: Message, ctx: Any) -> None:
        await ctx.emit_chunk(parent=msg, text="a", done=True)
        await ctx.emit_chunk(parent=msg, text="b")

    flow = make_flow(Node(twice).to())
    flow.run()
    await flow.emit(message())
    assert [(await fetch(flow)).payload.seq for _ in range(2)] == [0, 0]


async def test_explicit_seq_and_stream_id_and_meta(make_flow: MakeFlow) -> None:
    meta = {"k": "v"}

    async def custom(msg: Message, ctx: Any) -> StreamChunk:
        first = await ctx.emit_chunk(parent=msg, text="a", seq=7, stream_id="s", meta=meta)
        await ctx.emit_chunk(parent=msg, text="b", stream_id="s")
        await ctx.emit_chunk(parent=msg, text="c")
        return first

    flow = make_flow(Node(custom).to())
    flow.run()
    await flow.emit(message())
    chunks = [(await fetch(flow)).payload for _ in range(3)]
    assert [(c.stream_id, c.seq) for c in chunks[:2]] == [("s", 7), ("s", 8)]
    assert chunks[2].seq == 0
    assert chunks[0].meta == meta
    assert chunks[0].meta is not meta
    returned = await fetch(flow)
    assert isinstance(returned, StreamChunk)


async def test_flow_emit_chunk_delivers_to_ingress(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to())
    flow.run()
    parent = message()
    chunk = await flow.emit_chunk(parent=parent, text="hi")
    assert isinstance(chunk, StreamChunk)
    result = await fetch(flow)
    assert result.payload is chunk


async def test_streaming_into_unread_rookery_stalls_at_capacity(make_flow: MakeFlow) -> None:
    produced: list[int] = []
    stalled = asyncio.Event()

    async def produce(msg: Message, ctx: Any) -> None:
        for i in range(10):
            if i == 2:
                stalled.set()
            await ctx.emit_chunk(parent=msg, text=str(i))
            produced.append(i)

    flow = make_flow(Node(produce).to(), queue_maxsize=2)
    flow.run()
    await flow.emit(message())
    async with asyncio.timeout(5):
        await stalled.wait()
    for _ in range(5):
        await asyncio.sleep(0)  # turns the producer must not be able to use
    assert produced == [0, 1]  # two chunks outstanding = queue_maxsize
    assert [(await fetch(flow)).payload.seq for _ in range(10)] == list(range(10))


async def test_unbounded_flow_never_waits_for_trace_capacity(make_flow: MakeFlow) -> None:
    flow = make_flow(streamer([str(i) for i in range(50)]).to(), queue_maxsize=0)
    flow.run()
    await flow.emit(message())
    await idle(flow)
    assert flow.mailboxes()["Rookery"].depth == 50


async def test_stop_releases_trace_capacity_waiters(make_flow: MakeFlow) -> None:
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(), b.to(), queue_maxsize=2)  # every chunk is counted twice
    parent = message()
    async with asyncio.timeout(5):
        await flow.emit_chunk(parent=parent, text="0")
        await flow.emit_chunk(parent=parent, text="1")
    stalled = asyncio.create_task(flow.emit_chunk(parent=parent, text="2"))
    await asyncio.sleep(0)
    assert parent.trace_id in run_state(flow).traces.waiters  # waiting for trace capacity
    flow.run()
    await flow.stop()  # clears the bookkeeping and wakes the waiter
    assert run_state(flow).traces.waiters == {}
    flow.run()  # the waiter now only waits for edge room, which the nodes free
    async with asyncio.timeout(5):
        chunk = await stalled
        assert chunk.seq == 2
        seqs = sorted([(await flow.fetch()).payload.seq for _ in range(6)])
    assert seqs == [0, 0, 1, 1, 2, 2]


async def test_chunk_fields_are_validated(make_flow: MakeFlow) -> None:
    """A chunk is validated like ``StreamChunk(...)``: a non-text ``text`` is rejected."""
    flow = make_flow(Node(echo, name="n").to())
    flow.run()
    ctx = flow.context(flow.nodes[0])
    with pytest.raises(pydantic.ValidationError) as caught:
        await ctx.emit_chunk(parent=message(), text=["not", "text"])  # type: ignore[arg-type]
    assert caught.value.title == "StreamChunk"
    assert caught.value.errors()[0]["loc"] == ("text",)


async def test_chunk_and_envelope_meta_are_copies(make_flow: MakeFlow) -> None:
    """Neither the chunk nor its envelope shares a dict with the caller or the parent."""
    flow = make_flow(Node(echo, name="n").to())
    flow.run()
    ctx = flow.context(flow.nodes[0])
    parent = message()
    parent.meta["p"] = 1
    meta = {"c": 1}
    chunk = await ctx.emit_chunk(parent=parent, text="t", meta=meta)
    async with asyncio.timeout(5):
        envelope = await fetch(flow)
    meta["c"] = 2
    parent.meta["p"] = 2
    assert chunk.meta == {"c": 1}
    assert envelope.meta == {"p": 1}
    assert envelope.payload is chunk


async def test_chunk_meta_may_be_any_mapping(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo, name="n").to())
    flow.run()
    ctx = flow.context(flow.nodes[0])
    chunk = await ctx.emit_chunk(parent=message(), text="t", meta=MappingProxyType({"c": 1}))  # type: ignore[arg-type]
    assert chunk.meta == {"c": 1}
    assert type(chunk.meta) is dict
