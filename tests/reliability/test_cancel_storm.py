"""Cancellation storm: cancel half of 5,000 in-flight traces at seeded random points.

Traces are spread over four kinds of work: a node that fails twice and waits
in its retry backoff (held there by the fake clock), a node running each
message through a playbook (a subflow that parks until released), a streaming
node that parks between chunks, and a slow consumer. A seeded driver
interleaves clock advances, releases and cancels; cancels prefer traces parked
inside a playbook or in backoff. Every trace must end exactly one way: one
terminal item at Rookery, or cancelled (``cancel`` returned True) with none.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from chaos_support import counted_runtime_logs

from penguiflow import (
    FinalAnswer,
    Headers,
    Message,
    Node,
    NodePolicy,
    StreamChunk,
    create,
    predicate_router,
)
from penguiflow.core import ROOKERY
from penguiflow.testkit import FakeClock, SlowConsumer

pytestmark = pytest.mark.asyncio(loop_scope="module")

SEED = 515
TRACES = 5_000
KINDS = ("retry", "play", "stream", "plain")
FAILS_BEFORE_SUCCESS = 2
RETRY = NodePolicy(validate="none", max_retries=3, backoff_base=1.0)


@dataclass
class Where:
    """Where each trace is parked now (set by the nodes), for targeted cancels."""

    backoff: str | None = None
    playbook: str | None = None
    calls: Counter[str] = field(default_factory=Counter)


def build_storm_flow(
    clock: FakeClock,
    where: Where,
    inner: SlowConsumer,
    chunk_gate: SlowConsumer,
    plain: SlowConsumer,
) -> Any:
    async def retry(msg: Message, ctx: Any) -> Message:
        where.calls[msg.trace_id] += 1
        if where.calls[msg.trace_id] <= FAILS_BEFORE_SUCCESS:
            where.backoff = msg.trace_id  # the runtime now sleeps its backoff
            raise RuntimeError("transient")
        where.backoff = None
        where.calls.pop(msg.trace_id, None)
        return msg.model_copy(update={"payload": FinalAnswer(text="retried")})

    async def inner_work(msg: Message, ctx: Any) -> Message:
        where.playbook = msg.trace_id
        try:
            await inner.func(msg, ctx)
        finally:
            where.playbook = None
        return msg.model_copy(update={"payload": FinalAnswer(text="played")})

    def playbook() -> tuple[Any, None]:
        node = Node(inner_work, name="inner", policy=NodePolicy(validate="none"))
        return create(node.to(), clock=clock), None

    async def play(msg: Message, ctx: Any) -> Message:
        answer = await ctx.call_playbook(playbook, msg)
        return msg.model_copy(update={"payload": answer})

    async def stream(msg: Message, ctx: Any) -> Message:
        for index in range(3):
            await ctx.emit_chunk(parent=msg, text=f"part {index}")
            await chunk_gate.func(msg, ctx)
        await ctx.emit_chunk(parent=msg, text="", done=True)
        return msg.model_copy(update={"payload": FinalAnswer(text="streamed")})

    async def finish(msg: Message, ctx: Any) -> Message:
        return msg.model_copy(update={"payload": FinalAnswer(text="plain")})

    entry = predicate_router("entry", lambda m: KINDS[int(m.payload) % len(KINDS)])
    nodes = {
        "retry": Node(retry, name="retry", policy=RETRY),
        "play": Node(play, name="play", policy=NodePolicy(validate="none")),
        "stream": Node(stream, name="stream", policy=NodePolicy(validate="none")),
        "plain": Node(plain.func, name="plain", policy=NodePolicy(validate="none")),
    }
    last = Node(finish, name="finish", policy=NodePolicy(validate="none"))
    return create(
        entry.to(*nodes.values()),
        nodes["plain"].to(last),
        queue_maxsize=0,  # unbounded: all 5,000 traces are in flight at once
        clock=clock,
    )


@dataclass(frozen=True)
class StormReport:
    to_cancel: int
    cancelled: int
    cancelled_with_terminal: int
    completed: int
    not_ended: int
    duplicated: int
    landed: Counter[str]
    broken_streams: int
    tasks_before: int
    tasks_after: int
    trace_flags_left: int


async def _storm() -> StormReport:
    rng = random.Random(SEED)
    clock = FakeClock()
    where = Where()
    inner, chunk_gate, plain = SlowConsumer(), SlowConsumer(), SlowConsumer()
    flow = build_storm_flow(clock, where, inner, chunk_gate, plain)
    trace_ids = [f"storm-{n}" for n in range(TRACES)]
    to_cancel = set(rng.sample(trace_ids, TRACES // 2))
    pending_cancel = sorted(to_cancel)
    rng.shuffle(pending_cancel)
    terminals: Counter[str] = Counter()
    chunks: dict[str, list[int]] = {}
    cancelled: set[str] = set()
    landed: Counter[str] = Counter()
    tasks_before = len(asyncio.all_tasks())
    flow.run()

    async def drain() -> None:
        while True:
            item = await flow.fetch()
            payload = item.payload
            if isinstance(payload, StreamChunk):
                chunks.setdefault(item.trace_id, []).append(payload.seq)
            else:
                terminals[item.trace_id] += 1
                waiting.discard(item.trace_id)

    waiting = {t for t in trace_ids if t not in to_cancel}
    drainer = asyncio.create_task(drain())
    try:
        for number in range(TRACES):
            await flow.emit(
                Message(payload=number, headers=Headers(tenant="storm"), trace_id=trace_ids[number])
            )

        async def cancel(trace_id: str, point: str) -> None:
            if trace_id in cancelled:
                return
            if await flow.cancel(trace_id):
                cancelled.add(trace_id)
                landed[point] += 1

        while pending_cancel or waiting:
            action = rng.random()
            if where.playbook in to_cancel and where.playbook not in cancelled:
                await cancel(where.playbook, "playbook")
            elif where.backoff in to_cancel and where.backoff not in cancelled:
                await cancel(where.backoff, "backoff")
            elif pending_cancel and action < 0.5:
                for _ in range(rng.randint(1, 3)):
                    if pending_cancel:
                        await cancel(pending_cancel.pop(), "random")
            elif action < 0.75:
                clock.advance_to_next()
            else:
                for gate in (inner, chunk_gate, plain):
                    if gate.waiting:  # no spare permits: the next one parks again
                        gate.release(1)
            # Let the flow run a few steps between two actions (the "random points").
            for _ in range(rng.randint(1, 6)):
                await asyncio.sleep(0)
        for gate in (inner, chunk_gate, plain):
            gate.open()
        await flow.wait_idle()
        rookery = flow.context(ROOKERY)
        while True:
            try:
                item = rookery.fetch_nowait()
            except asyncio.QueueEmpty:
                break
            if not isinstance(item.payload, StreamChunk):
                terminals[item.trace_id] += 1
        flags_left = len(flow._trace_events)
    finally:
        drainer.cancel()
        await asyncio.gather(drainer, return_exceptions=True)
        await flow.stop()
    await asyncio.sleep(0)  # done-callbacks of the stopped tasks
    expected = [0, 1, 2, 3]
    return StormReport(
        to_cancel=len(to_cancel),
        cancelled=len(cancelled),
        cancelled_with_terminal=sum(1 for t in cancelled if terminals[t]),
        completed=sum(1 for t in trace_ids if t not in cancelled and terminals[t] == 1),
        not_ended=sum(1 for t in trace_ids if t not in cancelled and terminals[t] == 0),
        duplicated=sum(1 for t in trace_ids if terminals[t] > 1),
        landed=landed,
        broken_streams=sum(
            1 for t, seqs in chunks.items() if t not in cancelled and seqs != expected
        ),
        tasks_before=tasks_before,
        tasks_after=len(asyncio.all_tasks()),
        trace_flags_left=flags_left,
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def report() -> AsyncIterator[StormReport]:
    with counted_runtime_logs():
        async with asyncio.timeout(120):
            yield await _storm()


async def test_cancels_land_inside_playbooks_in_backoff_and_elsewhere(report: StormReport) -> None:
    assert report.landed["playbook"] >= 10
    assert report.landed["backoff"] >= 10
    assert report.landed["random"] >= 1_000
    assert report.cancelled >= 2_000


async def test_a_cancelled_trace_delivers_nothing(report: StormReport) -> None:
    assert report.cancelled_with_terminal == 0


async def test_every_other_trace_completes_exactly_once(report: StormReport) -> None:
    assert report.not_ended == 0
    assert report.duplicated == 0
    assert report.completed + report.cancelled == TRACES
    assert report.completed >= TRACES - report.to_cancel


async def test_completed_streams_have_no_gaps(report: StormReport) -> None:
    assert report.broken_streams == 0


async def test_no_task_is_leaked(report: StormReport) -> None:
    assert report.tasks_after == report.tasks_before


async def test_no_cancel_flag_is_left_behind(report: StormReport) -> None:
    assert report.trace_flags_left == 0
