"""``format_flow_event``: a flat, log-friendly dict of a ``FlowEvent``."""

from __future__ import annotations

from typing import Any

from penguiflow.metrics import FlowEvent

__all__ = ["format_flow_event"]


def format_flow_event(event: FlowEvent) -> dict[str, Any]:
    """Return ``event.to_payload()`` plus the ``flow_error`` fields flattened.

    When the event carries a ``FlowError`` payload, the result also has
    ``flow_error`` (a dict) and one ``flow_error_<key>`` entry per key.
    """
    payload = event.to_payload()
    error_payload = event.error_payload
    if error_payload is not None:
        payload["flow_error"] = dict(error_payload)
        for key, value in error_payload.items():
            payload[f"flow_error_{key}"] = value
    return payload
