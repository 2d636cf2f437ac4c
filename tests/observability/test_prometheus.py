"""PrometheusCollector: live flow state, read back with prometheus-client's parser."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from penguiflow.actors import DeadLetter
from penguiflow.core import PenguiFlow, create
from penguiflow.metrics import PrometheusCollector
from penguiflow.node import Node, NodePolicy
from penguiflow.types import Headers, Message


def message(payload: Any = "x") -> Message:
    return Message(payload=payload, headers=Headers(tenant="t"))


def node(name: str, fn: Any = None, **policy: Any) -> Node:
    async def passthrough(msg: Any, ctx: Any) -> Any:
        return msg

    return Node(fn or passthrough, name=name, policy=NodePolicy(validate="none", **policy))


def samples(collector: PrometheusCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = collector.exposition().decode()
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(collector: PrometheusCollector, name: str, **labels: str) -> float:
    return samples(collector)[(name, tuple(sorted(labels.items())))]


async def fetch(flow: PenguiFlow) -> Any:
    async with asyncio.timeout(5):
        return await flow.fetch()


async def test_counts_messages_and_latency_per_node(flows: list[PenguiFlow]) -> None:
    registry = CollectorRegistry()
    a, b = node("a"), node("b")
    flow = create(a.to(b), b.to())
    collector = PrometheusCollector(flow, registry=registry)
    flow.run()
    flows.append(flow)
    for _ in range(3):
        await flow.emit(message())
        await fetch(flow)
    assert value(collector, "penguiflow_messages_total", node="a", outcome="success") == 3
    assert value(collector, "penguiflow_messages_total", node="b", outcome="success") == 3
    assert value(collector, "penguiflow_node_latency_seconds_count", node="a") == 3
    assert value(collector, "penguiflow_node_latency_seconds_bucket", node="a", le="+Inf") == 3
    assert value(collector, "penguiflow_traces_in_flight") == 0


async def test_mailbox_depth_of_a_stalled_consumer_is_read_at_scrape_time(
    flows: list[PenguiFlow],
) -> None:
    registry = CollectorRegistry()
    release = asyncio.Event()
    entered = asyncio.Event()

    async def stall(msg: Any, ctx: Any) -> Any:
        entered.set()
        await release.wait()
        return msg

    flow = create(node("stall", stall).to(), queue_maxsize=8)
    collector = PrometheusCollector(flow, registry=registry)
    flow.run()
    flows.append(flow)
    for _ in range(4):
        await flow.emit(message())
    async with asyncio.timeout(5):
        await entered.wait()
    assert value(collector, "penguiflow_mailbox_depth", node="stall") == 3  # one in hand
    assert value(collector, "penguiflow_mailbox_capacity", node="stall") == 8
    assert value(collector, "penguiflow_traces_in_flight") == 4
    release.set()
    for _ in range(4):
        await fetch(flow)
    assert value(collector, "penguiflow_mailbox_depth", node="stall") == 0
    assert value(collector, "penguiflow_traces_in_flight") == 0


async def test_errors_timeouts_and_failures_are_outcomes(flows: list[PenguiFlow]) -> None:
    registry = CollectorRegistry()

    async def boom(msg: Any, ctx: Any) -> Any:
        raise ValueError("no")

    flow = create(node("boom", boom, max_retries=1, backoff_base=0.0).to())
    collector = PrometheusCollector(flow, registry=registry)
    flow.run()
    flows.append(flow)
    await flow.emit(message())
    async with asyncio.timeout(5):
        while ("penguiflow_messages_total", (("node", "boom"), ("outcome", "failed"))) not in (
            samples(collector)
        ):
            await asyncio.sleep(0)  # polling the metric, not a timing guess
    assert value(collector, "penguiflow_messages_total", node="boom", outcome="error") == 2
    assert value(collector, "penguiflow_messages_total", node="boom", outcome="failed") == 1


async def test_actor_restarts_are_read_from_the_supervisor(flows: list[PenguiFlow]) -> None:
    from penguiflow.testkit import kill_actor

    registry = CollectorRegistry()
    flow = create(node("victim").to())
    collector = PrometheusCollector(flow, registry=registry)
    assert value(collector, "penguiflow_actor_restarts_total", actor="victim") == 0
    flow.run()
    flows.append(flow)
    assert kill_actor(flow, "victim") is True
    async with asyncio.timeout(5):
        while value(collector, "penguiflow_actor_restarts_total", actor="victim") < 1:
            await asyncio.sleep(0)
    await flow.stop()
    # Kept after the run ended, and added to by the next run.
    assert value(collector, "penguiflow_actor_restarts_total", actor="victim") == 1
    flow.run()
    assert value(collector, "penguiflow_actor_restarts_total", actor="victim") == 1


def test_dead_letters_are_counted_by_reason() -> None:
    registry = CollectorRegistry()
    flow = create(node("a").to())
    collector = PrometheusCollector(flow, registry=registry)
    collector.on_dead_letter(DeadLetter("a", "m", "poison"))
    collector.on_dead_letter(DeadLetter("a", "m", "poison"))
    collector.on_dead_letter(DeadLetter("a", "m", "stopped"))
    assert value(collector, "penguiflow_dead_letters_total", reason="poison") == 2
    assert value(collector, "penguiflow_dead_letters_total", reason="stopped") == 1


def test_registers_with_the_default_registry_when_none_is_given() -> None:
    from prometheus_client import REGISTRY

    collector = PrometheusCollector(create(node("a").to()))
    try:
        assert collector.registry is REGISTRY
        assert REGISTRY.get_sample_value("penguiflow_mailbox_depth", {"node": "a"}) == 0
    finally:
        collector.unregister()
    collector.unregister()  # idempotent
    assert REGISTRY.get_sample_value("penguiflow_mailbox_depth", {"node": "a"}) is None


def test_a_registry_refuses_a_second_collector() -> None:
    registry = CollectorRegistry()
    PrometheusCollector(create(node("a").to()), registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        PrometheusCollector(create(node("a").to()), registry=registry)


def test_metrics_module_has_no_other_lazy_names() -> None:
    import penguiflow.metrics

    with pytest.raises(AttributeError, match="Nope"):
        penguiflow.metrics.Nope  # noqa: B018 - the lookup is the test
