"""Conformance: spec/streaming.md (emit_chunk, SSE/WS framing, stream_flow, emit_stream_events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conformance_support import emit, fetch, msg

from penguiflow import (
    Message,
    Node,
    NodePolicy,
    StreamChunk,
    chunk_to_ws_json,
    emit_stream_events,
    format_sse_event,
    stream_flow,
)
from penguiflow.core import Context

NONE = NodePolicy(validate="none")


async def echo(item: Any, ctx: Any) -> Any:
    return item


# --- format_sse_event / chunk_to_ws_json -----


def test_sse_spec_example() -> None:
    chunk = StreamChunk(stream_id="abc", seq=2, text="token", done=True, meta={"foo": "bar"})
    assert format_sse_event(chunk, retry_ms=1500) == (
        'event: done\nid: 2\ndata: token\ndata: {"foo": "bar"}\nretry: 1500\n\n'
    )


def test_sse_minimal_chunk() -> None:
    chunk = StreamChunk(stream_id="abc", seq=0, text="hi")
    assert format_sse_event(chunk) == "event: chunk\nid: 0\ndata: hi\n\n"


def test_sse_event_name_and_verbatim_newlines() -> None:
    chunk = StreamChunk(stream_id="a", seq=1, text="a\nb", meta={"é": 1, "k": [1, 2]})
    assert format_sse_event(chunk, event_name="token") == (
        'event: token\nid: 1\ndata: a\nb\ndata: {"é": 1, "k": [1, 2]}\n\n'
    )


def test_sse_empty_event_name_falls_back() -> None:
    chunk = StreamChunk(stream_id="a", seq=1, text="x", done=True)
    assert format_sse_event(chunk, event_name="").startswith("event: done\n")


def test_ws_json_key_order_and_extra() -> None:
    chunk = StreamChunk(stream_id="s", seq=3, text="é", meta={"m": 1})
    assert chunk_to_ws_json(chunk) == (
        '{"stream_id": "s", "seq": 3, "text": "é", "done": false, "meta": {"m": 1}}'
    )
    out = json.loads(chunk_to_ws_json(chunk, extra={"seq": 9, "event": "x"}))
    assert list(out) == ["stream_id", "seq", "text", "done", "meta", "event"]
    assert out["seq"] == 9


# --- emit_chunk -----


class Sink:
    """Egress node body that records chunk envelopes."""

    def __init__(self) -> None:
        self.items: list[Message] = []

    async def __call__(self, item: Message, ctx: Any) -> Any:
        self.items.append(item)
        return item


async def test_emit_chunk_sequences_and_envelope(make_flow: Any) -> None:
    parent = msg("p", deadline_s=9e9, meta={"k": 1})
    returned: list[StreamChunk] = []

    async def producer(item: Message, ctx: Any) -> None:
        returned.append(await ctx.emit_chunk(parent=item, text="a"))
        returned.append(await ctx.emit_chunk(parent=item, text="b", meta={"x": 1}))
        returned.append(await ctx.emit_chunk(parent=item, text="c", done=True))
        returned.append(await ctx.emit_chunk(parent=item, text="again"))

    flow = make_flow(Node(producer, name="p", policy=NONE).to(), queue_maxsize=16)
    flow.run()
    await emit(flow, parent)
    envelopes = [await fetch(flow) for _ in range(4)]
    chunks = [e.payload for e in envelopes]
    assert chunks == returned
    assert [(c.seq, c.text, c.done) for c in chunks] == [
        (0, "a", False),
        (1, "b", False),
        (2, "c", True),
        (0, "again", False),
    ]
    assert all(c.stream_id == parent.trace_id for c in chunks)
    assert chunks[1].meta == {"x": 1}
    assert chunks[0].meta == {}
    for env in envelopes:
        assert isinstance(env, Message)
        assert env is not parent
        assert env.trace_id == parent.trace_id
        assert env.headers is parent.headers
        assert env.deadline_s == parent.deadline_s
        assert env.meta == {"k": 1}
        assert env.meta is not parent.meta


async def test_emit_chunk_explicit_seq_and_stream_id(make_flow: Any) -> None:
    async def producer(item: Message, ctx: Any) -> None:
        await ctx.emit_chunk(parent=item, text="a", seq=5)
        await ctx.emit_chunk(parent=item, text="b")
        await ctx.emit_chunk(parent=item, text="other", stream_id="s2")

    flow = make_flow(Node(producer, name="p", policy=NONE).to())
    flow.run()
    await emit(flow, msg())
    chunks = [(await fetch(flow)).payload for _ in range(3)]
    assert [(c.stream_id != "s2", c.seq) for c in chunks] == [(True, 5), (True, 6), (False, 0)]


async def test_emit_chunk_meta_is_copied(make_flow: Any) -> None:
    meta = {"a": 1}
    out: list[StreamChunk] = []

    async def producer(item: Message, ctx: Any) -> None:
        out.append(await ctx.emit_chunk(parent=item, text="a", meta=meta))

    flow = make_flow(Node(producer, name="p", policy=NONE).to())
    flow.run()
    await emit(flow, msg())
    await fetch(flow)
    assert out[0].meta == meta
    assert out[0].meta is not meta


async def test_flow_emit_chunk_runs_from_open_sea(make_flow: Any) -> None:
    sink = Sink()

    async def body(item: Message, ctx: Any) -> Any:
        return await sink(item, ctx)

    flow = make_flow(Node(body, name="sink", policy=NONE).to())
    flow.run()
    parent = msg()
    async with asyncio.timeout(5):
        first = await flow.emit_chunk(parent=parent, text="x")
        second = await flow.emit_chunk(parent=parent, text="y", done=True)
    assert (first.seq, second.seq) == (0, 1)
    got = [await fetch(flow), await fetch(flow)]
    assert [g.payload.text for g in got] == ["x", "y"]


async def test_detached_context_emit_chunk_raises() -> None:
    with pytest.raises(RuntimeError) as info:
        await Context(Node(echo)).emit_chunk(parent=msg(), text="x")
    assert str(info.value) == "Context is not attached to a running flow"


async def test_streams_interleaved_across_traces_keep_counters(make_flow: Any) -> None:
    async def producer(item: Message, ctx: Any) -> None:
        await ctx.emit_chunk(parent=item, text="1")
        await ctx.emit_chunk(parent=item, text="2", done=True)

    flow = make_flow(Node(producer, name="p", policy=NONE).to())
    flow.run()
    a, b = msg(), msg()
    await emit(flow, a)
    await emit(flow, b)
    chunks = [(await fetch(flow)).payload for _ in range(4)]
    for parent in (a, b):
        assert [c.seq for c in chunks if c.stream_id == parent.trace_id] == [0, 1]


async def test_per_trace_capacity_stalls_producer(make_flow: Any) -> None:
    """With queue_maxsize=2 the producer stalls after 2 outstanding chunks of its trace."""
    produced: list[int] = []

    async def producer(item: Message, ctx: Any) -> None:
        for i in range(6):
            await ctx.emit_chunk(parent=item, text=str(i), done=i == 5)
            produced.append(i)

    relay = Node(echo, name="relay", policy=NONE)
    flow = make_flow(Node(producer, name="p", policy=NONE).to(relay), relay.to(), queue_maxsize=2)
    flow.run()
    await emit(flow, msg())
    for _ in range(50):  # the scheduling contract: let every runnable task take turns
        await asyncio.sleep(0)
    # Edge capacity alone would let 5 chunks out (2 in Rookery, 1 in relay, 2 queued).
    assert produced == [0, 1]
    chunks = [(await fetch(flow)).payload for _ in range(6)]
    assert [c.seq for c in chunks] == [0, 1, 2, 3, 4, 5]


async def test_chunks_to_successor_node(make_flow: Any) -> None:
    sink = Sink()

    async def producer(item: Message, ctx: Any) -> None:
        await ctx.emit_chunk(parent=item, text="t", done=True)

    async def body(item: Message, ctx: Any) -> Any:
        return await sink(item, ctx)

    flow = make_flow(Node(producer, name="p", policy=NONE).to(Node(body, name="sink", policy=NONE)))
    flow.run()
    await emit(flow, msg())
    out = await fetch(flow)
    assert isinstance(out.payload, StreamChunk)
    assert sink.items[0] is out


# --- stream_flow -----


def streaming_flow(make_flow: Any, final: Any = "final") -> Any:
    async def producer(item: Message, ctx: Any) -> Any:
        await ctx.emit_chunk(parent=item, text="a")
        await ctx.emit_chunk(parent=item, text="b", done=True)
        return item.model_copy(update={"payload": final})

    flow = make_flow(Node(producer, name="p", policy=NONE).to())
    flow.run()
    return flow


async def test_stream_flow_without_include_final(make_flow: Any) -> None:
    flow = streaming_flow(make_flow)
    out = []
    async with asyncio.timeout(5):
        async for item in stream_flow(flow, msg()):
            out.append(item)
    assert [c.text for c in out] == ["a", "b"]
    assert all(isinstance(c, StreamChunk) for c in out)


async def test_stream_flow_with_include_final(make_flow: Any) -> None:
    flow = streaming_flow(make_flow)
    out = []
    async with asyncio.timeout(5):
        async for item in stream_flow(flow, msg(), include_final=True, timeout=5):
            out.append(item)
    assert [getattr(c, "text", c) for c in out] == ["a", "b", "final"]


async def test_stream_flow_non_chunk_first_ends(make_flow: Any) -> None:
    flow = make_flow(Node(echo, name="e", policy=NONE).to())
    flow.run()
    out = []
    async with asyncio.timeout(5):
        async for item in stream_flow(flow, msg("plain"), include_final=True):
            out.append(item)
    assert out == ["plain"]


async def test_stream_flow_bare_result_without_payload(make_flow: Any) -> None:
    async def bare(item: Any, ctx: Any) -> Any:
        return 42

    flow = make_flow(Node(bare, name="b", policy=NONE).to())
    flow.run()
    async with asyncio.timeout(5):
        out = [item async for item in stream_flow(flow, msg())]
    assert out == [42]


async def test_stream_flow_timeout(make_flow: Any) -> None:
    async def silent(item: Any, ctx: Any) -> None:
        return None

    flow = make_flow(Node(silent, name="s", policy=NONE).to())
    flow.run()
    stream = stream_flow(flow, msg(), timeout=0.01)
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.TimeoutError):
            await anext(stream)


# --- emit_stream_events -----


async def agen(items: list[Any]) -> AsyncIterator[Any]:
    for item in items:
        yield item


class RecordingCtx:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def emit_chunk(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


async def test_emit_stream_events_default_adapter_adds_final() -> None:
    ctx = RecordingCtx()
    parent = msg()
    await emit_stream_events(agen([1, "b"]), ctx, parent, final_meta={"end": True})
    assert [(c["text"], c["done"], c["meta"]) for c in ctx.calls] == [
        ("1", False, {}),
        ("b", False, {}),
        ("", True, {"end": True}),
    ]
    assert all(c["parent"] is parent for c in ctx.calls)
    assert all(c["to"] is None for c in ctx.calls)


async def test_emit_stream_events_adapter_done_suppresses_final() -> None:
    ctx = RecordingCtx()
    await emit_stream_events(
        agen(["x", "y"]), ctx, msg(), adapter=lambda e: (e, e == "y", {"e": e})
    )
    assert [(c["text"], c["done"]) for c in ctx.calls] == [("x", False), ("y", True)]


async def test_emit_stream_events_empty_source_final_meta_default() -> None:
    ctx = RecordingCtx()
    await emit_stream_events(agen([]), ctx, msg())
    assert [(c["text"], c["done"], c["meta"]) for c in ctx.calls] == [("", True, {})]


async def test_emit_stream_events_with_real_flow(make_flow: Any) -> None:
    flow = make_flow(Node(echo, name="e", policy=NONE).to())
    flow.run()
    async with asyncio.timeout(5):
        await emit_stream_events(agen(["t1", "t2"]), flow, msg())
    chunks = [(await fetch(flow)).payload for _ in range(3)]
    assert [(c.seq, c.text, c.done) for c in chunks] == [
        (0, "t1", False),
        (1, "t2", False),
        (2, "", True),
    ]


async def test_emit_chunk_to_selected_successor(make_flow: Any) -> None:
    left_sink, right_sink = Sink(), Sink()

    async def left(item: Message, ctx: Any) -> Any:
        return await left_sink(item, ctx)

    async def right(item: Message, ctx: Any) -> Any:
        return await right_sink(item, ctx)

    left_node = Node(left, name="left", policy=NONE)
    right_node = Node(right, name="right", policy=NONE)

    async def producer(item: Message, ctx: Any) -> None:
        await ctx.emit_chunk(parent=item, text="only-right", to=right_node)

    flow = make_flow(
        Node(producer, name="p", policy=NONE).to(left_node, right_node),
        left_node.to(),
        right_node.to(),
    )
    flow.run()
    await emit(flow, msg())
    out = await fetch(flow)
    assert out.payload.text == "only-right"
    assert left_sink.items == []
    assert right_sink.items == [out]


@pytest.mark.parametrize("relay", [False, True], ids=["direct", "via-relay"])
async def test_stream_flow_with_queue_maxsize_one_does_not_deadlock(
    make_flow: Any, relay: bool
) -> None:
    async def producer(item: Message, ctx: Any) -> Any:
        for i in range(5):
            await ctx.emit_chunk(parent=item, text=str(i), done=i == 4)
        return None

    source = Node(producer, name="p", policy=NONE)
    if relay:
        hop = Node(echo, name="relay", policy=NONE)
        flow = make_flow(source.to(hop), hop.to(), queue_maxsize=1)
    else:
        flow = make_flow(source.to(), queue_maxsize=1)
    flow.run()
    async with asyncio.timeout(5):
        texts = [c.text async for c in stream_flow(flow, msg())]
    assert texts == ["0", "1", "2", "3", "4"]
