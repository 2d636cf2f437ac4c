"""Conformance: spec/events-errors.md (FlowEvent, middlewares, logging, FlowError)."""

from __future__ import annotations

import dataclasses
import logging
from enum import Enum
from typing import Any

import pytest
from conformance_support import EventLog, emit, fetch, msg

from penguiflow import (
    FlowError,
    FlowErrorCode,
    FlowEvent,
    Middleware,
    Node,
    NodePolicy,
    format_flow_event,
    log_flow_events,
)

NONE = NodePolicy(validate="none")

FIELDS = [
    "event_type",
    "ts",
    "node_name",
    "node_id",
    "trace_id",
    "attempt",
    "latency_ms",
    "queue_depth_in",
    "queue_depth_out",
    "outgoing_edges",
    "queue_maxsize",
    "trace_pending",
    "trace_inflight",
    "trace_cancelled",
    "extra",
]


def event(**overrides: Any) -> FlowEvent:
    base: dict[str, Any] = {
        "event_type": "node_error",
        "ts": 1.5,
        "node_name": "n",
        "node_id": "id1",
        "trace_id": "t1",
        "attempt": 2,
        "latency_ms": 3.0,
        "queue_depth_in": 1,
        "queue_depth_out": 2,
        "outgoing_edges": 1,
        "queue_maxsize": 64,
        "trace_pending": 4,
        "trace_inflight": 1,
        "trace_cancelled": False,
    }
    base.update(overrides)
    return FlowEvent(**base)


# --- FlowEvent -----


def test_flow_event_field_order() -> None:
    assert [f.name for f in dataclasses.fields(FlowEvent)] == FIELDS


def test_flow_event_positional_construction() -> None:
    ev = FlowEvent("x", 1.0, "n", "i", None, 0, None, 0, 0, 0, 64, None, 0, False)
    assert ev.event_type == "x"
    assert dict(ev.extra) == {}


def test_flow_event_is_frozen_and_slotted() -> None:
    ev = event()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.attempt = 3  # type: ignore[misc]
    assert not hasattr(ev, "__dict__")


def test_extra_is_read_only_copy() -> None:
    source = {"a": 1}
    ev = event(extra=source)
    source["a"] = 2
    assert ev.extra["a"] == 1
    with pytest.raises(TypeError):
        ev.extra["a"] = 3  # type: ignore[index]


def test_queue_depth_property() -> None:
    assert event().queue_depth == 3


def test_to_payload_key_order() -> None:
    payload = event(extra={"exception": "E", "latency_ms": 9.0}).to_payload()
    assert list(payload) == [
        "ts",
        "event",
        "node_name",
        "node_id",
        "trace_id",
        "latency_ms",
        "q_depth_in",
        "q_depth_out",
        "q_depth_total",
        "outgoing",
        "queue_maxsize",
        "attempt",
        "trace_inflight",
        "trace_cancelled",
        "trace_pending",
        "exception",
    ]
    assert payload["latency_ms"] == 9.0
    assert payload["event"] == "node_error"
    assert payload["q_depth_total"] == 3
    assert payload["outgoing"] == 1


def test_to_payload_omits_trace_pending_when_none() -> None:
    assert "trace_pending" not in event(trace_id=None, trace_pending=None).to_payload()


def test_error_payload() -> None:
    assert event().error_payload is None
    assert event(extra={"flow_error": "not a mapping"}).error_payload is None
    ev = event(extra={"flow_error": {"code": "NODE_EXCEPTION"}})
    assert ev.error_payload == {"code": "NODE_EXCEPTION"}
    with pytest.raises(TypeError):
        ev.error_payload["code"] = "x"  # type: ignore[index]


def test_metric_samples() -> None:
    samples = event(extra={"latency_ms": "21.0"}).metric_samples()
    assert samples == {
        "queue_depth_in": 1.0,
        "queue_depth_out": 2.0,
        "queue_depth_total": 3.0,
        "attempt": 2.0,
        "trace_inflight": 1.0,
        "trace_cancelled": 0.0,
        "trace_pending": 4.0,
        "latency_ms": 21.0,
    }
    assert all(isinstance(v, float) for v in samples.values())


def test_metric_samples_ignores_bad_extra_latency_and_none() -> None:
    samples = event(
        latency_ms=None, trace_pending=None, trace_cancelled=True, extra={"latency_ms": "x"}
    ).metric_samples()
    assert "latency_ms" not in samples
    assert "trace_pending" not in samples
    assert samples["trace_cancelled"] == 1.0


def test_tag_values() -> None:
    tags = event(extra={"s": "v", "i": 1, "b": True, "f": 1.5, "o": [1]}).tag_values()
    assert tags == {
        "event_type": "node_error",
        "node_name": "n",
        "node_id": "id1",
        "trace_id": "t1",
        "s": "v",
        "i": "1",
        "b": "True",
        "f": "1.5",
    }
    assert event(node_name=None, node_id=None, trace_id=None).tag_values() == {
        "event_type": "node_error"
    }


# --- middleware pipeline -----


async def echo(item: Any, ctx: Any) -> Any:
    return item


async def test_middleware_errors_are_logged_and_swallowed(
    make_flow: Any, caplog: pytest.LogCaptureFixture
) -> None:
    boom = RuntimeError("mw broke")

    async def broken(ev: FlowEvent) -> None:
        raise boom

    after = EventLog()
    node = Node(echo, name="echo", policy=NONE)
    flow = make_flow(node.to(), middlewares=[broken, after])
    caplog.set_level(logging.ERROR, logger="penguiflow.core")
    flow.run()
    m = msg()
    await emit(flow, m)
    assert await fetch(flow) is m
    await after.wait_for("node_success")
    records = [r for r in caplog.records if r.getMessage() == "middleware_error"]
    assert len(records) == 2
    record = records[0]
    assert record.name == "penguiflow.core"
    assert record.event == "middleware_error"  # type: ignore[attr-defined]
    assert record.node_name == "echo"  # type: ignore[attr-defined]
    assert record.node_id == node.node_id  # type: ignore[attr-defined]
    assert record.exception is boom  # type: ignore[attr-defined]
    assert record.exc_info is not None


async def test_middlewares_called_in_order_with_same_events(make_flow: Any) -> None:
    calls: list[str] = []

    async def first(ev: FlowEvent) -> None:
        calls.append(f"1:{ev.event_type}")

    async def second(ev: FlowEvent) -> None:
        calls.append(f"2:{ev.event_type}")

    flow = make_flow(Node(echo, policy=NONE).to(), middlewares=[first])
    flow.add_middleware(second)
    flow.run()
    await emit(flow, msg())
    await fetch(flow)
    await flow.stop()
    assert calls[:4] == ["1:node_start", "2:node_start", "1:node_success", "2:node_success"]
    assert len([c for c in calls if c.startswith("1:")]) == len(
        [c for c in calls if c.startswith("2:")]
    )


async def test_object_with_async_call_is_a_middleware(make_flow: Any) -> None:
    log = EventLog()
    mw: Middleware = log  # structural: any async callable taking a FlowEvent
    flow = make_flow(Node(echo, policy=NONE).to(), middlewares=[mw])
    flow.run()
    await emit(flow, msg())
    await fetch(flow)
    await log.wait_for("node_success")


# --- log_flow_events -----


async def test_log_flow_events_logs_three_kinds(caplog: pytest.LogCaptureFixture) -> None:
    mw = log_flow_events()
    caplog.set_level(logging.DEBUG, logger="penguiflow.flow")
    for kind in ("node_start", "node_success", "node_error", "node_retry", "node_failed"):
        await mw(event(event_type=kind))
    records = [r for r in caplog.records if r.name == "penguiflow.flow"]
    assert [r.getMessage() for r in records] == ["node_start", "node_success", "node_error"]
    assert [r.levelno for r in records] == [logging.INFO, logging.INFO, logging.ERROR]
    assert records[0].trace_id == "t1"  # type: ignore[attr-defined]
    assert records[0].q_depth_total == 3  # type: ignore[attr-defined]


async def test_log_flow_events_custom_logger_and_levels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("conformance.custom")
    mw = log_flow_events(
        logger,
        start_level=logging.DEBUG,
        success_level=logging.WARNING,
        error_level=logging.CRITICAL,
    )
    caplog.set_level(logging.DEBUG, logger="conformance.custom")
    for kind in ("node_start", "node_success", "node_error"):
        await mw(event(event_type=kind))
    records = [r for r in caplog.records if r.name == "conformance.custom"]
    assert [r.levelno for r in records] == [logging.DEBUG, logging.WARNING, logging.CRITICAL]


async def test_log_flow_events_adds_error_payload(caplog: pytest.LogCaptureFixture) -> None:
    mw = log_flow_events()
    caplog.set_level(logging.DEBUG, logger="penguiflow.flow")
    await mw(event(extra={"flow_error": {"code": "NODE_EXCEPTION"}}))
    (record,) = [r for r in caplog.records if r.name == "penguiflow.flow"]
    assert record.error_payload == {"code": "NODE_EXCEPTION"}  # type: ignore[attr-defined]
    assert type(record.error_payload) is dict  # type: ignore[attr-defined]


async def test_log_flow_events_latency_callback() -> None:
    calls: list[tuple[str, float, FlowEvent]] = []
    mw = log_flow_events(latency_callback=lambda kind, ms, ev: calls.append((kind, ms, ev)))
    start, success, error = (
        event(event_type="node_start"),
        event(event_type="node_success", latency_ms=5),
        event(event_type="node_error", latency_ms=None),
    )
    for ev in (start, success, error):
        await mw(ev)
    assert calls == [("node_success", 5.0, success)]
    assert type(calls[0][1]) is float


async def test_log_flow_events_latency_callback_error(caplog: pytest.LogCaptureFixture) -> None:
    def bad(kind: str, ms: float, ev: FlowEvent) -> None:
        raise ValueError("cb")

    mw = log_flow_events(latency_callback=bad)
    caplog.set_level(logging.DEBUG, logger="penguiflow.flow")
    await mw(event(event_type="node_success"))
    (record,) = [
        r for r in caplog.records if r.getMessage() == "log_flow_events_latency_callback_error"
    ]
    assert record.event == "log_flow_events_latency_callback_error"  # type: ignore[attr-defined]
    assert record.node_name == "n"  # type: ignore[attr-defined]
    assert record.node_id == "id1"  # type: ignore[attr-defined]
    assert record.trace_id == "t1"  # type: ignore[attr-defined]
    assert record.exc_info is not None


# --- format_flow_event -----


def test_format_flow_event_without_error() -> None:
    ev = event()
    out = format_flow_event(ev)
    assert out == ev.to_payload()
    assert out is not ev.to_payload()


def test_format_flow_event_flattens_flow_error() -> None:
    err = {"code": "NODE_EXCEPTION", "message": "m", "trace_id": "t1", "node_name": "n"}
    out = format_flow_event(event(extra={"flow_error": err}))
    assert out["flow_error"] == err
    assert type(out["flow_error"]) is dict
    assert out["flow_error_code"] == "NODE_EXCEPTION"
    assert out["flow_error_message"] == "m"
    assert out["flow_error_trace_id"] == "t1"
    assert out["flow_error_node_name"] == "n"


# --- FlowErrorCode / FlowError -----


def test_flow_error_code_members() -> None:
    assert issubclass(FlowErrorCode, str)
    assert issubclass(FlowErrorCode, Enum)
    names = [m.name for m in FlowErrorCode]
    assert names == [
        "NODE_TIMEOUT",
        "NODE_EXCEPTION",
        "TRACE_CANCELLED",
        "DEADLINE_EXCEEDED",
        "HOP_BUDGET_EXHAUSTED",
        "TOKEN_BUDGET_EXHAUSTED",
    ]
    for member in FlowErrorCode:
        assert member.value == member.name
        assert member == member.name


def test_flow_error_attributes() -> None:
    orig = KeyError("k")
    err = FlowError(
        trace_id="T1",
        node_name="bad",
        code=FlowErrorCode.NODE_EXCEPTION,
        message="Node 'bad' raised ValueError: boom",
        original_exc=orig,
        node_id="nid",
        metadata={"a": 1},
    )
    assert isinstance(err, Exception)
    assert err.code == "NODE_EXCEPTION"
    assert type(err.code) is str
    assert err.args == ("Node 'bad' raised ValueError: boom",)
    assert err.exception_type == "KeyError"
    assert err.unwrap() is orig
    assert str(err) == "[NODE_EXCEPTION] Node 'bad' raised ValueError: boom trace=T1 node=bad"


def test_flow_error_metadata_is_copied() -> None:
    meta = {"a": 1}
    err = FlowError(trace_id=None, node_name=None, code="X", message="m", metadata=meta)
    assert err.metadata == meta
    assert err.metadata is not meta
    assert FlowError(trace_id=None, node_name=None, code="X", message="m").metadata == {}


def test_flow_error_str_without_trace_or_node() -> None:
    err = FlowError(trace_id=None, node_name="", code="CUSTOM", message="m")
    assert str(err) == "[CUSTOM] m"
    assert err.exception_type is None
    assert err.unwrap() is None


def test_flow_error_constructor_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        FlowError("t", "n", "c", "m")  # type: ignore[misc]


def test_flow_error_to_payload() -> None:
    err = FlowError(
        trace_id="t",
        node_name="n",
        code="C",
        message="m",
        original_exc=ValueError(),
        node_id="i",
        metadata={"k": 1},
    )
    payload = err.to_payload()
    assert list(payload) == [
        "code",
        "message",
        "trace_id",
        "node_name",
        "node_id",
        "exception_type",
        "metadata",
    ]
    assert payload["exception_type"] == "ValueError"
    assert payload["metadata"] == {"k": 1}
    assert payload["metadata"] is not err.metadata
    minimal = FlowError(trace_id=None, node_name=None, code="C", message="m").to_payload()
    assert minimal == {"code": "C", "message": "m"}


def test_flow_error_from_exception() -> None:
    exc = ValueError("boom")
    err = FlowError.from_exception(
        trace_id="t", node_name="n", node_id="i", exc=exc, code=FlowErrorCode.NODE_TIMEOUT
    )
    assert (err.message, err.code, err.original_exc) == ("boom", "NODE_TIMEOUT", exc)
    bare = FlowError.from_exception(
        trace_id=None, node_name="n", node_id=None, exc=ValueError(), code="C"
    )
    assert bare.message == "ValueError"
    custom = FlowError.from_exception(
        trace_id=None,
        node_name="n",
        node_id=None,
        exc=exc,
        code="C",
        message="x",
        metadata={"a": 1},
    )
    assert (custom.message, custom.metadata) == ("x", {"a": 1})
