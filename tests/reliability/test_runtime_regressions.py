"""Runtime bugs the reliability suites found, each pinned by the test that showed it."""

from __future__ import annotations

import asyncio
from typing import Any

from penguiflow import Headers, Message, Node, NodePolicy, StreamChunk, create


async def test_a_stream_cut_by_cancel_leaves_no_sequence_counter_behind() -> None:
    """A trace id reused after its stream was cancelled starts afresh at seq 0.

    Found by the cancellation storm: every stream cancelled before its ``done``
    chunk left its counter in the emitting context for the life of the flow
    (one entry per cancelled stream, a slow leak), and a later trace reusing
    the id continued the old numbering instead of starting fresh (runtime.md
    §10: a later message reusing the id of a finished trace starts fresh).
    """
    release = asyncio.Event()

    async def stream(msg: Message, ctx: Any) -> None:
        await ctx.emit_chunk(parent=msg, text="first")
        await release.wait()

    node = Node(stream, name="stream", policy=NodePolicy(validate="none"))
    flow = create(node.to())
    flow.run()
    try:
        async with asyncio.timeout(5):
            for n in range(3):
                msg = Message(payload=n, headers=Headers(tenant="t"), trace_id=f"cut-{n}")
                await flow.emit(msg)
                await flow.fetch()  # its first chunk: the node now waits mid-stream
                assert await flow.cancel(msg.trace_id)
            await flow.wait_idle()
            assert flow._contexts[node]._stream_seq == {}
            release.set()
            await flow.emit(Message(payload=9, headers=Headers(tenant="t"), trace_id="cut-0"))
            chunk = (await flow.fetch()).payload
    finally:
        await flow.stop()
    assert isinstance(chunk, StreamChunk)
    assert chunk.seq == 0
