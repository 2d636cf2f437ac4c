"""The process ``test_kill9_interrupts.py`` SIGKILLs: a durable flow that asks a person.

Usage: ``python _kill9_interrupt_child.py STORE N DONE`` (STORE: a SQLite file, or
``redis://host:port/db#namespace``; N: orders ``0..N-1`` with idempotency keys
``order-<i>``; DONE: comma-separated indices whose final the parent already holds,
``-`` for none).

The flow: ``ask`` prices each order, then ``ctx.interrupt({"order": i})`` waits for
a reviewer's answer, works a little, and ``wrap`` turns the result into a
``FinalAnswer`` whose text is a function of the order and the answer
(:func:`expected`). The reviewer (this process) answers ``answer(i)``.

Each start does what a restarted service does: ``run()``, ``recover()``; the
reviewer answers every interrupt the journal holds unanswered (a person with the
list of pending questions: the notice of some was fetched before the kill); the
producer re-sends EVERY input with its idempotency key; then it fetches until
every index not in DONE has its final, answering each ``Interrupt`` fetched. A
``resume`` whose token is already answered (the same question seen twice) raises
``InterruptTokenError`` and is counted, not fatal. One line per fact, each with
one ``os.write``:

* ``ready <resumed>``: ``recover()`` returned;
* ``asked <i>``: an ``Interrupt`` of order ``i`` was fetched (or found pending);
* ``answered <i>``: its ``resume`` returned (the answer is journaled);
* ``again <i>``: a ``resume`` of an answered token was refused;
* ``final <text>``: a final, as soon as ``fetch()`` returns;
* ``complete``: every final is in; the flow stopped cleanly.
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from penguiflow import FinalAnswer, Headers, Interrupt, Message, Node, NodePolicy, create
from penguiflow.errors import InterruptTokenError
from penguiflow.stores import SQLiteStateStore

# A killed child's Redis journal lease expires this soon: the next child waits no longer
# (one live process at a time here, so a short lease is never taken over).
KILL_LEASE_S = 0.5

WORK_S = 0.003  # long enough for kills to land mid-flow
FETCH_TIMEOUT_S = 20.0  # safety net: a lost final ends the run instead of hanging it
POLICY = NodePolicy(validate="none")


def answer(i: int) -> int:
    """What the reviewer answers for order ``i``."""
    return 7 * i + 3


def expected(i: int) -> str:
    """The final text of order ``i``."""
    return f"order-{i} price={2 * i} answer={answer(i)}"


async def ask(message: Message, ctx: Any) -> Message:
    i = message.payload["order"]
    await asyncio.sleep(WORK_S)  # before the question: runs again after a crash
    reply = await ctx.interrupt({"order": i})
    await asyncio.sleep(WORK_S)
    return message.model_copy(update={"payload": {"order": i, "price": 2 * i, "answer": reply}})


async def wrap(message: Message, _ctx: Any) -> Message:
    p = message.payload
    text = f"order-{p['order']} price={p['price']} answer={p['answer']}"
    return message.model_copy(update={"payload": FinalAnswer(text=text)})


def open_store(where: str) -> Any:
    """``redis://...#namespace`` is a Redis store, anything else a SQLite file."""
    if where.startswith("redis://"):
        from penguiflow.distributed import RedisStateStore

        url, _, namespace = where.partition("#")
        return RedisStateStore(url, namespace=namespace, journal_lease_s=KILL_LEASE_S)
    return SQLiteStateStore(where)


def build(store: Any) -> Any:
    ask_node = Node(ask, name="ask", policy=POLICY)
    wrap_node = Node(wrap, name="wrap", policy=POLICY)
    return create(ask_node.to(wrap_node), wrap_node.to(), state_store=store, durable=True)


def say(line: str) -> None:
    os.write(1, (line + "\n").encode())


async def review(flow: Any, token: str, order: int) -> None:
    say(f"asked {order}")
    try:
        await flow.resume(token, answer(order))
    except InterruptTokenError:
        say(f"again {order}")
        return
    say(f"answered {order}")


async def main(where: str, n: int, done: set[int]) -> None:
    store = open_store(where)
    flow = build(store)
    flow.run()
    resumed = await flow.recover()
    say(f"ready {len(resumed)}")
    for record in (await store.journal.load()).interrupts:
        if not record.resumed:  # pending: its notice may have been fetched before
            await review(flow, record.token, record.decode_payload()["order"])

    async def produce() -> None:
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
                item = await flow.fetch()
                if isinstance(item, Interrupt):
                    await review(flow, item.token, item.payload["order"])
                    continue
                text = item.payload.text
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
