"""Runtime bugs the reliability suites found, each pinned by the test that showed it."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
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
            assert flow.context(node)._stream_seq == {}
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


async def test_a_traced_message_is_handled_when_no_cancel_flag_exists() -> None:
    """The arrival check must not crash the node actor when no trace has a flag.

    Found by the chaos test after the WIP snapshot f09380e: the arrival check
    called an undefined ``_is_message`` whenever ``flow._trace_events`` was
    empty, so every traced message crashed its actor until the flow escalated.
    """

    async def echo(msg: Message, ctx: Any) -> Message:
        return msg

    flow = create(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    flow.run()
    try:
        async with asyncio.timeout(5):
            msg = Message(payload=1, headers=Headers(tenant="t"), trace_id="plain")
            await flow.emit(msg)
            assert await flow.fetch() is msg
        (child,) = flow.supervisor.which_children()
    finally:
        await flow.stop()
    assert child.restarts == 0


async def _in_new_task(coro: Any) -> Any:
    """Run ``coro`` in a task of its own, as a restarted actor would."""
    return await asyncio.create_task(coro)


async def test_join_k_hands_the_same_aggregate_to_a_redelivered_item() -> None:
    join = join_k("join", 2)
    ctx = SimpleNamespace(runtime=None)
    first = Message(payload=1, headers=Headers(tenant="t"), trace_id="x")
    second = Message(payload=2, headers=Headers(tenant="t"), trace_id="x")
    assert await _in_new_task(join.func(first, ctx)) is None
    aggregate = await _in_new_task(join.func(second, ctx))
    # A new task (incarnation) gets the k-th item again: the same aggregate.
    assert await _in_new_task(join.func(second, ctx)) is aggregate
    assert aggregate.payload == [1, 2]


async def test_join_k_forgets_a_completion_once_its_item_is_not_in_flight() -> None:
    """A record whose item is neither in hand nor queued is dropped, not kept forever."""
    join = join_k("join", 2)
    ctx = SimpleNamespace(runtime=None)
    items = [
        Message(payload=n, headers=Headers(tenant="t"), trace_id=t)
        for n, t in [(1, "x"), (2, "x"), (3, "y")]
    ]
    await _in_new_task(join.func(items[0], ctx))
    await _in_new_task(join.func(items[1], ctx))  # completes x
    await _in_new_task(join.func(items[2], ctx))  # a new task, another item: x is stale
    assert join.func.join_state.handed == []
    # The same k-th item again is now a fresh arrival that starts a bucket.
    assert await _in_new_task(join.func(items[1], ctx)) is None
