"""``FlowEvent``: the structured record of everything a flow does (one per fact)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from penguiflow._prometheus import PrometheusCollector as PrometheusCollector

__all__ = ["FlowEvent"]  # PrometheusCollector: lazy, see __getattr__ below

_EMPTY: Mapping[str, Any] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class FlowEvent:
    """One runtime event: what happened, where, for which trace, and the queue state.

    ``extra`` is stored as a read-only copy. The field order is part of the
    2.2.5 contract (programs build events positionally).
    """

    event_type: str
    ts: float
    node_name: str | None
    node_id: str | None
    trace_id: str | None
    attempt: int
    latency_ms: float | None
    queue_depth_in: int
    queue_depth_out: int
    outgoing_edges: int
    queue_maxsize: int
    trace_pending: int | None
    trace_inflight: int
    trace_cancelled: bool
    extra: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        extra = self.extra
        # Copy even when already a proxy: the caller may still hold the dict behind it.
        object.__setattr__(self, "extra", MappingProxyType(dict(extra)) if extra else _EMPTY)

    @property
    def queue_depth(self) -> int:
        """Items waiting in the emitting context's incoming and outgoing queues."""
        return self.queue_depth_in + self.queue_depth_out

    @property
    def error_payload(self) -> Mapping[str, Any] | None:
        """A read-only copy of ``extra["flow_error"]`` when it is a mapping, else ``None``."""
        payload = self.extra.get("flow_error")
        if isinstance(payload, Mapping):
            return MappingProxyType(dict(payload))
        return None

    def to_payload(self) -> dict[str, Any]:
        """The event as a flat dict (the keys of the ``penguiflow.core`` log records)."""
        payload: dict[str, Any] = {
            "ts": self.ts,
            "event": self.event_type,
            "node_name": self.node_name,
            "node_id": self.node_id,
            "trace_id": self.trace_id,
            "latency_ms": self.latency_ms,
            "q_depth_in": self.queue_depth_in,
            "q_depth_out": self.queue_depth_out,
            "q_depth_total": self.queue_depth_in + self.queue_depth_out,
            "outgoing": self.outgoing_edges,
            "queue_maxsize": self.queue_maxsize,
            "attempt": self.attempt,
            "trace_inflight": self.trace_inflight,
            "trace_cancelled": self.trace_cancelled,
        }
        if self.trace_pending is not None:
            payload["trace_pending"] = self.trace_pending
        if self.extra:
            payload.update(self.extra)
        return payload

    def metric_samples(self) -> dict[str, float]:
        """Numeric samples for metrics sinks (queue depths, attempt, latency, ...)."""
        samples: dict[str, float] = {
            "queue_depth_in": float(self.queue_depth_in),
            "queue_depth_out": float(self.queue_depth_out),
            "queue_depth_total": float(self.queue_depth_in + self.queue_depth_out),
            "attempt": float(self.attempt),
            "trace_inflight": float(self.trace_inflight),
            "trace_cancelled": 1.0 if self.trace_cancelled else 0.0,
        }
        if self.trace_pending is not None:
            samples["trace_pending"] = float(self.trace_pending)
        if self.latency_ms is not None:
            samples["latency_ms"] = float(self.latency_ms)
        if "latency_ms" in self.extra:
            with contextlib.suppress(TypeError, ValueError):
                samples["latency_ms"] = float(self.extra["latency_ms"])
        return samples

    def tag_values(self) -> dict[str, str]:
        """String tags: event type, node and trace identity, scalar extras."""
        tags = {"event_type": self.event_type}
        for key in ("node_name", "node_id", "trace_id"):
            value = getattr(self, key)
            if value is not None:
                tags[key] = str(value)
        for key, value in self.extra.items():
            if isinstance(value, str | int | float | bool):
                tags[key] = str(value)
        return tags


def __getattr__(name: str) -> Any:
    # PrometheusCollector lives with its optional dependency (prometheus-client):
    # loaded on first access, so importing FlowEvent never imports it.
    if name == "PrometheusCollector":
        from penguiflow._prometheus import PrometheusCollector

        return PrometheusCollector
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
