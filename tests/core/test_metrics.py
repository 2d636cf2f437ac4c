"""FlowEvent (spec/events-errors.md, "FlowEvent")."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from penguiflow.metrics import FlowEvent


def make(**overrides: Any) -> FlowEvent:
    values: dict[str, Any] = {
        "event_type": "node_success",
        "ts": 1.0,
        "node_name": "n",
        "node_id": "id",
        "trace_id": "t",
        "attempt": 0,
        "latency_ms": 2.5,
        "queue_depth_in": 1,
        "queue_depth_out": 2,
        "outgoing_edges": 3,
        "queue_maxsize": 64,
        "trace_pending": 4,
        "trace_inflight": 1,
        "trace_cancelled": False,
    }
    values.update(overrides)
    return FlowEvent(**values)


def test_positional_field_order() -> None:
    event = FlowEvent("e", 1.0, "n", "id", "t", 1, None, 1, 2, 3, 64, None, 0, True, {"k": 1})
    assert [f.name for f in dataclasses.fields(FlowEvent)] == [
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
    assert event.extra["k"] == 1


def test_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        make().attempt = 3  # type: ignore[misc]


def test_extra_is_a_read_only_copy() -> None:
    extra = {"a": 1}
    event = make(extra=extra)
    extra["a"] = 2
    assert event.extra["a"] == 1
    with pytest.raises(TypeError):
        event.extra["a"] = 3  # type: ignore[index]
    assert dict(make().extra) == {}


def test_queue_depth_sums_in_and_out() -> None:
    assert make().queue_depth == 3


def test_error_payload_is_read_only_copy_of_flow_error() -> None:
    event = make(extra={"flow_error": {"code": "C"}})
    payload = event.error_payload
    assert payload is not None
    assert dict(payload) == {"code": "C"}
    with pytest.raises(TypeError):
        payload["code"] = "D"  # type: ignore[index]
    assert make(extra={"flow_error": "text"}).error_payload is None
    assert make().error_payload is None


def test_to_payload_order_and_extra_override() -> None:
    payload = make(extra={"attempt": 9, "x": "y"}).to_payload()
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
        "x",
    ]
    assert payload["attempt"] == 9
    assert payload["event"] == "node_success"
    assert payload["q_depth_total"] == 3


def test_to_payload_omits_trace_pending_when_none() -> None:
    assert "trace_pending" not in make(trace_pending=None).to_payload()


def test_metric_samples() -> None:
    samples = make(trace_cancelled=True).metric_samples()
    assert samples == {
        "queue_depth_in": 1.0,
        "queue_depth_out": 2.0,
        "queue_depth_total": 3.0,
        "attempt": 0.0,
        "trace_inflight": 1.0,
        "trace_cancelled": 1.0,
        "trace_pending": 4.0,
        "latency_ms": 2.5,
    }


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        pytest.param({"latency_ms": "21.0"}, 21.0, id="convertible-overrides"),
        pytest.param({"latency_ms": "fast"}, 2.5, id="non-convertible-ignored"),
    ],
)
def test_metric_samples_extra_latency(extra: dict[str, Any], expected: float) -> None:
    assert make(extra=extra).metric_samples()["latency_ms"] == expected


def test_metric_samples_without_optional_values() -> None:
    samples = make(trace_pending=None, latency_ms=None).metric_samples()
    assert "trace_pending" not in samples
    assert "latency_ms" not in samples


def test_tag_values() -> None:
    tags = make(extra={"s": "v", "i": 1, "f": 1.5, "b": True, "obj": object()}).tag_values()
    assert tags == {
        "event_type": "node_success",
        "node_name": "n",
        "node_id": "id",
        "trace_id": "t",
        "s": "v",
        "i": "1",
        "f": "1.5",
        "b": "True",
    }
    assert make(trace_id=None).tag_values().get("trace_id") is None
