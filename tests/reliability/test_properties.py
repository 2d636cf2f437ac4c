"""Property tests (hypothesis): mailbox, join_k, routing and streaming invariants.

Each property states what must hold for *any* input the strategy can draw:
no item lost or duplicated, FIFO per lane/edge, one aggregate per ``k``
arrivals, each message reaching exactly the successors its decision names,
stream sequence numbers without gaps.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, deque
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from penguiflow import (
    FlowError,
    Headers,
    Message,
    Node,
    NodePolicy,
    StreamChunk,
    chunk_to_ws_json,
    create,
    format_sse_event,
    join_k,
    predicate_router,
)
from penguiflow.actors import Mailbox, MailboxEmpty
from penguiflow.core import ROOKERY

FLOW_SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# -- mailbox ------------------------------------------------------------------------------

LANES = 3
mailbox_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, LANES - 1)),
        st.tuples(st.just("get"), st.just(0)),
        st.tuples(st.just("requeue"), st.integers(0, LANES - 1)),
        st.tuples(st.just("purge"), st.integers(2, 5)),
    ),
    max_size=120,
)


@given(capacity=st.integers(1, 6), ops=mailbox_ops)
async def test_mailbox_is_fifo_per_lane_and_loses_nothing(
    capacity: int, ops: list[tuple[str, int]]
) -> None:
    """Against a model of one deque per lane: same deliveries, refusals and depth."""
    mailbox = Mailbox(capacity, lanes=LANES)
    model: list[deque[int]] = [deque() for _ in range(LANES)]
    serial = 0
    accepted = delivered = purged = 0
    for op, arg in ops:
        if op == "put":
            serial += 1
            ok = mailbox.put_nowait(serial, arg)
            assert ok == (len(model[arg]) < capacity)
            if ok:
                model[arg].append(serial)
                accepted += 1
        elif op == "requeue":
            serial += 1
            mailbox.requeue_front(serial, arg)  # bypasses capacity
            model[arg].appendleft(serial)
            accepted += 1
        elif op == "get":
            try:
                delivery = mailbox.get_nowait()
            except MailboxEmpty:
                assert not any(model)
                continue
            assert delivery.item == model[delivery.lane].popleft()
            delivered += 1
        else:
            removed = mailbox.purge(lambda item, m=arg: item % m == 0)
            expected = [i for lane in model for i in lane if i % arg == 0]
            assert sorted(d.item for d in removed) == sorted(expected)
            for lane in model:
                kept = [i for i in lane if i % arg != 0]
                lane.clear()
                lane.extend(kept)
            purged += len(removed)
        assert mailbox.depth() == sum(len(lane) for lane in model)
        for lane in range(LANES):
            assert list(mailbox.snapshot(lane)) == list(model[lane])
    assert accepted == delivered + purged + mailbox.depth()


@given(capacity=st.integers(1, 4), producers=st.integers(1, 6), items=st.integers(1, 8))
async def test_blocked_producers_are_served_in_order(
    capacity: int, producers: int, items: int
) -> None:
    """Producers blocked on a full lane lose nothing, and each one's items stay in order."""
    mailbox = Mailbox(capacity)

    async def produce(index: int) -> None:
        for n in range(items):
            await mailbox.put((index, n))

    tasks = [asyncio.create_task(produce(i)) for i in range(producers)]
    received: list[tuple[int, int]] = []
    async with asyncio.timeout(5):
        while len(received) < producers * items:
            received.append((await mailbox.get()).item)
        await asyncio.gather(*tasks)
    assert sorted(received) == sorted((i, n) for i in range(producers) for n in range(items))
    for index in range(producers):
        assert [n for i, n in received if i == index] == list(range(items))


# -- join_k -------------------------------------------------------------------------------


@given(
    k=st.integers(1, 4),
    arrivals=st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 99)), max_size=60),
)
async def test_join_k_emits_one_aggregate_per_k_arrivals_in_order(
    k: int, arrivals: list[tuple[str, int]]
) -> None:
    join = join_k("join", k)
    ctx = SimpleNamespace(runtime=None)
    headers = Headers(tenant="p")
    outputs: dict[str, list[list[int]]] = {}
    for trace_id, value in arrivals:
        message = Message(payload=value, headers=headers, trace_id=trace_id)
        result = await join.func(message, ctx)
        if result is not None:
            assert result.trace_id == trace_id
            outputs.setdefault(trace_id, []).append(result.payload)
    for trace_id in "abcd":
        values = [v for t, v in arrivals if t == trace_id]
        full = len(values) // k * k
        expected = [values[i : i + k] for i in range(0, full, k)]
        assert outputs.get(trace_id, []) == expected


# -- routing ------------------------------------------------------------------------------

SUCCESSORS = ("s0", "s1", "s2", "s3")
decisions = st.one_of(
    st.none(),
    st.sets(st.sampled_from(SUCCESSORS), max_size=4).map(sorted),
    st.just(["nowhere"]),
)


@FLOW_SETTINGS
@given(plan=st.lists(decisions, min_size=1, max_size=12))
async def test_router_delivers_each_message_to_exactly_its_decision(
    plan: list[list[str] | None],
) -> None:
    """Known names get one copy each, ``None``/empty drops, an unknown name is one FlowError."""

    def deliver(name: str) -> Node:
        async def sink(msg: Message, ctx: Any) -> tuple[str, int]:
            return (name, msg.payload)

        return Node(sink, name=name, policy=NodePolicy(validate="none"))

    sinks = [deliver(name) for name in SUCCESSORS]
    router = predicate_router("router", lambda m: plan[m.payload])
    flow = create(router.to(*sinks), *(s.to() for s in sinks), emit_errors_to_rookery=True)
    expected: Counter[tuple[str, int]] = Counter()
    for index, decision in enumerate(plan):
        if decision == ["nowhere"]:
            expected[("error", index)] += 1
        else:
            expected.update((name, index) for name in decision or ())
    flow.run()
    try:
        async with asyncio.timeout(5):
            for index in range(len(plan)):
                message = Message(payload=index, headers=Headers(tenant="p"), trace_id=f"r{index}")
                await flow.emit(message)
            got: Counter[tuple[str, int]] = Counter()
            for _ in range(sum(expected.values())):
                item = await flow.fetch()
                if isinstance(item, FlowError):
                    assert isinstance(item.original_exc, KeyError)
                    assert "No successor named 'nowhere'" in str(item.original_exc)
                    got[("error", int(item.trace_id[1:]))] += 1
                else:
                    got[item] += 1
            await flow.wait_idle()
            assert _rookery_is_empty(flow)
    finally:
        await flow.stop()
    assert got == expected


def _rookery_is_empty(flow: Any) -> bool:
    try:
        flow.context(ROOKERY).fetch_nowait()
    except asyncio.QueueEmpty:
        return True
    return False


# -- streaming ----------------------------------------------------------------------------

stream_ops = st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=40)


@FLOW_SETTINGS
@given(ops=stream_ops)
async def test_stream_sequence_numbers_have_no_gaps_and_restart_after_done(
    ops: list[tuple[int, bool]],
) -> None:
    async def producer(msg: Message, ctx: Any) -> None:
        for sid, done in ops:
            await ctx.emit_chunk(parent=msg, text=f"{sid}", stream_id=f"s{sid}", done=done)

    node = Node(producer, name="producer", policy=NodePolicy(validate="none"))
    flow = create(node.to(), queue_maxsize=0)
    flow.run()
    try:
        async with asyncio.timeout(5):
            await flow.emit(Message(payload=None, headers=Headers(tenant="p")))
            chunks = [(await flow.fetch()).payload for _ in ops]
    finally:
        await flow.stop()
    following: dict[str, int] = {}
    for chunk, (sid, done) in zip(chunks, ops, strict=True):
        assert isinstance(chunk, StreamChunk)
        assert chunk.stream_id == f"s{sid}"
        assert chunk.seq == following.get(chunk.stream_id, 0)
        assert chunk.done is done
        following[chunk.stream_id] = 0 if done else chunk.seq + 1


chunks = st.builds(
    StreamChunk,
    stream_id=st.text(min_size=1, max_size=8),
    seq=st.integers(0, 10_000),
    text=st.text(max_size=20),
    done=st.booleans(),
    meta=st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


@given(chunk=chunks, retry=st.one_of(st.none(), st.integers(0, 10_000)))
def test_sse_frames_are_well_formed(chunk: StreamChunk, retry: int | None) -> None:
    frame = format_sse_event(chunk, retry_ms=retry)
    assert frame.endswith("\n\n")
    lines = frame[:-2].split("\n")
    assert lines[0] == f"event: {'done' if chunk.done else 'chunk'}"
    assert lines[1] == f"id: {chunk.seq}"
    assert frame.count("\nretry: ") == (0 if retry is None else 1)


@given(chunk=chunks)
def test_websocket_json_round_trips(chunk: StreamChunk) -> None:
    decoded = json.loads(chunk_to_ws_json(chunk))
    assert decoded == {
        "stream_id": chunk.stream_id,
        "seq": chunk.seq,
        "text": chunk.text,
        "done": chunk.done,
        "meta": chunk.meta,
    }
