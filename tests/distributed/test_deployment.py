"""Distributed nodes in one process: an origin flow and worker hosts sharing Redis."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any

import pytest
import redis_flows
from redis_flows import Order

from penguiflow import WM, FinalAnswer, FlowError, Headers, Message
from penguiflow.distributed import RedisDeployment, SerializationError
from penguiflow.distributed._codec import encode
from penguiflow.distributed._protocol import GROUP, ROOKERY_CODE, Keys, ResultEntry, WorkEntry

pytestmark = pytest.mark.redis


@pytest.fixture(autouse=True)
def _reset_flow_state() -> None:
    redis_flows.CALLS.clear()
    redis_flows.GATE.clear()
    redis_flows.FAILS.clear()
    redis_flows.ENTERED.clear()


def _msg(payload: Any, **kw: Any) -> Message:
    return Message(payload=payload, headers=Headers(tenant="acme"), **kw)


async def _fetch(flow: Any) -> Any:
    async with asyncio.timeout(5):
        return await flow.fetch()


async def test_result_of_a_distributed_node_reaches_the_origin_rookery(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_echo, ["echo"])
    await cluster.host(redis_flows.build_echo, ["echo"])
    msg = _msg(Order(sku="a", qty=2))
    await flow.emit(msg)
    got = await _fetch(flow)
    assert isinstance(got.payload, Order)
    assert got.payload.qty == 4
    assert (got.trace_id, got.headers) == (msg.trace_id, msg.headers)


async def test_the_origin_does_not_run_a_distributed_node(cluster, redis_client) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"])
    await flow.emit(_msg("x"))
    await deployment.flush()
    assert redis_flows.CALLS == []
    assert deployment.backlog() == {"echo": 1}
    assert await redis_client.xlen(Keys(cluster.prefix, "t").node_stream("echo")) == 1


async def test_items_emitted_before_workers_start_are_handled_later(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_echo, ["echo"])
    await flow.emit(_msg("early"))
    await cluster.host(redis_flows.build_echo, ["echo"])
    assert (await _fetch(flow)).payload == "early"


async def test_distributed_node_between_local_nodes(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_middle, ["remote"])
    await cluster.host(redis_flows.build_middle, ["remote"])
    await flow.emit(_msg("mid"))
    assert (await _fetch(flow)).payload == "mid"
    assert [name for name, _ in redis_flows.CALLS] == ["remote", "last"]


async def test_retries_follow_the_node_policy_in_the_worker(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_flaky, ["flaky"])
    await cluster.host(redis_flows.build_flaky, ["flaky"])
    msg = _msg("in")
    redis_flows.FAILS[msg.trace_id] = 2
    await flow.emit(msg)
    assert (await _fetch(flow)).payload == "ok"
    assert [("flaky", msg.trace_id)] * 3 == redis_flows.CALLS


async def test_final_failure_reaches_rookery_as_a_flow_error(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_flaky, ["flaky"])
    await cluster.host(redis_flows.build_flaky, ["flaky"])
    msg = _msg("in")
    redis_flows.FAILS[msg.trace_id] = 9
    await flow.emit(msg)
    error = await _fetch(flow)
    assert isinstance(error, FlowError)
    assert (error.code, error.node_name, error.trace_id) == (
        "NODE_EXCEPTION",
        "flaky",
        msg.trace_id,
    )
    assert error.exception_type == "ValueError"


async def test_an_interrupt_in_a_worker_fails_the_node(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_asking, ["asking"])
    await cluster.host(redis_flows.build_asking, ["asking"])
    await flow.emit(_msg("in"))
    error = await _fetch(flow)
    assert isinstance(error, FlowError)
    assert (error.code, error.exception_type) == ("NODE_EXCEPTION", "InterruptUnavailable")


async def test_expired_deadline_is_answered_with_the_deadline_final(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_echo, ["echo"])
    await cluster.host(redis_flows.build_echo, ["echo"])
    await flow.emit(_msg("late", deadline_s=time.time() - 1))
    got = await _fetch(flow)
    assert got.payload == FinalAnswer(text="Deadline exceeded")
    assert redis_flows.CALLS == []


async def test_final_answer_from_a_distributed_node_bypasses_successors(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_finisher, ["finisher"])
    await cluster.host(redis_flows.build_finisher, ["finisher"])
    await flow.emit(_msg("q"))
    assert (await _fetch(flow)).payload == FinalAnswer(text="done")


async def test_a_controller_loop_runs_whole_in_the_worker(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_loop, ["loop"])
    await cluster.host(redis_flows.build_loop, ["loop"])
    await flow.emit(_msg(WM(query="q", budget_hops=10)))
    assert (await _fetch(flow)).payload == FinalAnswer(text="hops=2")


async def test_an_unserialisable_item_is_refused_at_the_origin(cluster) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"])
    with pytest.raises(SerializationError, match="distributed node 'echo'") as info:
        await flow.emit(_msg(object()))
    assert info.value.path == "payload"
    with pytest.raises(SerializationError):
        flow.emit_nowait(_msg(object()))
    assert deployment.backlog() == {"echo": 0}


async def test_an_unserialisable_output_becomes_a_flow_error(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_opaque, ["opaque"])
    await cluster.host(redis_flows.build_opaque, ["opaque"])
    msg = _msg("x")
    await flow.emit(msg)
    error = await _fetch(flow)
    assert isinstance(error, FlowError)
    assert "cannot cross a process boundary" in error.message
    assert error.trace_id == msg.trace_id


async def test_backlog_at_capacity_makes_producers_wait(cluster) -> None:
    flow, _deployment = cluster.deploy(redis_flows.build_echo, ["echo"], capacity=2)
    flow.emit_nowait(_msg(1))
    await flow.emit(_msg(2))
    with pytest.raises(asyncio.QueueFull):
        flow.emit_nowait(_msg(3))
    blocked = asyncio.create_task(flow.emit(_msg(3)))
    await asyncio.sleep(0)  # the scheduling contract: the third put must be waiting
    assert not blocked.done()
    snapshot = flow.mailboxes()["echo"]
    assert (snapshot.depth, snapshot.capacity) == (2, 2)
    await cluster.host(redis_flows.build_echo, ["echo"])
    got = [(await _fetch(flow)).payload for _ in range(3)]
    assert sorted(got) == [1, 2, 3]
    async with asyncio.timeout(5):
        await blocked


async def test_a_cancelled_producer_frees_its_place_in_line(cluster) -> None:
    flow, _deployment = cluster.deploy(redis_flows.build_echo, ["echo"], capacity=1)
    await flow.emit(_msg(1))
    waiting = asyncio.create_task(flow.emit(_msg(2)))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await cluster.host(redis_flows.build_echo, ["echo"])
    assert (await _fetch(flow)).payload == 1
    await flow.emit(_msg(3))
    assert (await _fetch(flow)).payload == 3


async def test_origins_sharing_a_stream_respect_its_capacity(cluster) -> None:
    one, first = cluster.deploy(redis_flows.build_echo, ["echo"], capacity=1)
    two, _second = cluster.deploy(redis_flows.build_echo, ["echo"], capacity=1)
    await one.emit(_msg("one"))
    await first.flush()
    await two.emit(_msg("two"))  # local room, but the shared stream is full
    await cluster.host(redis_flows.build_echo, ["echo"])
    assert (await _fetch(one)).payload == "one"
    assert (await _fetch(two)).payload == "two"


async def test_cancel_aborts_in_flight_work_in_the_worker(cluster, redis_client) -> None:
    flow, _ = cluster.deploy(redis_flows.build_gated, ["gated"])
    host = await cluster.host(redis_flows.build_gated, ["gated"])
    msg = _msg("wait")
    gate = redis_flows.GATE[msg.trace_id] = asyncio.Event()
    entered = redis_flows.ENTERED[msg.trace_id] = asyncio.Event()
    await flow.emit(msg)
    async with asyncio.timeout(5):
        await entered.wait()
    assert await flow.cancel(msg.trace_id) is True
    async with asyncio.timeout(5):
        await host.wait_processed(1)
    assert ("gated-cancelled", msg.trace_id) in redis_flows.CALLS
    assert not gate.is_set()
    other = _msg("next")
    redis_flows.GATE[other.trace_id] = asyncio.Event()
    redis_flows.GATE[other.trace_id].set()
    await flow.emit(other)
    assert (await _fetch(flow)).trace_id == other.trace_id
    stream = Keys(cluster.prefix, "t").node_stream("gated")
    assert await redis_client.xlen(stream) == 0


async def test_cancel_drops_queued_entries_from_the_stream(cluster, redis_client) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"])
    doomed, kept = _msg("a"), _msg("b")
    await flow.emit(doomed)
    await flow.emit(doomed.model_copy(update={"payload": "a2"}))
    await flow.emit(kept)
    await deployment.flush()
    assert await flow.cancel(doomed.trace_id) is True
    assert deployment.backlog() == {"echo": 1}
    await deployment.flush()
    assert await redis_client.xlen(Keys(cluster.prefix, "t").node_stream("echo")) == 1
    await cluster.host(redis_flows.build_echo, ["echo"])
    assert (await _fetch(flow)).trace_id == kept.trace_id
    assert [item.payload for _, item in redis_flows.CALLS] == ["b"]


async def test_stop_then_run_delivers_results_that_arrived_meanwhile(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_echo, ["echo"])
    host = await cluster.host(redis_flows.build_echo, ["echo"])
    await flow.stop()
    await flow.emit(_msg("while stopped"))
    async with asyncio.timeout(5):
        await host.wait_processed(1)
    flow.run()
    assert (await _fetch(flow)).payload == "while stopped"


async def test_wait_idle_waits_for_remote_results(cluster) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_middle, ["remote"])
    await cluster.host(redis_flows.build_middle, ["remote"])
    await flow.emit(_msg("idle"))
    async with asyncio.timeout(5):
        await flow.wait_idle()
    assert deployment.backlog() == {"remote": 0}
    assert [name for name, _ in redis_flows.CALLS] == ["remote", "last"]


# --- delivery rules, driven by a hand-written worker -------------------------------


class FakeWorker:
    """Reads entries and answers them by hand (a slow, duplicating or dead worker)."""

    def __init__(self, client: Any, prefix: str, node: str) -> None:
        self.client = client
        self.stream = Keys(prefix, "t").node_stream(node)

    async def read(self, count: int, consumer: str = "fake") -> list[tuple[str, WorkEntry]]:
        from penguiflow.distributed._redis import ensure_group

        await ensure_group(self.client, self.stream)
        rows = await self.client.xreadgroup(GROUP, consumer, {self.stream: ">"}, count=count)
        return [
            (i, WorkEntry.model_validate_json(f["d"])) for _, entries in rows for i, f in entries
        ]

    async def answer(self, entry_id: str, work: WorkEntry, item: Any, **kw: Any) -> None:
        result = ResultEntry(
            ref=work.ref, deliveries=1, worker="fake", outputs=[(ROOKERY_CODE, encode(item))], **kw
        )
        await self.client.xadd(work.reply_to, {"d": result.model_dump_json()})


async def test_a_duplicated_result_is_delivered_once(cluster, redis_client) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"])
    fake = FakeWorker(redis_client, cluster.prefix, "echo")
    first, second = _msg(1), _msg(2)
    await flow.emit(first)
    await deployment.flush()
    ((entry_id, work),) = await fake.read(1)
    await fake.answer(entry_id, work, first)
    await fake.answer(entry_id, work, first)  # e.g. a slow worker after a reclaim
    assert (await _fetch(flow)).payload == 1
    await flow.emit(second)
    await deployment.flush()
    ((entry_id, work),) = await fake.read(1)
    await fake.answer(entry_id, work, second)
    assert (await _fetch(flow)).payload == 2


async def test_results_of_one_trace_leave_in_send_order(cluster, redis_client) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"])
    fake = FakeWorker(redis_client, cluster.prefix, "echo")
    m1 = _msg("first")
    m2 = m1.model_copy(update={"payload": "second"})
    other = _msg("other trace")
    for m in (m1, m2, other):
        await flow.emit(m)
    await deployment.flush()
    (e1, w1), (e2, w2), (e3, w3) = await fake.read(3)
    await fake.answer(e2, w2, m2)
    await fake.answer(e3, w3, other)
    assert (await _fetch(flow)).payload == "other trace"  # m2 is held back
    await fake.answer(e1, w1, m1)
    assert [(await _fetch(flow)).payload for _ in range(2)] == ["first", "second"]


async def test_an_error_result_becomes_a_flow_error(cluster, redis_client) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_flaky, ["flaky"])
    fake = FakeWorker(redis_client, cluster.prefix, "flaky")
    msg = _msg("x")
    await flow.emit(msg)
    await deployment.flush()
    ((_entry_id, work),) = await fake.read(1)
    result = ResultEntry(ref=work.ref, deliveries=7, worker="fake", outputs=[], error="gave up")
    await redis_client.xadd(work.reply_to, {"d": result.model_dump_json()})
    error = await _fetch(flow)
    assert isinstance(error, FlowError)
    assert (error.message, error.node_name) == ("gave up", "flaky")


async def test_an_undecodable_result_becomes_a_flow_error(cluster, redis_client) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_flaky, ["flaky"])
    fake = FakeWorker(redis_client, cluster.prefix, "flaky")
    await flow.emit(_msg("x"))
    await deployment.flush()
    ((_entry_id, work),) = await fake.read(1)
    bad = {"$model": "nowhere_at_all:Nope", "$fields": {}}
    result = ResultEntry(ref=work.ref, deliveries=1, worker="fake", outputs=[(ROOKERY_CODE, bad)])
    await redis_client.xadd(work.reply_to, {"d": result.model_dump_json()})
    error = await _fetch(flow)
    assert isinstance(error, FlowError)
    assert "nowhere_at_all" in error.message


async def test_entries_of_a_dead_consumer_are_claimed_after_the_idle_timeout(
    cluster, redis_client
) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"])
    fake = FakeWorker(redis_client, cluster.prefix, "echo")
    await flow.emit(_msg("orphan"))
    await deployment.flush()
    assert len(await fake.read(1, consumer="dead")) == 1
    await cluster.host(redis_flows.build_echo, ["echo"], claim_idle_ms=100)
    assert (await _fetch(flow)).payload == "orphan"
    pending = await redis_client.xpending(fake.stream, GROUP)
    assert pending["pending"] == 0


async def test_an_entry_delivered_too_often_is_answered_with_an_error(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_flaky, ["flaky"])
    await cluster.host(redis_flows.build_flaky, ["flaky"], max_deliveries=0)
    await flow.emit(_msg("x"))
    error = await _fetch(flow)
    assert isinstance(error, FlowError)
    assert "delivered 1 times" in error.message
    assert redis_flows.CALLS == []


async def _answer_to_manual_entry(cluster, redis_client, **fields: Any) -> ResultEntry:
    host = await cluster.host(redis_flows.build_echo, ["echo"])
    reply_to = f"{cluster.prefix}:manual-replies"
    # An origin's return stream exists (empty) before it sends: workers append only then.
    await redis_client.xadd(reply_to, {"o": ""}, maxlen=0, approximate=False)
    entry = {"ref": "0", "origin": "manual", "reply_to": reply_to, "edge": 0}
    entry["edge_name"] = "OpenSea->echo"
    work = WorkEntry(**{**entry, "trace_id": None, "item": "x", **fields})
    stream = Keys(cluster.prefix, "t").node_stream("echo")
    await redis_client.xadd(stream, {"d": work.model_dump_json()})
    async with asyncio.timeout(5):
        await host.wait_processed(1)
    ((_, answer),) = await redis_client.xrange(reply_to)
    return ResultEntry.model_validate_json(answer["d"])


async def test_an_undecodable_entry_is_answered_with_an_error(cluster, redis_client) -> None:
    bad = {"$model": "nowhere_at_all:Nope", "$fields": {}}
    result = await _answer_to_manual_entry(cluster, redis_client, item=bad)
    assert result.error is not None
    assert "cannot rebuild the item" in result.error


@pytest.mark.parametrize(
    ("edge", "name"),
    [pytest.param(0, "parse->echo", id="other-edge"), pytest.param(9, "x->echo", id="no-edge")],
)
async def test_an_entry_from_another_graph_is_answered_with_an_error(
    cluster, redis_client, edge: int, name: str
) -> None:
    result = await _answer_to_manual_entry(cluster, redis_client, edge=edge, edge_name=name)
    assert result.error is not None
    assert "the worker's flow differs from the origin's" in result.error


async def test_a_well_formed_entry_is_answered_with_outputs(cluster, redis_client) -> None:
    result = await _answer_to_manual_entry(cluster, redis_client)
    assert (result.error, result.outputs, result.deliveries) == (None, [(ROOKERY_CODE, "x")], 1)


async def test_a_malformed_result_is_skipped(cluster, redis_client, records) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"])
    fake = FakeWorker(redis_client, cluster.prefix, "echo")
    msg = _msg("after the bad one")
    await flow.emit(msg)
    await deployment.flush()
    ((_entry_id, work),) = await fake.read(1)
    await redis_client.xadd(work.reply_to, {"d": "{not json"})
    bad_edge = ResultEntry(ref=work.ref, deliveries=1, worker="fake", outputs=[(99, "x")])
    await redis_client.xadd(work.reply_to, {"d": bad_edge.model_dump_json()})
    async with asyncio.timeout(5):
        await flow.wait_idle()  # the pump got past both: the item is finished
    assert records.count["distributed_bad_result"] == 2
    assert await flow.cancel(msg.trace_id) is False


# --- the deployment object ------------------------------------------------------------


async def test_apply_refuses_a_running_flow(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_echo, ["echo"])
    deployment = RedisDeployment(cluster.url, nodes=["echo"], flow_name="t", prefix=cluster.prefix)
    try:
        with pytest.raises(RuntimeError, match=r"before flow\.run"):
            deployment.apply(flow)
    finally:
        await deployment.close()


async def test_apply_twice_is_refused(cluster) -> None:
    _, deployment = cluster.deploy(redis_flows.build_echo, ["echo"], run=False)
    with pytest.raises(RuntimeError, match="already applied"):
        deployment.apply(redis_flows.build_echo())


@pytest.mark.parametrize(
    ("build", "name", "text"),
    [
        pytest.param(redis_flows.build_echo, "missing", "no node named 'missing'", id="unknown"),
        pytest.param(
            lambda: __import__("penguiflow").create(
                *(redis_flows.build_echo().nodes[0].to() for _ in range(1)),
                redis_flows.build_echo().nodes[0].to(),
            ),
            "echo",
            "2 nodes named 'echo'",
            id="duplicate",
        ),
    ],
)
async def test_apply_needs_a_unique_node_name(redis_url, namespace, build, name, text) -> None:
    deployment = RedisDeployment(redis_url, nodes=[name], flow_name="t", prefix=namespace)
    try:
        with pytest.raises(ValueError, match=text):
            deployment.apply(build())
    finally:
        await deployment.close()


async def test_deployment_works_as_an_async_context_manager(redis_client, namespace) -> None:
    async with RedisDeployment(redis_client, nodes=["echo"], flow_name="f", prefix=namespace) as d:
        assert repr(d) == "RedisDeployment(flow_name='f', nodes=['echo'])"
    assert await redis_client.ping()


# --- the mailbox surface the runtime sees ---------------------------------------------


async def test_a_distributed_node_mailbox_reports_its_backlog(cluster) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"])
    mailbox = deployment._mailboxes["echo"]
    await flow.emit(_msg("a"))
    stats = mailbox.statistics()
    assert (stats.depths, stats.capacity, stats.waiting_producers) == ((1,), 4, 0)
    assert mailbox.snapshot(0)[0].payload == "a"
    assert mailbox.snapshot(1) == ()
    assert (mailbox.depth(0), mailbox.depth(1)) == (1, 0)
    assert mailbox.close() == []


async def test_a_kernel_message_ends_the_return_pump(cluster) -> None:
    _, deployment = cluster.deploy(redis_flows.build_echo, ["echo"], run=False)
    mailbox = deployment._mailboxes["echo"]
    mailbox.put_system("stop")
    async with asyncio.timeout(5):
        delivery = await mailbox.get()
    assert (delivery.item, delivery.lane) == ("stop", -1)


async def test_remote_mailbox_has_nothing_to_take_and_reports_depth(cluster) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"])
    mailbox = deployment._mailboxes["echo"]
    with pytest.raises(asyncio.QueueEmpty):
        mailbox.get_nowait()
    await flow.emit(_msg("a"))
    assert mailbox.depth() == len(mailbox) == 1


async def test_trace_less_items_cross_and_come_back(cluster) -> None:
    flow, _ = cluster.deploy(redis_flows.build_echo, ["echo"])
    await cluster.host(redis_flows.build_echo, ["echo"])
    await flow.emit({"bare": True})
    assert await _fetch(flow) == {"bare": True}


class _Records(logging.Handler):
    """Sets an event per record message, so a test can await a log record."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: dict[str, asyncio.Event] = collections.defaultdict(asyncio.Event)
        self.count: collections.Counter[str] = collections.Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.seen[record.getMessage()].set()
        self.count[record.getMessage()] += 1


@pytest.fixture
def records() -> Any:
    logger = logging.getLogger("penguiflow.distributed")
    handler = _Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_a_dropped_duplicate_is_logged_at_debug(cluster, redis_client, records) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"])
    fake = FakeWorker(redis_client, cluster.prefix, "echo")
    msg = _msg(1)
    await flow.emit(msg)
    await deployment.flush()
    ((entry_id, work),) = await fake.read(1)
    await fake.answer(entry_id, work, msg)
    await fake.answer(entry_id, work, msg)
    assert (await _fetch(flow)).payload == 1
    async with asyncio.timeout(5):
        await records.seen["distributed_duplicate_dropped"].wait()


async def test_an_unreachable_redis_is_retried_and_logged(records) -> None:
    flow = redis_flows.build_echo()
    deployment = RedisDeployment(
        "redis://127.0.0.1:1/0", nodes=["echo"], flow_name="t", block_ms=10
    )
    deployment.apply(flow)
    flow.run()
    try:
        await flow.emit(_msg("nowhere"))
        async with asyncio.timeout(5):
            await records.seen["distributed_send_retry"].wait()
            await records.seen["distributed_return_retry"].wait()
        assert deployment.backlog() == {"echo": 1}
    finally:
        await flow.stop()
        await deployment.close()
    assert records.seen["distributed_close_failed"].is_set()


@pytest.mark.parametrize(
    ("build", "hops"),
    [
        pytest.param(
            redis_flows.build_bare_middle, ["unwrap", "bare_remote", "bare_last"], id="middle"
        ),
        pytest.param(redis_flows.build_bare_tail, ["unwrap", "bare_remote"], id="egress"),
    ],
)
async def test_bare_payloads_keep_their_trace_across_redis(cluster, build, hops) -> None:
    flow, _ = cluster.deploy(build, ["bare_remote"])
    await cluster.host(build, ["bare_remote"])
    sent = [_msg(i) for i in range(6)]
    for msg in sent:
        await flow.emit(msg)
    got = {}
    async with asyncio.timeout(10):
        for _ in sent:
            delivery = await flow.fetch_traced()
            assert delivery.item["hops"] == hops
            got[delivery.item["req"]] = delivery.trace_id
    assert got == {i: msg.trace_id for i, msg in enumerate(sent)}


async def test_a_deployment_refuses_a_node_with_queued_items_and_changes_nothing(cluster) -> None:
    """Items already queued on the node's local mailbox would be stranded: refused."""
    flow = redis_flows.build_echo()
    cluster.flows.append(flow)
    msg = _msg("queued")
    flow.emit_nowait(msg)
    deployment = RedisDeployment(cluster.url, nodes=["echo"], flow_name="t", prefix=cluster.prefix)
    cluster.deployments.append(deployment)
    with pytest.raises(RuntimeError, match="strand"):
        deployment.apply(flow)
    assert deployment.backlog() == {}
    assert flow.mailboxes()["echo"].items == (msg,)
    flow.run()  # the node still runs locally and handles the item
    assert await _fetch(flow) is msg


async def test_a_remote_mailbox_refuses_the_self_lane_and_requeues_kernel_messages(
    cluster,
) -> None:
    _, deployment = cluster.deploy(redis_flows.build_echo, ["echo"], run=False)
    mailbox = deployment._mailboxes["echo"]
    with pytest.raises(RuntimeError, match="no local self lane"):
        mailbox.put_self(_msg("x"))
    mailbox.put_system("second")
    mailbox.requeue_front("first")
    async with asyncio.timeout(5):
        assert await mailbox.next() == "first"
        assert await mailbox.next() == "second"
    assert mailbox.closed is False
    assert mailbox.close() == []
    assert mailbox.closed is True
