"""``stream_flow`` and ``emit_stream_events`` against minimal stand-ins."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from penguiflow.streaming import emit_stream_events, stream_flow
from penguiflow.testkit import FakeClock
from penguiflow.types import Headers, Message, StreamChunk


def _chunk(seq: int, done: bool = False) -> StreamChunk:
    return StreamChunk(stream_id="s", seq=seq, text=f"t{seq}", done=done)


def _wrap(payload: Any) -> Message:
    return Message(payload=payload, headers=Headers(tenant="acme"))


class ScriptedFlow:
    """``emit`` records; ``fetch`` returns the scripted Rookery items in order."""

    def __init__(self, *items: Any, clock: Any = None) -> None:
        self.items = asyncio.Queue[Any]()
        for item in items:
            self.items.put_nowait(item)
        self.emitted: list[tuple[Any, Any]] = []
        self.fetches = 0
        if clock is not None:
            self.clock = clock

    async def emit(self, msg: Any, to: Any = None) -> None:
        self.emitted.append((msg, to))

    async def fetch(self) -> Any:
        self.fetches += 1
        return await self.items.get()


async def _collect(gen: AsyncIterator[Any]) -> list[Any]:
    async with asyncio.timeout(5):
        return [item async for item in gen]


PARENT = _wrap("question")


async def test_stream_flow_emits_the_parent_with_its_target() -> None:
    flow = ScriptedFlow(_wrap(_chunk(0, done=True)))
    await _collect(stream_flow(flow, PARENT, to="ingress"))
    assert flow.emitted == [(PARENT, "ingress")]


async def test_stream_flow_yields_chunks_unwrapped_and_stops_at_done() -> None:
    chunks = [_chunk(0), _chunk(1), _chunk(2, done=True)]
    flow = ScriptedFlow(*[_wrap(c) for c in chunks], _wrap("final"))
    assert await _collect(stream_flow(flow, PARENT)) == chunks
    assert flow.fetches == 3


async def test_stream_flow_with_include_final_yields_the_final_payload_last() -> None:
    chunks = [_chunk(0), _chunk(1, done=True)]
    flow = ScriptedFlow(*[_wrap(c) for c in chunks], _wrap({"answer": 42}))
    assert await _collect(stream_flow(flow, PARENT, include_final=True)) == [
        *chunks,
        {"answer": 42},
    ]


@pytest.mark.parametrize("include_final", [False, True], ids=["plain", "include-final"])
async def test_stream_flow_non_chunk_before_done_ends_iteration(include_final: bool) -> None:
    flow = ScriptedFlow(_wrap(_chunk(0)), _wrap("early"), _wrap(_chunk(1, done=True)))
    result = await _collect(stream_flow(flow, PARENT, include_final=include_final))
    assert result == [_chunk(0), "early"]


async def test_stream_flow_yields_bare_items_without_payload_attribute() -> None:
    bare_chunk = _chunk(0, done=True)
    flow = ScriptedFlow(bare_chunk)
    assert await _collect(stream_flow(flow, PARENT)) == [bare_chunk]
    flow = ScriptedFlow("plain text")
    assert await _collect(stream_flow(flow, PARENT)) == ["plain text"]


async def test_stream_flow_timeout_raises_timeout_error_on_the_flow_clock() -> None:
    clock = FakeClock()
    flow = ScriptedFlow(clock=clock)
    gen = stream_flow(flow, PARENT, timeout=30.0)
    task = asyncio.ensure_future(gen.__anext__())
    try:
        async with asyncio.timeout(5):
            await clock.wait_for_timers(1)
            clock.advance(30.0)
            with pytest.raises(TimeoutError):
                await task
    finally:
        task.cancel()
        await gen.aclose()


async def test_stream_flow_timeout_bounds_each_fetch_not_the_whole_stream() -> None:
    clock = FakeClock()
    flow = ScriptedFlow(_wrap(_chunk(0)), clock=clock)
    gen = stream_flow(flow, PARENT, timeout=10.0)
    try:
        async with asyncio.timeout(5):
            assert await gen.__anext__() == _chunk(0)
            clock.advance(9.0)  # while the consumer holds the chunk: not counted
            nxt = asyncio.ensure_future(gen.__anext__())
            await clock.wait_for_timers(1)
            clock.advance(9.0)
            await flow.items.put(_wrap(_chunk(1, done=True)))
            assert await nxt == _chunk(1, done=True)
    finally:
        await gen.aclose()


async def test_stream_flow_without_clock_uses_the_system_clock() -> None:
    flow = ScriptedFlow(_wrap(_chunk(0, done=True)))
    assert await _collect(stream_flow(flow, PARENT, timeout=5.0)) == [_chunk(0, done=True)]


class RecordingEmitter:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def emit_chunk(self, **kwargs: Any) -> StreamChunk:
        self.calls.append(kwargs)
        return _chunk(len(self.calls) - 1, kwargs["done"])


async def _source(*events: Any) -> AsyncIterator[Any]:
    for event in events:
        yield event


async def test_emit_stream_events_default_adapter_and_closing_chunk() -> None:
    emitter = RecordingEmitter()
    await emit_stream_events(_source("a", 1), emitter, PARENT, to="sink", final_meta={"n": 2})
    assert emitter.calls == [
        {"parent": PARENT, "text": "a", "done": False, "meta": {}, "to": "sink"},
        {"parent": PARENT, "text": "1", "done": False, "meta": {}, "to": "sink"},
        {"parent": PARENT, "text": "", "done": True, "meta": {"n": 2}, "to": "sink"},
    ]


async def test_emit_stream_events_empty_source_emits_only_the_closing_chunk() -> None:
    emitter = RecordingEmitter()
    await emit_stream_events(_source(), emitter, PARENT)
    assert emitter.calls == [
        {"parent": PARENT, "text": "", "done": True, "meta": {}, "to": None},
    ]


async def test_emit_stream_events_adapter_done_suppresses_the_closing_chunk() -> None:
    emitter = RecordingEmitter()

    def adapter(event: dict[str, Any]) -> tuple[str, bool, dict[str, Any]]:
        return event["delta"], event["stop"], {"i": event["i"]}

    events = [{"delta": "he", "stop": False, "i": 0}, {"delta": "llo", "stop": True, "i": 1}]
    await emit_stream_events(_source(*events), emitter, PARENT, adapter=adapter)
    assert [(c["text"], c["done"], c["meta"]) for c in emitter.calls] == [
        ("he", False, {"i": 0}),
        ("llo", True, {"i": 1}),
    ]


async def test_emit_stream_events_done_in_the_middle_still_counts() -> None:
    emitter = RecordingEmitter()
    await emit_stream_events(
        _source(("x", True), ("y", False)), emitter, PARENT, adapter=lambda e: (e[0], e[1], {})
    )
    assert [(c["text"], c["done"]) for c in emitter.calls] == [("x", True), ("y", False)]
