"""The process ``test_kill9.py`` SIGKILLs: a durable order flow on a store file.

Usage: ``python _kill9_child.py STORE N DONE`` (STORE: a SQLite file, or
``redis://host:port/db#namespace``; N: inputs ``0..N-1`` with idempotency keys
``order-<i>``; DONE: comma-separated indices whose final the parent already holds,
``-`` for none).

The flow: ``fan`` sends each order to ``price`` and ``stock`` (fan-out), a
``join_k("join", 2)`` gathers both parts, and ``check``, a controller looping on
itself with a hop budget, turns them into a ``WM``, checks three times and returns
a ``FinalAnswer``. Every answer is a function of the order number
(:func:`expected`), so the parent can tell a wrong final from a right one.

Each start does what a restarted service does: ``run()``, ``recover()``, then the
producer re-sends EVERY input with its idempotency key, then it fetches until every
index not in DONE has its final. It writes one line per fact on stdout, each with
one ``os.write`` (smaller than ``PIPE_BUF``, so a line is in the pipe whole or not
at all, and once ``write`` returns it is in the kernel: a SIGKILL after that cannot
lose it):

* ``ready <resumed>``: ``recover()`` returned, ``resumed`` trace ids back in flight;
* ``sent``: every emit returned (each input is in the journal);
* ``final <text>``: a final (its text starts ``order-<i>``), as soon as ``fetch()`` returns;
* ``complete``: every final is in; the flow stopped cleanly.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from penguiflow import WM, FinalAnswer, Headers, Message, Node, NodePolicy, create, join_k
from penguiflow.stores import SQLiteStateStore

# A killed child's Redis journal lease expires this soon: the next child waits no longer
# (one live process at a time here, so a short lease is never taken over).
KILL_LEASE_S = 0.5

CHECKS = 3  # controller hops before the final
WORK_S = 0.005  # what a worker "does": long enough for kills to land mid-flow
FETCH_TIMEOUT_S = 20.0  # safety net: a lost final ends the run instead of hanging it
POLICY = NodePolicy(validate="none")


def expected(i: int) -> str:
    """The final text of order ``i``: both parts, every check, the hop count."""
    return f"order-{i} price={3 * i + 1} stock={i % 7} checks={CHECKS} hops={CHECKS}"


async def fan(message: Message, _ctx: Any) -> Message:
    return message


async def price(message: Message, _ctx: Any) -> Message:
    await asyncio.sleep(WORK_S)
    i = message.payload["order"]
    return message.model_copy(update={"payload": {"order": i, "price": 3 * i + 1}})


async def stock(message: Message, _ctx: Any) -> Message:
    await asyncio.sleep(WORK_S)
    i = message.payload["order"]
    return message.model_copy(update={"payload": {"order": i, "stock": i % 7}})


async def check(message: Message, _ctx: Any) -> Message:
    """The controller: the join's parts become a WM, then three checks, then the answer."""
    if isinstance(message.payload, list):  # the join's list, in arrival order
        parts: dict[str, int] = {}
        for part in message.payload:
            parts.update(part)
        facts = [f"price={parts['price']}", f"stock={parts['stock']}"]
        wm = WM(query=f"order-{parts['order']}", facts=facts, budget_hops=CHECKS + 5)
        return message.model_copy(update={"payload": wm})
    wm = message.payload
    assert isinstance(wm, WM)
    checks = len(wm.facts) - 2
    if checks >= CHECKS:
        text = f"{wm.query} {' '.join(wm.facts[:2])} checks={checks} hops={wm.hops}"
        return message.model_copy(update={"payload": FinalAnswer(text=text)})
    updated = wm.model_copy(update={"facts": [*wm.facts, f"check-{checks}"]})
    return message.model_copy(update={"payload": updated})


def open_store(where: str) -> Any:
    """``redis://...#namespace`` is a Redis store, anything else a SQLite file."""
    if where.startswith("redis://"):
        from penguiflow.distributed import RedisStateStore  # only when asked: a slow import

        url, _, namespace = where.partition("#")
        return RedisStateStore(url, namespace=namespace, journal_lease_s=KILL_LEASE_S)
    return SQLiteStateStore(where)


def build(store: Any) -> Any:
    fan_node = Node(fan, name="fan", policy=POLICY)
    price_node = Node(price, name="price", policy=POLICY)
    stock_node = Node(stock, name="stock", policy=POLICY)
    join = join_k("join", 2)
    check_node = Node(check, name="check", allow_cycle=True, policy=POLICY)
    return create(
        fan_node.to(price_node, stock_node),
        price_node.to(join),
        stock_node.to(join),
        join.to(check_node),
        check_node.to(check_node),
        state_store=store,
        durable=True,
    )


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


async def main(where: str, n: int, done: set[int]) -> None:
    store = open_store(where)
    flow = build(store)
    flow.run()
    resumed = await flow.recover()
    say(f"ready {len(resumed)}")

    async def produce() -> None:
        # Concurrent emits share group commits; each returns once its input is journaled.
        await asyncio.gather(
            *(
                flow.emit(
                    Message(payload={"order": i}, headers=Headers(tenant="kill9")),
                    idempotency_key=f"order-{i}",
                )
                for i in range(n)
            )
        )
        say("sent")

    async def consume() -> None:
        missing = set(range(n)) - done
        async with asyncio.timeout(FETCH_TIMEOUT_S):
            while missing:
                result = await flow.fetch()
                # The window the parent cannot see: fetch() has committed the item's
                # delivered mark and the line is not in the pipe yet. Our part of it is
                # a few bytecodes and one write(2) (no buffering, no await in between);
                # the rest is fetch() getting the commit's result back from the
                # store's connection thread, which under load can take a millisecond.
                # The parent finds a final killed in it as "delivered in the journal,
                # never reported", at most one per kill since one fetch is in flight.
                text = result.payload.text
                say(f"final {text}")
                missing.discard(int(text.split()[0].removeprefix("order-")))

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            group.create_task(consume())
    finally:
        await flow.stop()
        await store.close()
    say("complete")


if __name__ == "__main__":
    already = {int(i) for i in sys.argv[3].split(",") if i not in ("", "-")}
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), already))
