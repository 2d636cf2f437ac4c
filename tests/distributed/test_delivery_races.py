"""Races between sending, answering and bookkeeping, forced with a gated Redis client.

Each test holds one Redis reply at the moment a race needs it (no sleeps): the
origin's append script returns only after a worker already answered the entry,
or its reply is lost after Redis appended the batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis_flows

from penguiflow import Headers, Message, hosting
from penguiflow.distributed import RedisDeployment
from penguiflow.distributed._codec import encode
from penguiflow.distributed._protocol import GROUP, ROOKERY_CODE, Keys, ResultEntry, WorkEntry

pytestmark = pytest.mark.redis

Hook = Callable[[list[str]], Awaitable[None]]


class GatedClient:
    """A ``redis.asyncio.Redis`` stand-in that lets a test act inside a reply.

    ``after_append`` runs once, after Redis appended a batch of work entries and
    before the origin sees the reply; ``lose_append_reply`` makes that reply fail
    (after Redis applied it), as a connection dropped at the wrong time would.
    """

    def __init__(self, real: Any) -> None:
        self._real = real
        self.after_append: Hook | None = None
        self.lose_append_reply = False
        self.return_deletes = 0
        self.return_deleted = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def register_script(self, script: str) -> Any:
        from redis.commands.core import AsyncScript

        return AsyncScript(self, script)  # its calls come back through evalsha below

    async def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:
        reply = await self._real.evalsha(sha, numkeys, *keys_and_args)
        # The work-append script replies [made, ids]: it added entries.
        if isinstance(reply, list) and len(reply) == 2 and reply[1]:
            hook, self.after_append = self.after_append, None
            if hook is not None:
                await hook(reply[1])
            if self.lose_append_reply:
                from redis.exceptions import ConnectionError

                self.lose_append_reply = False
                raise ConnectionError("reply lost after the append (test)")
        return reply

    async def xdel(self, name: str, *ids: str) -> Any:
        deleted = await self._real.xdel(name, *ids)
        if ":return:" in name:  # the return pump finished a batch of results
            self.return_deletes += 1
            self.return_deleted.set()
        return deleted


@pytest.fixture
async def gated(redis_url: str, namespace: str, redis_client: Any) -> Any:
    from redis.asyncio import Redis

    real = Redis.from_url(redis_url, decode_responses=True)
    client = GatedClient(real)
    flow = redis_flows.build_echo()
    deployment = RedisDeployment(
        client,  # type: ignore[arg-type]
        nodes=["echo"],
        flow_name="t",
        prefix=namespace,
        block_ms=50,
    )
    deployment.apply(flow)
    flow.run()
    try:
        yield flow, deployment, client
    finally:
        await flow.stop()
        await deployment.close()
        await real.aclose()


def _msg(payload: Any) -> Message:
    return Message(payload=payload, headers=Headers(tenant="acme"))


async def _read_entries(client: Any, stream: str, count: int) -> list[tuple[str, WorkEntry]]:
    from penguiflow.distributed._redis import ensure_group

    await ensure_group(client, stream)
    rows = await client.xreadgroup(GROUP, "fake", {stream: ">"}, count=count)
    return [(i, WorkEntry.model_validate_json(f["d"])) for _, entries in rows for i, f in entries]


async def _answer(client: Any, stream: str, entry_id: str, work: WorkEntry, item: Any) -> None:
    result = ResultEntry(
        ref=work.ref, deliveries=1, worker="fake", outputs=[(ROOKERY_CODE, encode(item))]
    )
    await client.xadd(work.reply_to, {"d": result.model_dump_json()})
    await client.xack(stream, GROUP, entry_id)
    await client.xdel(stream, entry_id)


async def test_a_result_arriving_before_the_append_reply_is_delivered(
    gated: Any, redis_client: Any, namespace: str
) -> None:
    flow, deployment, client = gated
    stream = Keys(namespace, "t").node_stream("echo")
    msg = _msg("fast")

    async def answer_before_the_reply(ids: list[str]) -> None:
        # A fast worker: it takes the entry and answers it, and the origin's pump
        # handles that result, all before the append's reply reaches the sender.
        ((entry_id, work),) = await _read_entries(redis_client, stream, 1)
        assert entry_id == ids[0]
        await _answer(redis_client, stream, entry_id, work, msg)
        async with asyncio.timeout(5):
            await client.return_deleted.wait()

    client.after_append = answer_before_the_reply
    await flow.emit(msg)
    async with asyncio.timeout(5):
        got = await flow.fetch()
        await flow.wait_idle()
    assert got.payload == "fast"
    assert deployment.backlog() == {"echo": 0}
    assert client.after_append is None  # the hook did run


async def test_a_lost_append_reply_sends_again_and_delivers_once(
    gated: Any, redis_client: Any, namespace: str
) -> None:
    flow, deployment, client = gated
    stream = Keys(namespace, "t").node_stream("echo")
    client.lose_append_reply = True
    msg = _msg("twice in the stream")
    await flow.emit(msg)
    async with asyncio.timeout(5):
        await deployment.flush()  # sent again after the lost reply
    entries = await _read_entries(redis_client, stream, 10)
    assert len(entries) == 2
    assert entries[0][1].ref == entries[1][1].ref  # the same item, twice
    for entry_id, work in entries:
        await _answer(redis_client, stream, entry_id, work, msg)
    async with asyncio.timeout(5):
        assert (await flow.fetch()).payload == "twice in the stream"
        await flow.wait_idle()
        while True:  # until the pump has read (and deleted) both results
            client.return_deleted.clear()
            if not await redis_client.xlen(work.reply_to):
                break
            await client.return_deleted.wait()
    assert hosting.take_rookery_buffer(flow) == []  # the second result was dropped
    assert deployment.backlog() == {"echo": 0}
    assert await redis_client.xlen(stream) == 0


async def test_a_result_for_a_ref_never_issued_is_logged_and_dropped(
    gated: Any, redis_client: Any, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    flow, deployment, _client = gated
    stream = Keys(namespace, "t").node_stream("echo")
    msg = _msg("real")
    await flow.emit(msg)
    await deployment.flush()
    ((entry_id, work),) = await _read_entries(redis_client, stream, 1)
    with caplog.at_level(logging.WARNING, logger="penguiflow.distributed"):
        for ref in ("99", "not-a-ref"):
            stray = work.model_copy(update={"ref": ref})
            await _answer(redis_client, stream, entry_id, stray, "stray")
        await _answer(redis_client, stream, entry_id, work, msg)
        async with asyncio.timeout(5):
            assert (await flow.fetch()).payload == "real"
    unknown = [r for r in caplog.records if r.getMessage() == "distributed_unknown_result"]
    assert len(unknown) == 2
    assert deployment.backlog() == {"echo": 0}


async def test_a_return_pump_killed_mid_delivery_resumes_where_it_stopped(cluster) -> None:
    from penguiflow.testkit import kill_actor

    redis_flows.GATE.clear()
    redis_flows.ENTERED.clear()
    entered = redis_flows.ENTERED["sink"] = asyncio.Event()
    gate = redis_flows.GATE["sink"] = asyncio.Event()
    flow, deployment = cluster.deploy(redis_flows.build_relay, ["relay"])
    await cluster.host(redis_flows.build_relay, ["relay"])
    await flow.emit(_msg("x"))
    async with asyncio.timeout(5):
        await entered.wait()  # sink holds output 0
        while flow.mailboxes()["sink"].depth < 1:  # output 1 queued; output 2 cannot fit
            await asyncio.sleep(0.01)
    assert kill_actor(flow, "relay")  # the pump, in the middle of one result's outputs
    gate.set()
    async with asyncio.timeout(5):
        got = [(await flow.fetch()).payload["seq"] for _ in range(3)]
        await flow.wait_idle()
    assert got == [0, 1, 2]
    assert deployment.backlog() == {"relay": 0}


async def test_an_item_answered_before_a_lost_append_reply_is_not_sent_again(
    gated: Any, redis_client: Any, namespace: str
) -> None:
    flow, deployment, client = gated
    stream = Keys(namespace, "t").node_stream("echo")
    msg = _msg("answered, then the reply was lost")

    async def answer_before_the_reply(ids: list[str]) -> None:
        ((entry_id, work),) = await _read_entries(redis_client, stream, 1)
        await _answer(redis_client, stream, entry_id, work, msg)
        async with asyncio.timeout(5):
            await client.return_deleted.wait()

    client.after_append = answer_before_the_reply
    client.lose_append_reply = True
    await flow.emit(msg)
    async with asyncio.timeout(5):
        assert (await flow.fetch()).payload == msg.payload
        await deployment.flush()  # the retry found nothing left to send
    assert await redis_client.xlen(stream) == 0
    assert deployment.backlog() == {"echo": 0}


@pytest.mark.parametrize("seed", [3, 8, 13])
async def test_return_pumps_killed_at_seeded_moments_deliver_each_output_once(
    cluster, seed: int
) -> None:
    """The pump is killed (a cancel landing anywhere in a delivery: while a put
    waits for room, right after a put a consumer took at once, between outputs)
    three times at seeded moments; every trace's three outputs arrive once, in order."""
    import random

    from penguiflow.testkit import kill_actor

    rng = random.Random(seed)
    redis_flows.GATE.clear()
    redis_flows.ENTERED.clear()
    redis_flows.GATE["sink"] = asyncio.Event()
    redis_flows.GATE["sink"].set()  # sink runs freely; its edge holds one item
    flow, deployment = cluster.deploy(redis_flows.build_relay, ["relay"])
    await cluster.host(redis_flows.build_relay, ["relay"], concurrency=2)
    traces = 40
    kill_at = sorted(rng.sample(range(5, 3 * traces - 5), 3))
    messages = [_msg(n) for n in range(traces)]
    got: dict[str, list[int]] = {m.trace_id: [] for m in messages}
    kills = 0

    async def produce() -> None:
        for msg in messages:
            await flow.emit(msg)

    async with asyncio.timeout(30), asyncio.TaskGroup() as group:
        group.create_task(produce())
        for count in range(3 * traces):
            result = await flow.fetch()
            got[result.trace_id].append(result.payload["seq"])
            if kill_at and count >= kill_at[0]:
                kill_at.pop(0)
                for _ in range(rng.randrange(0, 4)):
                    await asyncio.sleep(0)  # land the kill at a seeded point of the pump
                kills += kill_actor(flow, "relay")
        await flow.wait_idle()
    assert kills >= 2  # the pump was alive (not restarting) at most kill moments
    assert all(seqs == [0, 1, 2] for seqs in got.values()), "an output lost or duplicated"
    assert deployment.backlog() == {"relay": 0}
    assert hosting.take_rookery_buffer(flow) == []
