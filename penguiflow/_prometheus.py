"""``PrometheusCollector``: a flow's live state as Prometheus metrics (extra ``prometheus``).

Gauges (mailbox depth and capacity, traces in flight, actor restarts) are read
from the flow at scrape time; the only per-message cost is the middleware that
counts outcomes and latencies into plain dicts. Imported lazily through
``penguiflow.metrics.PrometheusCollector`` so ``import penguiflow`` stays light.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

try:
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
    from prometheus_client.core import (
        CounterMetricFamily,
        GaugeMetricFamily,
        HistogramMetricFamily,
        Metric,
    )
    from prometheus_client.registry import Collector
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "PrometheusCollector needs prometheus-client: pip install 'penguiflow[prometheus]'"
    ) from exc

if TYPE_CHECKING:
    from penguiflow.actors import DeadLetter
    from penguiflow.metrics import FlowEvent

__all__ = ["LATENCY_BUCKETS", "OUTCOMES", "PrometheusCollector"]

#: Upper bounds (seconds) of the node latency histogram's buckets (+Inf is implied).
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.5,
    1.0,
    5.0,
    10.0,
)

#: FlowEvent type -> the ``outcome`` label of ``penguiflow_messages_total``.
OUTCOMES: dict[str, str] = {
    "node_success": "success",
    "node_error": "error",
    "node_timeout": "timeout",
    "node_failed": "failed",
    "node_trace_cancelled": "cancelled",
    "trace_cancel_drop": "dropped",
    "deadline_skip": "deadline_skip",
}

_TIMED = frozenset({"node_success", "node_error", "node_timeout"})


class _Histogram:
    __slots__ = ("counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.total = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds

    def buckets(self) -> list[tuple[str, float]]:
        result: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*LATENCY_BUCKETS, float("inf")), self.counts, strict=True):
            running += count
            result.append(("+Inf" if bound == float("inf") else repr(bound), float(running)))
        return result


class PrometheusCollector(Collector):
    """Expose ``flow``'s metrics to Prometheus.

    Args:
        flow: a ``PenguiFlow`` (running or not; gauges read whatever it has).
        registry: where to register; ``None`` means prometheus-client's default
            ``REGISTRY``.

    Metrics: ``penguiflow_mailbox_depth{node}``, ``penguiflow_mailbox_capacity{node}``,
    ``penguiflow_messages_total{node,outcome}``,
    ``penguiflow_node_latency_seconds{node}`` (histogram),
    ``penguiflow_actor_restarts_total{actor}``, ``penguiflow_dead_letters_total{reason}``,
    ``penguiflow_traces_in_flight``. Dead letters are counted by ``on_dead_letter``
    (pass it as ``ActorSystem(on_dead_letter=collector.on_dead_letter)``).

    .. versionadded:: 3.0
    """

    def __init__(self, flow: Any, registry: CollectorRegistry | None = None) -> None:
        self._flow = flow
        self.registry: CollectorRegistry = registry if registry is not None else REGISTRY
        self._messages: dict[tuple[str, str], int] = {}
        self._latency: dict[str, _Histogram] = {}
        self._dead_letters: dict[str, int] = {}
        self._restarts: dict[str, int] = {}  # restarts of earlier runs, per actor
        self._run_restarts: dict[str, int] = {}
        self._supervisor: Any = None
        self._in_flight: set[str] = set()
        # Registered first: a registry already holding these metrics refuses us
        # (ValueError) before anything is attached to the flow.
        self.registry.register(self)
        self._attached = True
        flow.add_middleware(self._on_event)
        flow.add_trace_listener(self._in_flight.discard)

    def unregister(self) -> None:
        """Leave the registry and stop counting. Idempotent."""
        if not self._attached:
            return
        self._attached = False
        self._flow.remove_trace_listener(self._in_flight.discard)
        self.registry.unregister(self)

    def on_dead_letter(self, letter: DeadLetter) -> None:
        """Count one dead letter under its ``reason``."""
        self._dead_letters[letter.reason] = self._dead_letters.get(letter.reason, 0) + 1

    def exposition(self) -> bytes:
        """The registry's metrics in Prometheus text format (what ``GET /metrics`` serves)."""
        return generate_latest(self.registry)

    async def _on_event(self, event: FlowEvent) -> None:
        if not self._attached:
            return
        kind = event.event_type
        trace_id = event.trace_id
        if trace_id is not None and kind == "node_start":
            self._in_flight.add(trace_id)
            return
        outcome = OUTCOMES.get(kind)
        if outcome is None:
            return
        node = event.node_name or ""
        key = (node, outcome)
        self._messages[key] = self._messages.get(key, 0) + 1
        if kind in _TIMED and event.latency_ms is not None:
            histogram = self._latency.get(node)
            if histogram is None:
                histogram = self._latency[node] = _Histogram()
            histogram.observe(event.latency_ms / 1000.0)

    def describe(self) -> Iterator[Metric]:
        """The metric families, without samples (lets the registry refuse duplicates)."""
        yield GaugeMetricFamily("penguiflow_mailbox_depth", "", labels=["node"])
        yield GaugeMetricFamily("penguiflow_mailbox_capacity", "", labels=["node"])
        yield CounterMetricFamily("penguiflow_messages", "", labels=["node", "outcome"])
        yield HistogramMetricFamily("penguiflow_node_latency_seconds", "", labels=["node"])
        yield CounterMetricFamily("penguiflow_actor_restarts", "", labels=["actor"])
        yield CounterMetricFamily("penguiflow_dead_letters", "", labels=["reason"])
        yield GaugeMetricFamily("penguiflow_traces_in_flight", "")

    def collect(self) -> Iterator[Metric]:
        """Read the flow now and yield every metric family."""
        flow = self._flow
        depth = GaugeMetricFamily(
            "penguiflow_mailbox_depth", "Items waiting in a node's mailbox.", labels=["node"]
        )
        capacity = GaugeMetricFamily(
            "penguiflow_mailbox_capacity",
            "Capacity of a node's mailbox per incoming edge (0: unbounded).",
            labels=["node"],
        )
        queued: set[str] = set()
        for name, box in flow.mailboxes().items():
            depth.add_metric([name], box.depth)
            capacity.add_metric([name], box.capacity)
            for item in box.items:
                trace_id = getattr(item, "trace_id", None)
                if isinstance(trace_id, str):
                    queued.add(trace_id)
        yield depth
        yield capacity
        messages = CounterMetricFamily(
            "penguiflow_messages",
            "Messages a node finished, by outcome.",
            labels=["node", "outcome"],
        )
        for (node, outcome), count in sorted(self._messages.items()):
            messages.add_metric([node, outcome], count)
        yield messages
        latency = HistogramMetricFamily(
            "penguiflow_node_latency_seconds",
            "Duration of node attempts.",
            labels=["node"],
        )
        for node, histogram in sorted(self._latency.items()):
            latency.add_metric([node], histogram.buckets(), histogram.total)
        yield latency
        restarts = CounterMetricFamily(
            "penguiflow_actor_restarts",
            "Restarts of a node actor by its supervisor.",
            labels=["actor"],
        )
        for actor, count in sorted(self._actor_restarts().items()):
            restarts.add_metric([actor], count)
        yield restarts
        dead = CounterMetricFamily(
            "penguiflow_dead_letters",
            "Messages that could not be delivered or processed, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(self._dead_letters.items()):
            dead.add_metric([reason], count)
        yield dead
        in_flight = GaugeMetricFamily(
            "penguiflow_traces_in_flight", "Traces with work queued or in progress."
        )
        in_flight.add_metric([], len(self._in_flight | queued))
        yield in_flight

    def _actor_restarts(self) -> dict[str, int]:
        """Restarts per actor, kept across runs (each run has a new supervisor)."""
        supervisor = self._flow.supervisor
        if supervisor is not self._supervisor:
            for actor, count in self._run_restarts.items():
                self._restarts[actor] = self._restarts.get(actor, 0) + count
            self._run_restarts = {}
            self._supervisor = supervisor
        if supervisor is not None:
            self._run_restarts = {
                str(info.id): info.restarts for info in supervisor.which_children()
            }
        totals = dict(self._restarts)
        for actor, count in self._run_restarts.items():
            totals[actor] = totals.get(actor, 0) + count
        for node in flow_node_names(self._flow):
            totals.setdefault(node, 0)
        return totals


def flow_node_names(flow: Any) -> list[str]:
    """The names of ``flow``'s nodes, in graph order."""
    return [str(node.name) for node in flow.nodes]
