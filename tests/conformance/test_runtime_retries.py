"""Conformance: runtime.md §7 (attempt loop, retries, timeouts, final failure)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conformance_support import EventLog, emit, fetch, msg

from penguiflow import FlowError, Message, Node, NodePolicy
from penguiflow.core import ROOKERY


def policy(**kwargs: Any) -> NodePolicy:
    return NodePolicy(validate="none", **kwargs)


class Flaky:
    """Fails ``fails`` times with ``exc`` then echoes its input; records inputs."""

    def __init__(self, fails: int, exc: BaseException | None = None) -> None:
        self.fails = fails
        self.exc = exc or ValueError("boom")
        self.inputs: list[Any] = []

    async def __call__(self, item: Any, ctx: Any) -> Any:
        self.inputs.append(item)
        if len(self.inputs) <= self.fails:
            raise self.exc
        return item


def flaky_node(fails: int, name: str = "flaky", **kwargs: Any) -> tuple[Node, Flaky]:
    impl = Flaky(fails, kwargs.pop("exc", None))

    async def flaky(item: Any, ctx: Any) -> Any:
        return await impl(item, ctx)

    return Node(flaky, name=name, policy=policy(**kwargs)), impl


async def test_success_sequence(make_flow: Any) -> None:
    log = EventLog()
    n, _ = flaky_node(0)
    flow = make_flow(n.to(), middlewares=[log])
    flow.run()
    m = msg()
    await emit(flow, m)
    await fetch(flow)
    await log.wait_for("node_success")
    assert log.kinds(m.trace_id) == ["node_start", "node_success"]
    start, success = log.of("node_start")[0], log.of("node_success")[0]
    assert (start.attempt, start.latency_ms) == (0, 0.0)
    assert success.attempt == 0
    assert isinstance(success.latency_ms, float)
    assert success.latency_ms >= 0.0


async def test_one_retry_sequence(make_flow: Any) -> None:
    log = EventLog()
    n, impl = flaky_node(1, max_retries=2, backoff_base=0.001)
    flow = make_flow(n.to(), middlewares=[log])
    flow.run()
    m = msg()
    await emit(flow, m)
    assert await fetch(flow) is m
    await log.wait_for("node_success")
    seq = [(e.event_type, e.attempt) for e in log.events if e.trace_id == m.trace_id]
    assert seq == [
        ("node_start", 0),
        ("node_error", 0),
        ("node_retry", 1),
        ("node_start", 1),
        ("node_success", 1),
    ]
    retry = log.of("node_retry")[0]
    assert retry.latency_ms is None
    assert retry.extra["sleep_s"] == 0.001
    assert retry.extra["exception"] == repr(ValueError("boom"))
    assert list(retry.extra) == ["sleep_s", "exception"]
    assert impl.inputs[0] is m
    assert impl.inputs[1] is m


async def test_exhausted_sequence_and_flow_error(make_flow: Any) -> None:
    log = EventLog()
    boom = ValueError("boom")
    n, _ = flaky_node(5, name="bad", max_retries=1, backoff_base=0.001, exc=boom)
    flow = make_flow(n.to(), middlewares=[log], emit_errors_to_rookery=True)
    flow.run()
    m = msg()
    await emit(flow, m)
    err = await fetch(flow)
    await log.wait_for("node_failed")
    seq = [(e.event_type, e.attempt) for e in log.events if e.trace_id == m.trace_id]
    assert seq == [
        ("node_start", 0),
        ("node_error", 0),
        ("node_retry", 1),
        ("node_start", 1),
        ("node_error", 1),
        ("node_failed", 1),
    ]
    assert isinstance(err, FlowError)
    assert err.unwrap() is boom
    assert err.original_exc is boom
    assert err.code == "NODE_EXCEPTION"
    assert type(err.code) is str
    assert err.message == "Node 'bad' raised ValueError: boom"
    assert err.trace_id == m.trace_id
    assert err.node_name == "bad"
    assert err.node_id == n.node_id
    assert err.exception_type == "ValueError"
    assert list(err.metadata) == ["attempt", "latency_ms", "exception_repr"]
    assert err.metadata["attempt"] == 1
    assert err.metadata["exception_repr"] == "ValueError('boom')"
    assert (
        str(err)
        == f"[NODE_EXCEPTION] Node 'bad' raised ValueError: boom trace={m.trace_id} node=bad"
    )
    failed = log.of("node_failed")[0]
    assert failed.extra["exception"] == "ValueError('boom')"
    assert failed.extra["flow_error"] == err.to_payload()
    assert list(failed.extra) == ["exception", "flow_error"]
    assert failed.error_payload is not None
    assert failed.error_payload["code"] == "NODE_EXCEPTION"


async def test_error_event_extra(make_flow: Any) -> None:
    log = EventLog()
    n, _ = flaky_node(1)
    flow = make_flow(n.to(), middlewares=[log])
    flow.run()
    await emit(flow, msg())
    (error,) = await log.wait_for("node_error")
    assert dict(error.extra) == {"exception": "ValueError('boom')"}
    assert isinstance(error.latency_ms, float)
    await log.wait_for("node_failed")


async def test_failure_without_rookery_flag_delivers_nothing(make_flow: Any) -> None:
    log = EventLog()
    n, _ = flaky_node(1)
    flow = make_flow(n.to(), middlewares=[log])
    flow.run()
    await emit(flow, msg())
    await log.wait_for("node_failed")
    with pytest.raises(asyncio.QueueEmpty):
        flow._contexts[ROOKERY].fetch_nowait()


async def test_traceless_failure_not_delivered_even_with_flag(make_flow: Any) -> None:
    log = EventLog()
    n, _ = flaky_node(1)
    flow = make_flow(n.to(), middlewares=[log], emit_errors_to_rookery=True)
    flow.run()
    await emit(flow, {"no": "trace"})
    (failed,) = await log.wait_for("node_failed")
    assert failed.trace_id is None
    assert failed.trace_pending is None
    with pytest.raises(asyncio.QueueEmpty):
        flow._contexts[ROOKERY].fetch_nowait()


async def test_failure_from_non_egress_node_still_reaches_rookery(make_flow: Any) -> None:
    n, _ = flaky_node(1, name="first")

    async def tail(item: Any, ctx: Any) -> Any:
        return item

    flow = make_flow(n.to(Node(tail, name="tail", policy=policy())), emit_errors_to_rookery=True)
    flow.run()
    await emit(flow, msg())
    err = await fetch(flow)
    assert isinstance(err, FlowError)
    assert err.node_name == "first"


async def test_backoff_schedule_and_cap(make_flow: Any) -> None:
    log = EventLog()
    n, _ = flaky_node(9, max_retries=3, backoff_base=0.001, backoff_mult=2.0, max_backoff=0.003)
    flow = make_flow(n.to(), middlewares=[log])
    flow.run()
    await emit(flow, msg())
    await log.wait_for("node_failed")
    assert [e.extra["sleep_s"] for e in log.of("node_retry")] == [0.001, 0.002, 0.003]
    assert [e.attempt for e in log.of("node_retry")] == [1, 2, 3]
    assert len(log.of("node_start")) == 4


async def test_policy_timeout(make_flow: Any) -> None:
    log = EventLog()
    cancelled = asyncio.Event()

    async def hang(item: Any, ctx: Any) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    n = Node(hang, name="hang", policy=policy(timeout_s=0.01))
    flow = make_flow(n.to(), middlewares=[log], emit_errors_to_rookery=True)
    flow.run()
    m = msg()
    await emit(flow, m)
    err = await fetch(flow)
    assert cancelled.is_set()
    assert [e.event_type for e in log.events if e.trace_id == m.trace_id] == [
        "node_start",
        "node_timeout",
        "node_failed",
    ]
    timeout = log.of("node_timeout")[0]
    assert timeout.extra["exception"].startswith("TimeoutError(")
    assert err.code == "NODE_TIMEOUT"
    assert err.message == "Node 'hang' timed out after 0.01s"
    assert list(err.metadata) == ["attempt", "latency_ms", "timeout_s"]
    assert err.metadata["attempt"] == 0
    assert err.metadata["timeout_s"] == 0.01
    assert err.exception_type == "TimeoutError"


async def test_timeout_then_retry_sequence(make_flow: Any) -> None:
    log = EventLog()
    calls: list[int] = []

    async def slow_once(item: Any, ctx: Any) -> Any:
        calls.append(1)
        if len(calls) == 1:
            await asyncio.Event().wait()
        return item

    n = Node(slow_once, name="s", policy=policy(timeout_s=0.01, max_retries=1, backoff_base=0.001))
    flow = make_flow(n.to(), middlewares=[log])
    flow.run()
    m = msg()
    await emit(flow, m)
    assert await fetch(flow) is m
    await log.wait_for("node_success")
    assert log.kinds(m.trace_id) == [
        "node_start",
        "node_timeout",
        "node_retry",
        "node_start",
        "node_success",
    ]
    assert log.of("node_retry")[0].extra["exception"].startswith("TimeoutError(")


async def test_timeout_error_raised_by_node_code(make_flow: Any) -> None:
    log = EventLog()

    async def raises(item: Any, ctx: Any) -> None:
        raise TimeoutError("upstream slow")

    flow = make_flow(
        Node(raises, name="r", policy=policy()).to(),
        middlewares=[log],
        emit_errors_to_rookery=True,
    )
    flow.run()
    await emit(flow, msg())
    err = await fetch(flow)
    assert log.kinds()[:3] == ["node_start", "node_timeout", "node_failed"]
    assert err.code == "NODE_TIMEOUT"
    assert err.message == "upstream slow"
    assert err.metadata["timeout_s"] is None


async def test_bare_timeout_error_message(make_flow: Any) -> None:
    async def raises(item: Any, ctx: Any) -> None:
        raise TimeoutError

    flow = make_flow(Node(raises, name="r", policy=policy()).to(), emit_errors_to_rookery=True)
    flow.run()
    await emit(flow, msg())
    err = await fetch(flow)
    assert err.message == "TimeoutError"


async def test_log_record_shape(make_flow: Any, caplog: pytest.LogCaptureFixture) -> None:
    log = EventLog()
    boom = ValueError("boom")
    n, _ = flaky_node(1, name="bad", exc=boom)
    flow = make_flow(n.to(), middlewares=[log])
    caplog.set_level("DEBUG", logger="penguiflow.core")
    flow.run()
    m = msg()
    await emit(flow, m)
    await log.wait_for("node_failed")
    records = [r for r in caplog.records if r.name == "penguiflow.core"]
    by_msg = {r.getMessage(): r for r in records}
    start = by_msg["node_start"]
    assert start.levelname == "DEBUG"
    assert start.event == "node_start"  # type: ignore[attr-defined]
    assert start.trace_id == m.trace_id  # type: ignore[attr-defined]
    assert start.node_name == "bad"  # type: ignore[attr-defined]
    assert start.latency_ms == 0.0  # type: ignore[attr-defined]
    assert start.q_depth_total == 0  # type: ignore[attr-defined]
    error = by_msg["node_error"]
    assert error.levelname == "ERROR"
    assert error.exc_info is not None
    assert error.exc_info[1] is boom
    assert error.exception == "ValueError('boom')"  # type: ignore[attr-defined]
    failed = by_msg["node_failed"]
    assert failed.levelname == "ERROR"
    assert failed.exc_info is not None
    assert failed.exc_info[1] is boom
    assert failed.flow_error["code"] == "NODE_EXCEPTION"  # type: ignore[attr-defined]


async def test_log_levels(make_flow: Any, caplog: pytest.LogCaptureFixture) -> None:
    log = EventLog()
    n, _ = flaky_node(1, max_retries=1, backoff_base=0.001)
    flow = make_flow(n.to(), middlewares=[log])
    caplog.set_level("DEBUG", logger="penguiflow.core")
    flow.run()
    await emit(flow, msg())
    await fetch(flow)
    await log.wait_for("node_success")
    levels = {r.getMessage(): r.levelname for r in caplog.records if r.name == "penguiflow.core"}
    assert levels["node_start"] == "DEBUG"
    assert levels["node_error"] == "ERROR"
    assert levels["node_retry"] == "INFO"
    assert levels["node_success"] == "INFO"


async def test_timeout_log_record_is_warning_with_exc_info(
    make_flow: Any, caplog: pytest.LogCaptureFixture
) -> None:
    log = EventLog()

    async def hang(item: Any, ctx: Any) -> None:
        await asyncio.Event().wait()

    flow = make_flow(Node(hang, name="h", policy=policy(timeout_s=0.01)).to(), middlewares=[log])
    caplog.set_level("DEBUG", logger="penguiflow.core")
    flow.run()
    await emit(flow, msg())
    await log.wait_for("node_failed")
    (record,) = [r for r in caplog.records if r.getMessage() == "node_timeout"]
    assert record.levelname == "WARNING"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], TimeoutError)


async def test_event_queue_fields(make_flow: Any) -> None:
    log = EventLog()

    async def ok(item: Message, ctx: Any) -> Message:
        return item

    a = Node(ok, name="a", policy=policy())
    b = Node(ok, name="b", policy=policy())
    flow = make_flow(a.to(b), middlewares=[log], queue_maxsize=7)
    flow.run()
    m = msg()
    await emit(flow, m)
    await fetch(flow)
    await log.wait_for("node_success", 2)
    start_a = next(e for e in log.of("node_start") if e.node_name == "a")
    assert start_a.node_id == a.node_id
    assert start_a.queue_maxsize == 7
    assert start_a.outgoing_edges == 1
    assert start_a.trace_id == m.trace_id
    assert start_a.trace_cancelled is False
    assert isinstance(start_a.trace_pending, int)
    assert start_a.trace_pending >= 1


async def test_node_failed_latency_is_last_attempt(make_flow: Any) -> None:
    log = EventLog()
    n, _ = flaky_node(5, max_retries=1, backoff_base=0.001)
    flow = make_flow(n.to(), middlewares=[log], emit_errors_to_rookery=True)
    flow.run()
    await emit(flow, msg())
    err = await fetch(flow)
    (failed,) = await log.wait_for("node_failed")
    last_error = log.of("node_error")[-1]
    assert failed.latency_ms == last_error.latency_ms
    assert err.metadata["latency_ms"] == failed.latency_ms


async def test_timeout_metadata_attempt_after_retries(make_flow: Any) -> None:
    async def hang(item: Any, ctx: Any) -> None:
        await asyncio.Event().wait()

    n = Node(hang, name="h", policy=policy(timeout_s=0.01, max_retries=1, backoff_base=0.001))
    flow = make_flow(n.to(), emit_errors_to_rookery=True)
    flow.run()
    await emit(flow, msg())
    err = await fetch(flow)
    assert err.code == "NODE_TIMEOUT"
    assert err.metadata["attempt"] == 1
