"""Property: whatever interleaving of puts, gets and cancellations, nothing is lost
and nothing is duplicated; an item whose put was cancelled never arrives."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from penguiflow.actors import Mailbox, MailboxEmpty

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 1)),
        st.tuples(st.just("put_nowait"), st.integers(0, 1)),
        st.tuples(st.just("get"), st.just(0)),
        st.tuples(st.just("get_nowait"), st.just(0)),
        st.tuples(st.just("cancel"), st.integers(0, 30)),
        st.tuples(st.just("turn"), st.just(0)),
    ),
    max_size=80,
)


async def _scenario(ops: list[tuple[str, int]], capacity: int) -> None:
    box = Mailbox(capacity, lanes=2)
    accepted: list[int] = []  # items whose put completed (returned normally)
    refused: set[int] = set()  # items whose put raised CancelledError or returned False
    received: list[int] = []
    tasks: list[asyncio.Task[Any]] = []
    counter = iter(range(10**6))

    async def do_put(item: int, lane: int) -> None:
        try:
            await box.put(item, lane)
        except asyncio.CancelledError:
            refused.add(item)
            raise
        accepted.append(item)

    async def do_get() -> None:
        received.append((await box.get()).item)

    for op, arg in ops:
        if op == "put":
            tasks.append(asyncio.create_task(do_put(next(counter), arg)))
        elif op == "put_nowait":
            item = next(counter)
            (accepted.append if box.put_nowait(item, arg) else refused.add)(item)
        elif op == "get":
            tasks.append(asyncio.create_task(do_get()))
        elif op == "get_nowait":
            with contextlib.suppress(MailboxEmpty):
                received.append(box.get_nowait().item)
        elif op == "cancel" and tasks:
            tasks[arg % len(tasks)].cancel()
        else:
            await asyncio.sleep(0)

    # Drain: consume until every producer has finished and the mailbox is empty.
    async with asyncio.timeout(5):
        while any(not t.done() for t in tasks if t.get_coro().__name__ == "do_put") or len(box):
            try:
                received.append(box.get_nowait().item)
            except MailboxEmpty:
                await asyncio.sleep(0)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    assert len(box) == 0
    assert len(received) == len(set(received)), "an item arrived twice"
    assert not (set(received) & refused), "an item whose put failed arrived"
    assert sorted(received) == sorted(accepted), "an accepted item was lost"


@settings(max_examples=150, deadline=None)
@given(ops=OPS, capacity=st.sampled_from([1, 2, 0]))
def test_no_loss_no_duplicate_under_cancellation(ops: list[tuple[str, int]], capacity: int) -> None:
    asyncio.run(_scenario(ops, capacity))
