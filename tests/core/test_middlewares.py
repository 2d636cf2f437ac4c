"""log_flow_events and format_flow_event (spec/events-errors.md)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from penguiflow.debug import format_flow_event
from penguiflow.metrics import FlowEvent
from penguiflow.middlewares import log_flow_events


def event(event_type: str, **extra: Any) -> FlowEvent:
    return FlowEvent(event_type, 1.0, "n", "id", "t", 0, 5.0, 0, 0, 1, 64, 1, 0, False, extra)


@pytest.mark.parametrize(
    ("event_type", "level"),
    [
        pytest.param("node_start", logging.DEBUG, id="start"),
        pytest.param("node_success", logging.WARNING, id="success"),
        pytest.param("node_error", logging.CRITICAL, id="error"),
    ],
)
async def test_logs_the_three_node_events_at_their_levels(
    caplog: pytest.LogCaptureFixture, event_type: str, level: int
) -> None:
    middleware = log_flow_events(
        start_level=logging.DEBUG, success_level=logging.WARNING, error_level=logging.CRITICAL
    )
    with caplog.at_level(logging.DEBUG, logger="penguiflow.flow"):
        await middleware(event(event_type))
    (record,) = caplog.records
    assert record.name == "penguiflow.flow"
    assert record.levelno == level
    assert record.getMessage() == event_type
    assert record.event == event_type  # type: ignore[attr-defined]


async def test_ignores_other_events(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        await log_flow_events()(event("node_retry"))
    assert caplog.records == []


async def test_error_payload_is_attached_to_node_error(caplog: pytest.LogCaptureFixture) -> None:
    custom = logging.getLogger("tests.custom")
    with caplog.at_level(logging.DEBUG, logger="tests.custom"):
        await log_flow_events(custom)(event("node_error", flow_error={"code": "C"}))
    assert caplog.records[0].error_payload == {"code": "C"}  # type: ignore[attr-defined]


async def test_latency_callback_gets_success_and_error_only() -> None:
    calls: list[tuple[str, float]] = []
    middleware = log_flow_events(latency_callback=lambda kind, ms, ev: calls.append((kind, ms)))
    for kind in ("node_start", "node_success", "node_error"):
        await middleware(event(kind))
    assert calls == [("node_success", 5.0), ("node_error", 5.0)]


async def test_latency_callback_error_is_logged_and_swallowed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(kind: str, ms: float, ev: FlowEvent) -> None:
        raise RuntimeError("cb")

    with caplog.at_level(logging.INFO, logger="penguiflow.flow"):
        await log_flow_events(latency_callback=boom)(event("node_success"))
    failure = caplog.records[-1]
    assert failure.getMessage() == "log_flow_events_latency_callback_error"
    assert failure.trace_id == "t"  # type: ignore[attr-defined]
    assert failure.exc_info is not None


def test_format_flow_event_flattens_flow_error() -> None:
    payload = format_flow_event(event("node_failed", flow_error={"code": "C", "message": "m"}))
    assert payload["flow_error"] == {"code": "C", "message": "m"}
    assert payload["flow_error_code"] == "C"
    assert payload["flow_error_message"] == "m"


def test_format_flow_event_without_error_is_the_payload() -> None:
    ev = event("node_success")
    assert format_flow_event(ev) == ev.to_payload()
