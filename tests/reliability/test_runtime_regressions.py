"""Runtime bugs the reliability suites found, each pinned by the test that showed it."""

from __future__ import annotations

import asyncio
from typing import Any

from penguiflow import Headers, Message, Node, NodePolicy, StreamChunk, create, join_k
from penguiflow.testkit import SlowConsumer, kill_actor


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


async def _until(predicate: Any) -> None:
    """Yield to the loop until ``predicate()`` holds (callers bound it with a timeout)."""
    while not predicate():
        await asyncio.sleep(0)


async def test_a_join_killed_while_routing_its_aggregate_does_not_lose_it() -> None:
    """The aggregate of a join_k killed while its send is blocked still arrives, once.

    Found by the chaos test with busy-actor kills: join_k consumed its bucket
    when the k-th item arrived, then the kill cancelled the blocked send and
    the kernel redelivered the k-th item, which started a fresh bucket that
    never completed: the trace was lost.
    """
    sink = SlowConsumer()

    async def source(msg: Message, ctx: Any) -> Message:
        return msg

    left = Node(source, name="left", policy=NodePolicy(validate="none"))
    right = Node(source, name="right", policy=NodePolicy(validate="none"))
    join = join_k("join", 2)
    out = Node(sink.func, name="sink", policy=NodePolicy(validate="none"))
    flow = create(left.to(join), right.to(join), join.to(out), out.to(), queue_maxsize=1)
    flow.run()
    try:
        async with asyncio.timeout(5):
            for trace_id in ("busy", "queued", "victim"):
                msg = Message(payload=trace_id, headers=Headers(tenant="t"), trace_id=trace_id)
                await flow.emit(msg, to=left)
                await flow.emit(msg, to=right)
                if trace_id == "busy":
                    await sink.wait_parked()  # the sink holds "busy"; "queued" fills its lane
            (join_ref,) = [c.ref for c in flow.supervisor.which_children() if c.id == "join"]
            # The join handles victim's second item and blocks sending its aggregate.
            await _until(lambda: join_ref.busy and flow.mailboxes()["join"].depth == 0)
            assert kill_actor(flow, "join")
            await _until(lambda: join_ref.incarnation == 2)
            sink.open()
            got = [(await flow.fetch()).trace_id for _ in range(3)]
            await flow.wait_idle()
            assert flow.mailboxes()["Rookery"].depth == 0
    finally:
        await flow.stop()
    assert sorted(got) == ["busy", "queued", "victim"]
