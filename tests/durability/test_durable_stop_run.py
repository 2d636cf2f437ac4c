"""stop() then run() on one durable flow loses nothing, whatever stop() cut short.

A two-node chain over small edges keeps steps committing and outputs waiting
for room while ``stop()`` lands twice in the middle; the flow is run again
each time, without a restart. Every input must come out exactly once: a step
whose commit landed as stop() came has its outputs on their edges and is not
handled again; one whose commit did not land is handled again.
"""

from __future__ import annotations

import asyncio
import collections
import random
from typing import Any

import pytest
from durable_support import message

from penguiflow import Node, NodePolicy, create

INPUTS = 120
STOPS = (40, 80)


async def _run(store: Any, seed: int) -> collections.Counter[Any]:
    rnd = random.Random(seed)

    async def work(msg: Any, ctx: Any) -> Any:
        for _ in range(rnd.randrange(4)):
            await asyncio.sleep(0)
        return msg.model_copy(update={"payload": msg.payload * 10})

    policy = NodePolicy(validate="none")
    a, b = Node(work, name="a", policy=policy), Node(work, name="b", policy=policy)
    flow = create(a.to(b), b.to(), queue_maxsize=4, state_store=store, durable=True)
    flow.run()
    await flow.recover()
    got: collections.Counter[Any] = collections.Counter()
    sending = True

    async def fetcher() -> None:
        while sending or flow.mailboxes()["Rookery"].depth:
            try:
                out = await asyncio.wait_for(flow.fetch(), 0.2)
            except TimeoutError:
                continue
            got[out.payload] += 1

    try:
        async with asyncio.timeout(30), asyncio.TaskGroup() as group:
            group.create_task(fetcher())
            for i in range(INPUTS):
                await flow.emit(message(i))
                if i in STOPS:
                    await flow.stop()
                    flow.run()
            await flow.wait_idle()
            sending = False
    finally:
        await flow.stop()
    return got


@pytest.mark.parametrize("seed", [0, 1, 2])
async def test_every_input_comes_out_once_across_stops(reopen: Any, seed: int) -> None:
    got = await _run(reopen(), seed)
    assert got == collections.Counter(100 * i for i in range(INPUTS))


async def test_stop_does_not_wait_forever_for_a_stalled_commit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from durable_support import HeldJournal, memory_store

    from penguiflow._runtime import durable

    monkeypatch.setattr(durable, "OUTCOME_WAIT_S", 0.2)
    journal = HeldJournal()  # its commits never return: a stalled network

    async def work(msg: Any, ctx: Any) -> Any:
        return msg

    node = Node(work, name="work", policy=NodePolicy(validate="none"))
    flow = create(node.to(), state_store=memory_store(journal), durable=True)
    flow.run()
    async with asyncio.timeout(10):
        await flow.emit(message("stuck"))
        await journal.entered.wait()
        await flow.stop()  # gives up on the commit after OUTCOME_WAIT_S
        journal.release.set()
        flow.run()  # the commit never landed: the item is handled again
        assert (await flow.fetch()).payload == "stuck"
        await flow.wait_idle()
        assert flow.mailboxes()["Rookery"].depth == 0  # once, not twice
        await flow.stop()
