"""Over Redis, cancelling traces in flight costs no other trace a result, nor doubles one.

``prep -> enrich -> score`` with ``enrich`` and ``score`` hosted by two
in-process workers; 200 traces (two results each), a seeded 60 of them
cancelled while they are in flight. Every other trace must deliver exactly
its two results.
"""

from __future__ import annotations

import asyncio
import collections
import random

import pytest
import redis_flows

from penguiflow import Headers, Message

pytestmark = pytest.mark.redis

TRACES = 200
CANCELLED = 60


async def test_cancels_in_flight_leave_every_other_trace_whole(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_chain, ["enrich", "score"])
    for _ in range(2):
        await cluster.host(redis_flows.build_chain, ["enrich", "score"])
    rnd = random.Random(2612)
    messages = [Message(payload={"n": n}, headers=Headers(tenant="t")) for n in range(TRACES)]
    doomed = {m.trace_id for m in rnd.sample(messages, CANCELLED)}
    seen: dict[str, list[int]] = collections.defaultdict(list)

    async def produce() -> None:
        for i, msg in enumerate(messages):
            await flow.emit(msg)
            if i % 10 == 9:
                for sent in messages[i - 9 : i + 1]:
                    if sent.trace_id in doomed:
                        await flow.cancel(sent.trace_id)

    wanted = 2 * (TRACES - CANCELLED)
    async with asyncio.timeout(60), asyncio.TaskGroup() as group:
        group.create_task(produce())
        kept = 0
        while kept < wanted:
            result = await flow.fetch()
            if result.trace_id not in doomed:
                assert result.payload["scored"] is True
                seen[result.trace_id].append(result.payload["seq"])
                kept += 1
    for msg in messages:
        if msg.trace_id not in doomed:
            assert seen[msg.trace_id] == [0, 1], msg.payload
