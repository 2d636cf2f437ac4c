"""The FlowEvent log records on ``penguiflow.core`` and middleware failures."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from core_support import Recorder, fetch, message, run_state

from penguiflow.core import PenguiFlow, create
from penguiflow.metrics import FlowEvent
from penguiflow.node import Node
from penguiflow.testkit import FakeClock

MakeFlow = Callable[..., PenguiFlow]


async def echo(msg: Any, ctx: Any) -> Any:
    return msg


async def test_record_shape(make_flow: MakeFlow, caplog: pytest.LogCaptureFixture) -> None:
    flow = make_flow(Node(echo, name="n").to())
    flow.run()
    msg = message()
    with caplog.at_level(logging.DEBUG, logger="penguiflow.core"):
        await flow.emit(msg)
        await fetch(flow)
    records = [r for r in caplog.records if r.name == "penguiflow.core"]
    start, success = records[0], records[1]
    assert (start.getMessage(), start.levelno) == ("node_start", logging.DEBUG)
    assert (success.getMessage(), success.levelno) == ("node_success", logging.INFO)
    assert success.event == "node_success"  # type: ignore[attr-defined]
    assert success.trace_id == msg.trace_id  # type: ignore[attr-defined]
    assert success.node_name == "n"  # type: ignore[attr-defined]
    assert success.q_depth_out == 1  # type: ignore[attr-defined]  # result waits in Rookery
    assert success.latency_ms >= 0  # type: ignore[attr-defined]


async def test_error_records_carry_exc_info(
    make_flow: MakeFlow, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    error = ValueError("boom")

    async def boom(msg: Any, ctx: Any) -> Any:
        raise error

    flow = make_flow(Node(boom, name="n").to())
    flow.run()
    with caplog.at_level(logging.INFO, logger="penguiflow.core"):
        await flow.emit(message())
        await recorder.wait_for("node_failed")
    by_message = {r.getMessage(): r for r in caplog.records}
    for kind in ("node_error", "node_failed"):
        record = by_message[kind]
        assert record.levelno == logging.ERROR
        assert record.exc_info is not None
        assert record.exc_info[1] is error
    assert by_message["node_failed"].flow_error["code"] == "NODE_EXCEPTION"  # type: ignore[attr-defined]


async def test_no_records_below_the_configured_level(
    make_flow: MakeFlow, caplog: pytest.LogCaptureFixture
) -> None:
    flow = make_flow(Node(echo).to(), middlewares=[])
    flow.run()
    with caplog.at_level(logging.WARNING, logger="penguiflow.core"):
        await flow.emit(message())
        await fetch(flow)
    assert [r for r in caplog.records if r.name == "penguiflow.core"] == []


async def test_failing_middleware_is_logged_and_others_still_run(
    make_flow: MakeFlow, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(event: FlowEvent) -> None:
        raise RuntimeError("mw")

    flow = make_flow(Node(echo, name="n").to(), middlewares=[broken, recorder])
    flow.run()
    with caplog.at_level(logging.ERROR, logger="penguiflow.core"):
        await flow.emit(message())
        assert await fetch(flow) is not None
    await recorder.wait_for("node_success")
    failure = next(r for r in caplog.records if r.getMessage() == "middleware_error")
    assert failure.event == "middleware_error"  # type: ignore[attr-defined]
    assert failure.node_name == "n"  # type: ignore[attr-defined]
    assert isinstance(failure.exception, RuntimeError)  # type: ignore[attr-defined]


async def test_two_middlewares_see_the_same_events(make_flow: MakeFlow, recorder: Recorder) -> None:
    other = Recorder()
    flow = make_flow(Node(echo).to(), middlewares=[recorder, other])
    flow.run()
    await flow.emit(message())
    await fetch(flow)
    await flow.stop()
    assert recorder.kinds() == other.kinds()


async def test_event_queue_fields(make_flow: MakeFlow, recorder: Recorder) -> None:
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(b), queue_maxsize=7)
    flow.run()
    await flow.emit(message())
    await fetch(flow)
    start = next(e for e in recorder.of("node_start") if e.node_name == "a")
    assert (start.outgoing_edges, start.queue_maxsize, start.node_id) == (1, 7, a.node_id)
    assert start.trace_pending == 1
    assert start.trace_inflight == 0  # the invocation about to start is not counted
    assert start.trace_cancelled is False


@pytest.mark.parametrize(
    ("trace_id", "extra"),
    [
        pytest.param(None, None, id="trace-less"),
        pytest.param("t1", {"exception": "ValueError()"}, id="traced-with-extra"),
    ],
)
async def test_log_only_records_match_the_flow_event_payload(
    clock: FakeClock, trace_id: str | None, extra: dict[str, Any] | None
) -> None:
    """With no middleware or store, the record's attributes are FlowEvent.to_payload()."""
    node = Node(echo, name="n")
    flow = create(node.to(), clock=clock)
    events = run_state(flow).events
    ctx = flow.context(node)
    if trace_id is not None:
        run_state(flow).traces.add(trace_id)
    built = events.build("node_error", ctx, trace_id, attempt=1, latency_ms=2.5, extra=extra)
    direct = events._payload("node_error", ctx, trace_id, 1, 2.5, extra)
    assert list(direct.items()) == list(built.to_payload().items())
