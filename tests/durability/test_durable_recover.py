"""A flow abandoned mid-run, and a new flow on the same journal that recovers it.

Flow A runs on a store, is stopped with items on its edges and in hand (what a
crash leaves: stop() drops the items in hand, the journal keeps them), and flow B,
built anew on a new store over the same journal, recovers. Every trace must finish
exactly once, with the right answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from durable_support import bounded, fetch, fetch_all, message, until

from penguiflow import Node, NodePolicy, PenguiFlow, create
from penguiflow.errors import FlowError
from penguiflow.patterns import join_k
from penguiflow.testkit import FakeClock
from penguiflow.types import WM, FinalAnswer, Message

Reopen = Callable[[], Any]
NONE = NodePolicy(validate="none")


def step(
    name: str,
    fn: Callable[[Any], Any],
    *,
    gate: asyncio.Event | None = None,
    calls: list[Any] | None = None,
) -> Node:
    async def work(msg: Message, ctx: Any) -> Any:
        if calls is not None:
            calls.append(msg.payload)
        if gate is not None:
            await gate.wait()
        return msg.model_copy(update={"payload": fn(msg.payload)})

    return Node(work, name=name, policy=NONE)


async def journal_entries(store: Any) -> int:
    return len((await store.journal.load()).entries)


async def start(flow: PenguiFlow) -> list[str]:
    flow.run()
    return await bounded(flow.recover())


async def test_items_in_hand_and_queued_finish_once_after_recover(reopen: Reopen) -> None:
    store_a = reopen()
    held = asyncio.Event()  # never set: flow A dies with items in hand
    first_calls: list[Any] = []
    a = create(
        step("add", lambda p: p + 1, gate=held, calls=first_calls).to(
            step("mul", lambda p: p * 10)
        ),
        state_store=store_a,
        durable=True,
    )
    assert await start(a) == []
    sent = [message(i) for i in range(3)]
    for index, msg in enumerate(sent):
        await a.emit(msg, idempotency_key=f"order-{index}")
    await until(lambda: bool(first_calls))
    await a.stop()

    store_b = reopen()
    b = create(
        step("add", lambda p: p + 1).to(step("mul", lambda p: p * 10)),
        state_store=store_b,
        durable=True,
    )
    resumed = await start(b)
    try:
        assert sorted(resumed) == sorted(m.trace_id for m in sent)
        for index, msg in enumerate(sent):  # the producer re-sends everything
            await b.emit(msg, idempotency_key=f"order-{index}")
        got = {m.trace_id: m.payload for m in await fetch_all(b, 3)}
        assert got == {m.trace_id: (m.payload + 1) * 10 for m in sent}
        await bounded(b.wait_idle())
        assert b.mailboxes()["Rookery"].depth == 0
        assert await store_b.journal.unfinished_traces() == []
    finally:
        await b.stop()


async def test_join_buckets_survive(reopen: Reopen) -> None:
    def graph(gate: asyncio.Event | None, left_calls: list[Any]) -> tuple[Any, ...]:
        source = step("source", lambda p: p)
        left = step("left", lambda p: p * 2, calls=left_calls)
        right = step("right", lambda p: p * 3, gate=gate)
        join = join_k("join", 2)
        total = step("total", sum)
        return source.to(left, right), left.to(join), right.to(join), join.to(total), total.to()

    store_a = reopen()
    left_a: list[Any] = []
    a = create(*graph(asyncio.Event(), left_a), state_store=store_a, durable=True)
    await start(a)
    sent = [message(i + 1) for i in range(4)]
    for msg in sent:
        await a.emit(msg)

    async def buckets() -> int:
        return len((await store_a.journal.load()).state)

    async with asyncio.timeout(10):
        while await buckets() < len(sent):  # every left branch is in its join bucket
            await asyncio.sleep(0.001)
    await a.stop()

    left_b: list[Any] = []
    b = create(*graph(None, left_b), state_store=reopen(), durable=True)
    await start(b)
    try:
        got = {m.trace_id: m.payload for m in await fetch_all(b, len(sent))}
        assert got == {m.trace_id: m.payload * 5 for m in sent}
        assert left_b == []  # the buckets came back from the journal, not from re-runs
        await bounded(b.wait_idle())
        assert b.mailboxes()["Rookery"].depth == 0
    finally:
        await b.stop()


def controller(seen: list[int], *, stall_at: int | None) -> Node:
    stall = asyncio.Event()

    async def ctl(msg: Message, ctx: Any) -> Message:
        wm = msg.payload
        seen.append(wm.hops)
        if stall_at is not None and wm.hops >= stall_at:
            await stall.wait()
        if wm.hops >= 4:
            return msg.model_copy(update={"payload": FinalAnswer(text=f"hops={wm.hops}")})
        return msg

    return Node(ctl, name="ctl", allow_cycle=True, policy=NONE)


async def test_a_controller_loop_resumes_with_its_counters(reopen: Reopen) -> None:
    seen_a: list[int] = []
    ctl_a = controller(seen_a, stall_at=2)
    a = create(ctl_a.to(ctl_a), state_store=reopen(), durable=True)
    await start(a)
    sent = message(WM(query="q", budget_hops=10))
    await a.emit(sent)
    await until(lambda: seen_a == [0, 1, 2])
    await a.stop()

    seen_b: list[int] = []
    ctl_b = controller(seen_b, stall_at=None)
    b = create(ctl_b.to(ctl_b), state_store=reopen(), durable=True)
    assert await start(b) == [sent.trace_id]
    try:
        final = await fetch(b)
        assert final.payload == FinalAnswer(text="hops=4")
        assert seen_b == [2, 3, 4]  # hop 2 was in hand: handled again, then on
    finally:
        await b.stop()


async def test_retry_counts_survive(reopen: Reopen) -> None:
    def flaky(calls: list[int], *, stall_at: int | None) -> Node:
        stall = asyncio.Event()

        async def work(msg: Any, ctx: Any) -> Any:
            calls.append(len(calls))
            if stall_at is not None and len(calls) > stall_at:
                await stall.wait()
            raise RuntimeError("flaky")

        return Node(
            work, name="flaky", policy=NodePolicy(validate="none", max_retries=3, backoff_base=0)
        )

    calls_a: list[int] = []
    a = create(flaky(calls_a, stall_at=2).to(), state_store=reopen(), durable=True)
    await start(a)
    await a.emit(message("x"))
    await until(lambda: len(calls_a) == 3)  # attempts 0, 1 failed; attempt 2 in hand
    await a.stop()

    calls_b: list[int] = []
    b = create(
        flaky(calls_b, stall_at=None).to(),
        state_store=reopen(),
        durable=True,
        emit_errors_to_rookery=True,
    )
    await start(b)
    try:
        error = await fetch(b)
        assert isinstance(error, FlowError)
        assert error.metadata["attempt"] == 3
        assert len(calls_b) == 2  # attempts 2 and 3 only: the count came back
    finally:
        await b.stop()


async def test_deadlines_are_absolute_across_a_restart(reopen: Reopen) -> None:
    clock_a = FakeClock(wall=1_000.0)
    held = asyncio.Event()
    calls: list[Any] = []
    a = create(
        step("work", lambda p: p, gate=held, calls=calls).to(),
        state_store=reopen(),
        durable=True,
        clock=clock_a,
    )
    await start(a)
    await a.emit(message("late", deadline_s=1_050.0))
    await until(lambda: bool(calls))
    await a.stop()

    clock_b = FakeClock(wall=1_100.0)  # the restart came after the deadline
    calls_b: list[Any] = []
    b = create(
        step("work", lambda p: p, calls=calls_b).to(),
        state_store=reopen(),
        durable=True,
        clock=clock_b,
    )
    await start(b)
    try:
        final = await fetch(b)
        assert final.payload == FinalAnswer(text="Deadline exceeded")
        assert calls_b == []
    finally:
        await b.stop()


async def test_a_cancelled_trace_stays_cancelled(reopen: Reopen) -> None:
    held = asyncio.Event()
    calls: list[Any] = []
    a = create(
        step("work", lambda p: p, gate=held, calls=calls).to(), state_store=reopen(), durable=True
    )
    await start(a)
    dropped, kept = message("drop"), message("keep")
    await a.emit(dropped)
    await a.emit(kept)
    await until(lambda: bool(calls))
    assert await a.cancel(dropped.trace_id) is True
    await a.stop()

    store_b = reopen()
    b = create(step("work", lambda p: p).to(), state_store=store_b, durable=True)
    assert await start(b) == [kept.trace_id]
    try:
        assert (await fetch(b)).payload == "keep"
        await b.emit(message("again", trace_id=dropped.trace_id))
        await bounded(b.wait_idle())
        assert b.mailboxes()["Rookery"].depth == 0
        records = await store_b.journal.traces(include_finished=True)
        status = {record.trace_id: record.status for record in records}
        assert status == {dropped.trace_id: "cancelled", kept.trace_id: "finished"}
    finally:
        await b.stop()


async def test_a_trace_cancelled_with_results_in_rookery_gets_none_after_recover(
    reopen: Reopen,
) -> None:
    a = create(step("work", lambda p: p).to(), state_store=reopen(), durable=True)
    await start(a)
    dropped, kept = message("drop"), message("keep")
    await a.emit(dropped)
    await a.emit(kept)
    await bounded(a.wait_idle())  # both finals are journaled, waiting in Rookery
    assert await a.cancel(dropped.trace_id) is True  # drops its queued final
    await a.stop()

    b = create(step("work", lambda p: p).to(), state_store=reopen(), durable=True)
    assert await start(b) == [kept.trace_id]
    try:
        assert (await fetch(b)).payload == "keep"
        await bounded(b.wait_idle())
        assert b.mailboxes()["Rookery"].depth == 0  # the cancelled one's final is gone
    finally:
        await b.stop()


async def test_each_rookery_item_is_fetched_once_across_a_crash(reopen: Reopen) -> None:
    a = create(step("work", lambda p: p).to(), state_store=reopen(), durable=True)
    await start(a)
    sent = [message(i) for i in range(3)]
    for msg in sent:
        await a.emit(msg)
    first = await fetch(a)
    await bounded(a.wait_idle())
    await a.stop()

    b = create(step("work", lambda p: p).to(), state_store=reopen(), durable=True)
    await start(b)
    try:
        rest = await fetch_all(b, 2)
        assert sorted(m.payload for m in [first, *rest]) == [0, 1, 2]
        await asyncio.sleep(0)
        assert b.mailboxes()["Rookery"].depth == 0
    finally:
        await b.stop()


async def test_an_item_marked_delivered_before_the_crash_is_skipped(reopen: Reopen) -> None:
    store_a = reopen()
    a = create(step("work", lambda p: p).to(), state_store=store_a, durable=True)
    await start(a)
    sent = [message(i) for i in range(2)]
    for msg in sent:
        await a.emit(msg)
    await bounded(a.wait_idle())
    snapshot = await store_a.journal.load()
    # The process died after marking the first item, before returning it.
    assert await store_a.journal.mark_delivered(snapshot.rookery[0].id) is True
    await a.stop()

    b = create(step("work", lambda p: p).to(), state_store=reopen(), durable=True)
    await start(b)
    try:
        (only,) = await fetch_all(b, 1)
        assert only.payload == 1
        assert b.mailboxes()["Rookery"].depth == 0
    finally:
        await b.stop()
