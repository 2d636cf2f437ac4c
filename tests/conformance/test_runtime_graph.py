"""Conformance: runtime.md §1-§4 and §15 (construction, graph, cycles, lifecycle, compat)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conformance_support import EventLog, emit, fetch, msg

from penguiflow import CycleError, Node, NodePolicy, PenguiFlow, create
from penguiflow.core import OPEN_SEA, ROOKERY, Context, Floe


async def echo(item: Any, ctx: Any) -> Any:
    return item


def node(name: str, **kwargs: Any) -> Node:
    return Node(echo, name=name, policy=NodePolicy(validate="none"), **kwargs)


def edges(flow: PenguiFlow) -> set[tuple[str, str]]:
    return {(e.source.name, e.target.name) for e in flow._floes}


# --- construction -----


def test_create_forwards_to_constructor() -> None:
    a = node("a")
    flow = create(a.to(), queue_maxsize=3)
    assert isinstance(flow, PenguiFlow)


def test_empty_flow_is_allowed() -> None:
    assert isinstance(create(), PenguiFlow)


def test_constructor_keyword_defaults() -> None:
    flow = PenguiFlow(node("a").to())
    assert flow._middlewares == []
    assert flow._running is False
    assert flow.registry is None


def test_middlewares_are_copied_into_a_list() -> None:
    async def mw(event: Any) -> None:
        return None

    given = (mw,)
    flow = create(node("a").to(), middlewares=given)
    assert flow._middlewares == [mw]
    assert isinstance(flow._middlewares, list)


def test_ingress_and_egress_edges() -> None:
    a, b, c, d = node("a"), node("b"), node("c"), node("d")
    flow = create(a.to(b, c), b.to(d), c.to(d), d.to())
    assert edges(flow) == {
        ("OpenSea", "a"),
        ("a", "b"),
        ("a", "c"),
        ("b", "d"),
        ("c", "d"),
        ("d", "Rookery"),
    }


def test_duplicate_edges_collapse() -> None:
    a, b = node("a"), node("b")
    flow = create(a.to(b), a.to(b), b.to())
    assert len([e for e in flow._floes if e.source is a and e.target is b]) == 1


def test_node_only_as_successor_is_egress() -> None:
    a, b = node("a"), node("b")
    assert edges(create(a.to(b))) == {("OpenSea", "a"), ("a", "b"), ("b", "Rookery")}


def test_controller_self_loop_is_ingress_and_egress() -> None:
    c = node("c", allow_cycle=True)
    assert edges(create(c.to(c))) == {("OpenSea", "c"), ("c", "c"), ("c", "Rookery")}


def test_self_loop_with_other_successor_is_not_egress() -> None:
    c, w = node("c", allow_cycle=True), node("w")
    assert edges(create(c.to(c, w), w.to())) == {
        ("OpenSea", "c"),
        ("c", "c"),
        ("c", "w"),
        ("w", "Rookery"),
    }


def test_floes_expose_source_and_target_objects() -> None:
    a = node("a")
    flow = create(a.to())
    sources = {e.source for e in flow._floes}
    targets = {e.target for e in flow._floes}
    assert OPEN_SEA in sources
    assert a in sources
    assert ROOKERY in targets


def test_floe_constructible_standalone() -> None:
    a, b = node("a"), node("b")
    floe = Floe(a, b, maxsize=2)
    assert floe.source is a
    assert floe.target is b
    assert floe.queue.qsize() == 0


# --- cycles -----


def test_two_node_cycle_raises() -> None:
    a, b = node("a"), node("b")
    with pytest.raises(CycleError) as info:
        create(a.to(b), b.to(a))
    assert str(info.value) == "Flow contains a cycle; enable allow_cycles to bypass"


def test_allow_cycles_accepts_cycle() -> None:
    a, b = node("a"), node("b")
    flow = create(a.to(b), b.to(a), allow_cycles=True)
    assert not any(e.source == OPEN_SEA for e in flow._floes)


def test_self_loop_without_allow_cycle_raises() -> None:
    c = node("c")
    with pytest.raises(CycleError):
        create(c.to(c))


def test_self_loop_without_allow_cycle_but_allow_cycles_has_no_ingress() -> None:
    c = node("c")
    flow = create(c.to(c), allow_cycles=True)
    assert ("OpenSea", "c") not in edges(flow)
    assert ("c", "Rookery") in edges(flow)


def test_self_loop_with_allow_cycle_is_accepted() -> None:
    c = node("c", allow_cycle=True)
    assert ("c", "c") in edges(create(c.to(c)))


async def test_pure_cycle_emit_is_a_noop(make_flow: Any) -> None:
    a, b = node("a"), node("b")
    flow = make_flow(a.to(b), b.to(a), allow_cycles=True)
    flow.run()
    await emit(flow, msg())
    assert edges(flow) == {("a", "b"), ("b", "a")}


# --- lifecycle -----


async def test_run_twice_raises(make_flow: Any) -> None:
    flow = make_flow(node("a").to())
    flow.run()
    with pytest.raises(RuntimeError) as info:
        flow.run()
    assert str(info.value) == "PenguiFlow already running"


async def test_running_flag_and_tasks(make_flow: Any) -> None:
    a, b = node("a"), node("b")
    flow = make_flow(a.to(b))
    flow.run()
    assert flow._running is True
    assert len(flow._tasks) == 2
    await flow.stop()
    assert flow._running is False
    assert list(flow._tasks) == []


async def test_stop_when_not_running_is_noop(make_flow: Any) -> None:
    flow = make_flow(node("a").to())
    await flow.stop()
    assert flow._running is False


async def test_stop_then_run_again(make_flow: Any) -> None:
    flow = make_flow(node("a").to())
    flow.run()
    await flow.stop()
    flow.run()
    m = msg()
    await emit(flow, m)
    assert await fetch(flow) is m


async def test_emit_before_run_waits_in_queue(make_flow: Any) -> None:
    flow = make_flow(node("a").to())
    m = msg()
    await emit(flow, m)
    flow.run()
    assert await fetch(flow) is m


async def test_stop_cancels_blocked_node(make_flow: Any) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def block(item: Any, ctx: Any) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    flow = make_flow(Node(block, name="block", policy=NodePolicy(validate="none")).to())
    flow.run()
    await emit(flow, msg())
    async with asyncio.timeout(5):
        await started.wait()
        await flow.stop()
    assert cancelled.is_set()
    assert flow._tasks == []


async def test_stop_emits_node_cancelled_per_started_worker(make_flow: Any) -> None:
    log = EventLog()
    a, b = node("a"), node("b")
    flow = make_flow(a.to(b), middlewares=[log])
    flow.run()
    await asyncio.sleep(0)  # let each worker get its first turn (runtime.md §4)
    await flow.stop()
    cancelled = log.of("node_cancelled")
    assert sorted(e.node_name for e in cancelled) == ["a", "b"]
    for event in cancelled:
        assert event.trace_id is None
        assert event.trace_pending is None
        assert event.attempt == 0
        assert event.latency_ms is None


async def test_stop_does_not_hang_on_queued_items(make_flow: Any) -> None:
    gate = asyncio.Event()

    async def wait(item: Any, ctx: Any) -> Any:
        await gate.wait()
        return item

    flow = make_flow(Node(wait, name="w", policy=NodePolicy(validate="none")).to())
    flow.run()
    for _ in range(3):
        await emit(flow, msg())
    async with asyncio.timeout(5):
        await flow.stop()
    assert flow._running is False


async def test_add_middleware_while_running(make_flow: Any) -> None:
    log = EventLog()
    flow = make_flow(node("a").to())
    flow.run()
    flow.add_middleware(log)
    assert flow._middlewares[-1] is log
    await emit(flow, msg())
    await fetch(flow)
    assert "node_success" in log.kinds()


# --- contexts (compat surface) -----


def test_contexts_cover_nodes_and_endpoints() -> None:
    a, b = node("a"), node("b")
    flow = create(a.to(b))
    assert set(flow._contexts) >= {a, b, OPEN_SEA, ROOKERY}
    ctx = flow._contexts[a]
    assert isinstance(ctx, Context)
    assert ctx.owner is a
    assert ctx.runtime is flow


def test_context_outgoing_and_incoming_keys() -> None:
    a, b, c = node("a"), node("b"), node("c")
    flow = create(a.to(b, c), b.to(), c.to())
    assert set(flow._contexts[a]._outgoing) == {b, c}
    assert set(flow._contexts[a]._incoming) == {OPEN_SEA}
    assert set(flow._contexts[b]._outgoing) == {ROOKERY}
    assert set(flow._contexts[b]._incoming) == {a}
    assert {k.name for k in flow._contexts[a]._outgoing} == {"b", "c"}


def test_outgoing_count_includes_rookery_edge() -> None:
    a, b, c = node("a"), node("b"), node("c")
    flow = create(a.to(b, c), b.to(), c.to())
    assert flow._contexts[a].outgoing_count() == 2
    assert flow._contexts[b].outgoing_count() == 1
    assert flow._contexts[OPEN_SEA].outgoing_count() == 1


async def test_queue_depths(make_flow: Any) -> None:
    a, b = node("a"), node("b")
    flow = make_flow(a.to(b))
    await emit(flow, msg())
    await emit(flow, msg())
    assert flow._contexts[a].queue_depth_in() == 2
    assert flow._contexts[OPEN_SEA].queue_depth_out() == 2
    assert flow._contexts[b].queue_depth_in() == 0


def test_detached_context_properties() -> None:
    a = node("a")
    ctx = Context(a)
    assert ctx.owner is a
    assert ctx.runtime is None


async def test_detached_context_emit_raises() -> None:
    ctx = Context(node("a"))
    with pytest.raises(RuntimeError) as info:
        await ctx.emit(msg())
    assert str(info.value) == "Context is not attached to a running flow"
