"""Each accepted item finishes exactly once at the output: the gaps that broke it.

Bare payloads cancelled by their carried trace, a deployment closed while its
flow runs, a frozen worker's heartbeat taking back an entry another worker
claimed, and a return stream that expired before its refresh (results refused
meanwhile).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import redis_flows

from penguiflow import Headers, Message
from penguiflow.distributed._host import NodeHost
from penguiflow.distributed._protocol import GROUP, Keys

pytestmark = pytest.mark.redis


def _msg(payload: Any) -> Message:
    return Message(payload=payload, headers=Headers(tenant="acme"))


@pytest.fixture(autouse=True)
def _fresh_gates() -> None:
    redis_flows.CALLS.clear()
    redis_flows.GATE.clear()
    redis_flows.ENTERED.clear()


async def _entered(key: str) -> None:
    async with asyncio.timeout(5):
        await redis_flows.ENTERED.setdefault(key, asyncio.Event()).wait()


async def test_cancelling_a_trace_skips_its_bare_payloads_a_worker_holds(cluster) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_bare_hold, ["bare_gated"])
    # prefetch 2: the worker reads both entries, runs r1-a, keeps r1-b waiting.
    await cluster.host(redis_flows.build_bare_hold, ["bare_gated"], prefetch=2)
    redis_flows.GATE["r1-b"] = asyncio.Event()
    redis_flows.GATE["r1-b"].set()  # should it run, it would answer at once
    msg = _msg("r1")
    # hold sends two bare dicts (they travel Carried) and keeps the trace active.
    await flow.emit(msg)
    await _entered("r1-a")
    assert await flow.cancel(msg.trace_id)
    assert deployment.backlog() == {"bare_gated": 0}  # purged at the origin at once
    host = cluster.hosts[0][0]
    async with asyncio.timeout(5):
        while not host._is_cancelled(msg.trace_id):  # the notice reached the worker
            await asyncio.sleep(0.01)
    redis_flows.GATE["r1-a"].set()  # a bare payload already running is not interrupted
    async with asyncio.timeout(5):
        await flow.wait_idle()
        while ("bare_gated", "r1-a") not in redis_flows.CALLS:
            await asyncio.sleep(0.01)
    await host.wait_processed(2)
    # The worker was told: the entry it held for the cancelled trace never ran.
    assert ("bare_gated", "r1-b") not in redis_flows.CALLS
    from penguiflow import hosting

    assert hosting.take_rookery_buffer(flow) == []  # r1-a's late result was dropped


async def test_bare_payloads_of_one_trace_come_back_in_send_order(cluster) -> None:
    flow, _deployment = cluster.deploy(redis_flows.build_bare_split, ["bare_gated"])
    await cluster.host(redis_flows.build_bare_split, ["bare_gated"], concurrency=2)
    await flow.emit(_msg("x"))  # two bare payloads of one trace: x-a, then x-b
    await _entered("x-a")
    await _entered("x-b")
    redis_flows.GATE["x-b"].set()  # the second finishes first
    async with asyncio.timeout(5):
        while ("bare_gated", "x-b") not in redis_flows.CALLS:
            await asyncio.sleep(0.01)
    redis_flows.GATE["x-a"].set()
    async with asyncio.timeout(5):
        got = [(await flow.fetch())["req"] for _ in range(2)]
    assert got == ["x-a", "x-b"]


async def test_a_closed_deployment_sends_nothing_and_recreates_no_stream(
    cluster, redis_client: Any, namespace: str
) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"], return_ttl_ms=90)
    await cluster.host(redis_flows.build_echo, ["echo"])
    await flow.emit(_msg("before"))
    async with asyncio.timeout(5):
        assert (await flow.fetch()).payload == "before"
    await deployment.close()  # the flow still runs
    with pytest.raises(RuntimeError, match="closed"):
        await flow.emit(_msg("after"))
    reply_to = Keys(namespace, "t").return_stream(deployment.origin, "echo")
    assert not await redis_client.exists(reply_to)
    assert deployment.backlog() == {"echo": 0}
    await flow.stop()  # the pump stops although it no longer reads Redis
    assert not await redis_client.exists(reply_to)


class SpyClient:
    """A client that reports each heartbeat (a call naming the held entry)."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.entry: str | None = None
        self.beats = 0
        self.beat = asyncio.Condition()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def register_script(self, script: str) -> Any:
        from redis.commands.core import AsyncScript

        return AsyncScript(self, script)

    def _names_entry(self, args: tuple[Any, ...]) -> bool:
        flat = [str(x) for a in args for x in (a if isinstance(a, list | tuple) else [a])]
        return self.entry is not None and self.entry in flat

    async def _seen(self, started: bool, reply: Any) -> Any:
        if started:  # a call that named the entry, sent after the test watched for it
            async with self.beat:
                self.beats += 1
                self.beat.notify_all()
        return reply

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        started = self._names_entry(keys_and_args)
        return await self._seen(started, await self._real.evalsha(sha, numkeys, *keys_and_args))

    async def xclaim(self, *args: Any, **kwargs: Any) -> Any:
        started = self._names_entry(args)
        return await self._seen(started, await self._real.xclaim(*args, **kwargs))

    async def wait_beats(self, count: int) -> None:
        async with self.beat:
            await self.beat.wait_for(lambda: self.beats >= count)


async def test_a_frozen_workers_heartbeat_leaves_a_claimed_entry_with_its_claimer(
    cluster, redis_url: str, redis_client: Any, namespace: str
) -> None:
    from redis.asyncio import Redis

    flow, deployment = cluster.deploy(redis_flows.build_gated, ["gated"])
    real = Redis.from_url(redis_url, decode_responses=True)
    spy = SpyClient(real)
    keys = Keys(namespace, "t")
    host = NodeHost(
        spy,  # type: ignore[arg-type]
        keys=keys,
        build=redis_flows.build_gated,
        nodes=["gated"],
        worker_id="frozen",
        claim_idle_ms=300,  # a heartbeat every 100 ms
        block_ms=50,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(host.run(stop))
    try:
        msg = _msg("held")
        await flow.emit(msg)
        await _entered(msg.trace_id)
        stream = keys.node_stream("gated")
        (held,) = await redis_client.xpending_range(stream, GROUP, "-", "+", 10)
        assert held["consumer"] == "frozen-gated-0"
        # This worker "was frozen" past the claim idle time: another one claims it.
        await redis_client.xclaim(stream, GROUP, "thief", 0, [held["message_id"]], justid=True)
        spy.entry = held["message_id"]
        async with asyncio.timeout(5):
            await spy.wait_beats(1)  # the woken worker's heartbeat ran
        (after,) = await redis_client.xpending_range(stream, GROUP, "-", "+", 10)
        assert after["consumer"] == "thief"  # not claimed back
        # The woken worker still finishes it first: its result is delivered once.
        redis_flows.GATE[msg.trace_id].set()
        async with asyncio.timeout(5):
            assert (await flow.fetch()).payload == "released"
            await flow.wait_idle()
        assert deployment.backlog() == {"gated": 0}
    finally:
        stop.set()
        async with asyncio.timeout(5):
            await task
        await real.aclose()


async def test_results_refused_while_the_return_stream_was_gone_are_redone(
    cluster, redis_client: Any, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The stream is deleted as an expiry would (a refresh that came too late): the
    # worker's answer is refused, the item must be redone. No refresh is due for
    # 20 s: the waiting return pump notices the stream is gone.
    flow, deployment = cluster.deploy(redis_flows.build_gated, ["gated"], return_ttl_ms=60_000)
    host = await cluster.host(redis_flows.build_gated, ["gated"])
    msg = _msg("refused")
    reply_to = Keys(namespace, "t").return_stream(deployment.origin, "gated")
    with caplog.at_level(logging.WARNING, logger="penguiflow.distributed"):
        await flow.emit(msg)
        await _entered(msg.trace_id)
        await redis_client.delete(reply_to)
        redis_flows.GATE[msg.trace_id].set()
        async with asyncio.timeout(5):
            await host.wait_processed(1)
            assert (await flow.fetch()).payload == "released"
            await flow.wait_idle()
            await host.wait_processed(2)  # redone once, whichever answer came first
    assert [r for r in caplog.records if r.getMessage() == "distributed_return_lost"]
    assert redis_flows.CALLS.count(("gated", msg.trace_id)) == 2
    assert deployment.backlog() == {"gated": 0}
    async with asyncio.timeout(5):
        while await redis_client.xlen(reply_to):  # the pump drops the second result
            await asyncio.sleep(0.01)
    from penguiflow import hosting

    assert hosting.take_rookery_buffer(flow) == []
