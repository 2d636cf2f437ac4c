"""Workers against a misbehaving Redis: long blocks, restarts, fatal errors, leftovers."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis_flows

from penguiflow import Headers, Message
from penguiflow.distributed import RedisDeployment
from penguiflow.distributed._protocol import GROUP, CancelNotice, Keys
from penguiflow.distributed.worker import describe_exit, main, run_worker

HERE = Path(__file__).parent
ROOT = HERE.parent.parent


def _msg(payload: Any) -> Message:
    return Message(payload=payload, headers=Headers(tenant="acme"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OwnRedis:
    """A redis-server this test starts, stops and restarts on one port."""

    def __init__(self, exe: str, directory: Path) -> None:
        self.exe = exe
        self.directory = directory
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        import redis

        command = [
            self.exe, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
            "--appendonly", "no", "--dir", str(self.directory),
        ]  # fmt: skip
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        try:
            while True:  # an external process starting: nothing to await but its port
                try:
                    client.ping()
                    return
                except redis.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def own_redis(tmp_path: Path) -> Any:
    exe = shutil.which("redis-server")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed under CI: the restart tests must run")
        pytest.skip("redis-server is not installed")
    server = OwnRedis(exe, tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def _a_read_outlived_the_socket_timeout(client: Any, worker: asyncio.Task[None]) -> bool:
    """Watch the server's clients until one connection blocked in XREADGROUP for 6 s
    or more started a new read (its idle time fell back): the long read came back
    on the same connection, with no socket timeout. ``False`` if the worker ended."""
    longest: dict[int, int] = {}
    while not worker.done():
        for info in await client.client_list():
            if info["cmd"] != "xreadgroup" or "b" not in info["flags"]:
                continue
            conn, idle = int(info["id"]), int(info["idle"])
            if longest.get(conn, 0) >= 6 and idle <= longest[conn] - 3:
                return True
            longest[conn] = max(idle, longest.get(conn, 0))
        await asyncio.sleep(0.25)  # an external process: nothing to await but its state
    return False


@pytest.mark.slow
async def test_a_worker_survives_a_block_longer_than_the_client_socket_timeout(
    own_redis: OwnRedis,
) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(own_redis.url, decode_responses=True)
    stop = asyncio.Event()
    spec = "redis_flows:build_echo"
    worker = asyncio.create_task(
        run_worker(own_redis.url, flow=spec, nodes=["echo"], block_ms=7000, stop=stop)
    )
    flow = redis_flows.build_echo()
    deployment = RedisDeployment(own_redis.url, nodes=["echo"], flow_name=spec, block_ms=7000)
    deployment.apply(flow)
    try:
        async with asyncio.timeout(30):
            # redis-py's default socket timeout is 5 s: a 7 s read must come back.
            assert await _a_read_outlived_the_socket_timeout(client, worker)
        flow.run()
        await flow.emit(_msg("after a long block"))
        async with asyncio.timeout(20):
            assert (await flow.fetch()).payload == "after a long block"
        assert not worker.done()
    finally:
        stop.set()
        await flow.stop()
        async with asyncio.timeout(20):
            await worker
        await deployment.close()
        await client.aclose()


def _cli_worker(url: str, flow_name: str, worker_id: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    command = [
        sys.executable, "-m", "penguiflow.distributed.worker",
        "--redis", url, "--flow", "redis_flows:build_echo", "--flow-name", flow_name,
        "--node", "echo", "--block-ms", "200", "--claim-idle-ms", "1000",
        "--worker-id", worker_id,
    ]  # fmt: skip
    return subprocess.Popen(command, env=env, cwd=ROOT, stderr=subprocess.PIPE)


@pytest.mark.slow
async def test_a_worker_survives_a_redis_restart(own_redis: OwnRedis) -> None:
    proc = _cli_worker(own_redis.url, "restart", "r0")
    flow = redis_flows.build_echo()
    deployment = RedisDeployment(own_redis.url, nodes=["echo"], flow_name="restart", block_ms=50)
    deployment.apply(flow)
    flow.run()
    try:
        await flow.emit(_msg("before"))
        async with asyncio.timeout(20):
            assert (await flow.fetch()).payload == "before"
        await asyncio.to_thread(own_redis.restart)  # every key is gone: no persistence
        assert proc.poll() is None
        await flow.emit(_msg("after"))
        async with asyncio.timeout(30):
            assert (await flow.fetch()).payload == "after"
        assert proc.poll() is None, "the worker exited on the restart"
    finally:
        await flow.stop()
        await deployment.close()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err.decode()


@pytest.mark.redis
def test_a_worker_that_must_exit_prints_its_cause_in_one_line(
    redis_url: str, namespace: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    stream = Keys(namespace, "f").node_stream("echo")
    client.set(stream, "not a stream")  # a key clash: no retry can cure it
    try:
        argv = ["--redis", redis_url, "--flow", "redis_flows:build_echo", "--node", "echo"]
        code = main([*argv, "--flow-name", "f", "--prefix", namespace])
    finally:
        client.delete(stream)
        client.close()
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("error: redis: ResponseError: WRONGTYPE")
    assert err.count("\n") == 1


def test_exit_cause_is_the_first_error_inside_task_groups() -> None:
    from redis.exceptions import AuthenticationError

    nested = ExceptionGroup("outer", [ExceptionGroup("inner", [ValueError("no\nflow")])])
    assert describe_exit(nested) == "no flow"
    assert describe_exit(AuthenticationError("bad password")) == (
        "redis: AuthenticationError: bad password"
    )
    assert describe_exit(RuntimeError()) == "RuntimeError"


def test_authentication_errors_are_not_retried() -> None:
    from redis.exceptions import AuthenticationError, BusyLoadingError, ResponseError

    from penguiflow.distributed._host import transient

    assert not transient(AuthenticationError("no"))
    assert not transient(ResponseError("WRONGTYPE Operation against a key"))
    assert not transient(ValueError("x"))
    assert transient(BusyLoadingError("loading"))
    assert transient(ResponseError("NOGROUP No such key"))
    assert transient(ResponseError("UNBLOCKED the stream key no longer exists"))
    assert transient(ConnectionResetError())


# --- leftovers: consumers and return streams ------------------------------------------


@pytest.mark.redis
async def test_a_worker_that_stops_cleanly_deletes_its_consumers(cluster, redis_client) -> None:
    flow, _ = cluster.deploy(redis_flows.build_echo, ["echo"])
    await cluster.host(redis_flows.build_echo, ["echo"], concurrency=2)
    await flow.emit(_msg("x"))
    async with asyncio.timeout(5):
        await flow.fetch()
    stream = Keys(cluster.prefix, "t").node_stream("echo")
    # (Redis creates a consumer when its first read is served: the busy slot's, here.)
    assert len(await redis_client.xinfo_consumers(stream, GROUP)) >= 1
    _host, stop, task, _client = cluster.hosts[0]
    stop.set()
    async with asyncio.timeout(5):
        await task
    assert await redis_client.xinfo_consumers(stream, GROUP) == []


@pytest.mark.redis
async def test_only_idle_consumers_holding_nothing_are_swept(
    cluster, redis_client, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"])
    stream = Keys(cluster.prefix, "t").node_stream("echo")
    await flow.emit(_msg("held by a dead worker"))
    await deployment.flush()
    await redis_client.xreadgroup(GROUP, "gone-busy", {stream: ">"}, count=1)
    await redis_client.xgroup_createconsumer(stream, GROUP, "gone-idle")
    deleted = asyncio.Event()

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage() == "distributed_consumer_deleted":
                deleted.set()

    logger = logging.getLogger("penguiflow.distributed")
    handler = Seen()
    logger.addHandler(handler)
    try:
        with caplog.at_level(logging.INFO, logger="penguiflow.distributed"):
            await cluster.host(
                redis_flows.build_echo, ["echo"], claim_idle_ms=600_000, stale_consumer_ms=0
            )
            async with asyncio.timeout(5):
                await deleted.wait()  # one sweep went over both (by name: busy first)
    finally:
        logger.removeHandler(handler)
    names = {c["name"] for c in await redis_client.xinfo_consumers(stream, GROUP)}
    assert "gone-idle" not in names
    assert "gone-busy" in names  # its entry can still be claimed


@pytest.mark.redis
async def test_a_closed_origin_gets_no_return_stream_back(cluster, redis_client) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"])
    await flow.emit(_msg("answered too late"))
    await deployment.flush()
    reply_to = Keys(cluster.prefix, "t").return_stream(deployment.origin, "echo")
    assert await redis_client.exists(reply_to)
    await flow.stop()
    await deployment.close()
    host = await cluster.host(redis_flows.build_echo, ["echo"])  # e.g. a frozen one resuming
    async with asyncio.timeout(5):
        await host.wait_processed(1)
    assert host.refused == 1
    assert not await redis_client.exists(reply_to)
    assert await redis_client.xlen(Keys(cluster.prefix, "t").node_stream("echo")) == 0


@pytest.mark.redis
async def test_the_origin_keeps_its_return_stream_alive_with_a_ttl(cluster, redis_client) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_echo, ["echo"], return_ttl_ms=600)
    await flow.emit(_msg("x"))
    await deployment.flush()
    reply_to = Keys(cluster.prefix, "t").return_stream(deployment.origin, "echo")
    assert 0 < await redis_client.pttl(reply_to) <= 600
    await redis_client.delete(reply_to)  # as a Redis restart would
    async with asyncio.timeout(5):
        while not await redis_client.exists(reply_to):  # refreshed every 200 ms
            await asyncio.sleep(0.02)
    assert 0 < await redis_client.pttl(reply_to) <= 600


@pytest.mark.redis
async def test_a_stray_cancel_notice_does_not_end_the_worker(cluster, redis_client) -> None:
    flow, _ = cluster.deploy(redis_flows.build_echo, ["echo"])
    host = await cluster.host(redis_flows.build_echo, ["echo"])
    _host, _stop, task, _client = cluster.hosts[0]
    channel = Keys(cluster.prefix, "t").cancel_channel
    assert await redis_client.publish(channel, "{not a notice") == 1  # the host is listening
    await redis_client.publish(channel, CancelNotice(trace_id="marker").model_dump_json())
    async with asyncio.timeout(5):
        while not host._is_cancelled("marker") and not task.done():  # read after the stray
            await asyncio.sleep(0.01)
    assert not task.done()
    await flow.emit(_msg("still served"))
    async with asyncio.timeout(5):
        assert (await flow.fetch()).payload == "still served"
        await host.wait_processed(1)
    assert not task.done()


# --- transient and fatal errors, injected in process --------------------------------


class FlakyClient:
    """A Redis client that raises the queued errors on the next calls of a method."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.failures: dict[str, list[Exception]] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        queued = self.failures.get(name)
        if not queued or not callable(attr):
            return attr

        async def failing(*args: Any, **kwargs: Any) -> Any:
            if queued:
                raise queued.pop(0)
            return await attr(*args, **kwargs)

        return failing

    def register_script(self, script: str) -> Any:
        from redis.commands.core import AsyncScript

        return AsyncScript(self, script)


class _Seen:
    """Counts log records of ``penguiflow.distributed`` by message."""

    def __init__(self) -> None:
        import collections
        import logging

        self.count: collections.Counter[str] = collections.Counter()
        seen = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                seen.count[record.getMessage()] += 1

        self.handler = Handler(logging.DEBUG)


@pytest.fixture
def seen() -> Any:
    import logging

    logger = logging.getLogger("penguiflow.distributed")
    found = _Seen()
    level = logger.level
    logger.addHandler(found.handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield found.count
    finally:
        logger.removeHandler(found.handler)
        logger.setLevel(level)


async def _flaky_host(
    cluster: Any, build: Any = redis_flows.build_echo, node: str = "echo", **failures: Any
) -> Any:
    from redis.asyncio import Redis

    from penguiflow.distributed._host import NodeHost

    real = Redis.from_url(cluster.url, decode_responses=True)
    client = FlakyClient(real)
    client.failures = dict(failures)
    host = NodeHost(
        client,  # type: ignore[arg-type]
        keys=Keys(cluster.prefix, "t"),
        build=build,
        nodes=[node],
        worker_id="flaky",
        block_ms=50,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(host.run(stop))
    cluster.hosts.append((host, stop, task, real))
    return host, task


def _lost() -> Exception:
    from redis.exceptions import ConnectionError

    return ConnectionError("connection lost (test)")


@pytest.mark.redis
async def test_transient_errors_are_retried_and_the_slot_keeps_serving(cluster, seen) -> None:
    flow, _ = cluster.deploy(redis_flows.build_echo, ["echo"])
    host, task = await _flaky_host(
        cluster,
        xgroup_create=[_lost()],
        xautoclaim=[_lost()],
        xreadgroup=[_lost(), TimeoutError()],
        evalsha=[_lost()],
        xinfo_consumers=[_lost()],
    )
    await flow.emit(_msg("through the storm"))
    async with asyncio.timeout(10):
        assert (await flow.fetch()).payload == "through the storm"
        await host.wait_processed(1)
        await flow.wait_idle()
    assert not task.done()
    assert seen["distributed_worker_retry"] >= 5  # start, claim, two reads, the answer
    assert seen["distributed_sweep_failed"] == 1


@pytest.mark.redis
async def test_a_fatal_error_ends_the_worker(cluster) -> None:
    from redis.exceptions import ResponseError

    host, task = await _flaky_host(cluster, xautoclaim=[ResponseError("WRONGTYPE (test)")])
    cluster.may_crash.append(host)
    async with asyncio.timeout(5):
        with pytest.raises(ExceptionGroup) as info:
            await task
    assert "WRONGTYPE" in describe_exit(info.value)


@pytest.mark.redis
async def test_a_lost_consumer_group_is_created_again(cluster, redis_client, seen) -> None:
    flow, _deployment = cluster.deploy(redis_flows.build_echo, ["echo"])
    host = await cluster.host(redis_flows.build_echo, ["echo"])
    await flow.emit(_msg("first"))
    async with asyncio.timeout(5):
        await flow.fetch()
    stream = Keys(cluster.prefix, "t").node_stream("echo")
    await redis_client.delete(stream)  # as a Redis restart without persistence would
    await flow.emit(_msg("after the group was lost"))
    async with asyncio.timeout(10):
        assert (await flow.fetch()).payload == "after the group was lost"
        # The host counts an entry after its answer is in Redis: the origin may
        # fetch the result first.
        await host.wait_processed(2)
    assert host.processed == 2
    assert seen["distributed_worker_retry"] >= 1


@pytest.mark.redis
async def test_an_entry_nobody_can_answer_is_dropped_and_logged(
    cluster, redis_client, seen
) -> None:
    flow, _ = cluster.deploy(redis_flows.build_echo, ["echo"])
    host = await cluster.host(redis_flows.build_echo, ["echo"])
    stream = Keys(cluster.prefix, "t").node_stream("echo")
    await redis_client.xadd(stream, {"d": '{"not": "a work entry"}'})
    await flow.emit(_msg("next"))
    async with asyncio.timeout(5):
        assert (await flow.fetch()).payload == "next"
        await host.wait_processed(2)
    assert seen["distributed_bad_entry"] == 1
    assert await redis_client.xlen(stream) == 0


@pytest.mark.redis
async def test_an_answer_failing_while_stopping_leaves_the_entry_to_others(
    cluster, redis_client, seen
) -> None:
    flow, deployment = cluster.deploy(redis_flows.build_gated, ["gated"])
    msg = _msg("in hand at the stop")
    redis_flows.GATE[msg.trace_id] = gate = asyncio.Event()
    redis_flows.ENTERED[msg.trace_id] = entered = asyncio.Event()
    host, task = await _flaky_host(cluster, redis_flows.build_gated, "gated")
    await flow.emit(msg)
    async with asyncio.timeout(5):
        await entered.wait()
    host._redis.failures["evalsha"] = [_lost() for _ in range(1000)]
    cluster.hosts[-1][1].set()  # stop while the entry is in hand
    gate.set()
    async with asyncio.timeout(10):
        await task
    assert seen["distributed_answer_abandoned"] == 1
    stream = Keys(cluster.prefix, "t").node_stream("gated")
    assert (await redis_client.xpending(stream, GROUP))["pending"] == 1
    names = [c["name"] for c in await redis_client.xinfo_consumers(stream, GROUP)]
    assert names == ["flaky-gated-0"]  # kept: its entry must stay claimable
    assert deployment.backlog() == {"gated": 1}


# --- Redis restarts without persistence: nothing lost, nothing twice ------------------


@pytest.mark.slow
@pytest.mark.parametrize("seed", [5, 17])
async def test_no_trace_is_lost_or_duplicated_through_redis_restarts(
    own_redis: OwnRedis, seed: int
) -> None:
    """Two real workers host ``prep -> enrich -> score``; Redis restarts twice, without
    persistence, at seeded moments (every stream, group and pending entry gone). Each
    origin mailbox finds its return stream gone and sends its unanswered items again:
    every trace yields its two results exactly once."""
    import collections
    import random

    from procs import start_worker

    rng = random.Random(seed)
    traces = 300
    results = 2 * traces
    restart_at = sorted(rng.sample(range(results // 5, results * 4 // 5), 2))
    prefix = f"restart{seed}"
    workers = [start_worker(own_redis.url, prefix, f"r{i}") for i in range(2)]
    flow = redis_flows.build_chain()
    deployment = RedisDeployment(
        own_redis.url, nodes=["enrich", "score"], flow_name="chain", prefix=prefix, block_ms=100
    )
    deployment.apply(flow)
    flow.run()
    messages = [_msg({"n": n}) for n in range(traces)]
    expected = {m.trace_id: m.payload["n"] for m in messages}
    seen: dict[str, list[int]] = collections.defaultdict(list)
    try:

        async def produce() -> None:
            for msg in messages:
                await flow.emit(msg)

        async with asyncio.timeout(60), asyncio.TaskGroup() as group:
            group.create_task(produce())
            for count in range(results):
                result = await flow.fetch()
                assert result.payload["n"] == expected[result.trace_id], "a misrouted result"
                seen[result.trace_id].append(result.payload["seq"])
                if restart_at and count >= restart_at[0]:
                    restart_at.pop(0)
                    await asyncio.to_thread(own_redis.restart)
            await flow.wait_idle()
        assert restart_at == []
        assert len(seen) == traces
        assert all(seqs == [0, 1] for seqs in seen.values()), "a trace lost or duplicated"
        assert deployment.backlog() == {"enrich": 0, "score": 0}
        assert all(proc.poll() is None for proc in workers), "a worker exited on a restart"
    finally:
        await flow.stop()
        await deployment.close()
        for proc in workers:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        codes = [proc.wait(timeout=30) for proc in workers]
    assert codes == [0, 0]
