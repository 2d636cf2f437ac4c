"""Cancelling traces never costs another trace anything.

A fan-out node whose put to a full edge completes just as a cancel of its
trace arrives must not carry that cancellation into the next trace it takes:
every trace that was not cancelled delivers both of its results. The nodes
yield a seeded number of times, so each seed is one fixed interleaving.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from penguiflow import Headers, Message, Node, NodePolicy, create

TRACES = 300
CANCELLED = 100


async def _run(seed: int) -> tuple[list[Any], set[str], list[Message]]:
    rnd = random.Random(seed)

    def work(tag: str) -> Any:
        async def step(msg: Message, ctx: Any) -> Message:
            for _ in range(rnd.randrange(4)):
                await asyncio.sleep(0)
            return msg.model_copy(update={"payload": (tag, msg.payload)})

        return step

    async def fan(msg: Message, ctx: Any) -> Message:
        return msg

    policy = NodePolicy(validate="none")
    f = Node(fan, name="fan", policy=policy)
    a = Node(work("a"), name="a", policy=policy)
    b = Node(work("b"), name="b", policy=policy)
    flow = create(f.to(a, b), a.to(), b.to(), queue_maxsize=2)
    flow.run()
    headers = Headers(tenant="t")
    msgs = [Message(payload=i, headers=headers) for i in range(TRACES)]
    cancelled = {m.trace_id for m in rnd.sample(msgs, CANCELLED)}

    async def produce() -> None:
        for i, msg in enumerate(msgs):
            await flow.emit(msg)
            if i % 10 == 9:  # cancel the chosen ones of the last ten, in flight
                for sent in msgs[i - 9 : i + 1]:
                    if sent.trace_id in cancelled:
                        await flow.cancel(sent.trace_id)

    wanted = 2 * (TRACES - CANCELLED)
    got: list[Any] = []
    try:
        async with asyncio.timeout(20):
            producer = asyncio.create_task(produce())
            while sum(1 for g in got if g.trace_id not in cancelled) < wanted:
                got.append(await flow.fetch())
            await producer
    finally:
        await flow.stop()
    return got, cancelled, msgs


@pytest.mark.parametrize("seed", [0, 1, 2])
async def test_every_trace_not_cancelled_delivers_all_its_results(seed: int) -> None:
    got, cancelled, msgs = await _run(seed)
    results: dict[str, list[Any]] = {}
    for out in got:
        results.setdefault(out.trace_id, []).append(out.payload)
    for msg in msgs:
        if msg.trace_id in cancelled:
            continue
        assert sorted(results.get(msg.trace_id, [])) == [("a", msg.payload), ("b", msg.payload)]
