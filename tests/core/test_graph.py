"""Graph construction: ingress/egress rules and cycle detection (runtime.md §1-§3)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from penguiflow import hosting
from penguiflow.core import OPEN_SEA, ROOKERY, CycleError, Endpoint, Floe, PenguiFlow, create
from penguiflow.node import Node


async def echo(msg: Any, ctx: Any) -> Any:
    return msg


def node(name: str, *, allow_cycle: bool = False) -> Node:
    return Node(echo, name=name, allow_cycle=allow_cycle)


def edges(flow: PenguiFlow) -> set[tuple[str, str]]:
    return {(f.source.name, f.target.name) for f in flow.edges}


def test_create_forwards_to_the_constructor() -> None:
    a = node("a")
    flow = create(a.to(), queue_maxsize=3)
    assert isinstance(flow, PenguiFlow)
    assert hosting.capacity(flow) == 3


def test_empty_flow_is_allowed() -> None:
    assert list(create().edges) == []


def test_endpoints() -> None:
    assert Endpoint("OpenSea") == OPEN_SEA
    assert Endpoint("Rookery") == ROOKERY
    with pytest.raises(AttributeError):
        OPEN_SEA.name = "x"  # type: ignore[misc]


def test_diamond_gets_one_ingress_and_one_egress_edge() -> None:
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


def test_nodes_are_in_declaration_order_and_edges_equal_floes() -> None:
    a, b, c = node("a"), node("b"), node("c")
    flow = create(a.to(b), c.to(), b.to(c))
    assert flow.nodes == (a, b, c)
    assert flow.edges == tuple(flow.edges)


def test_duplicate_edges_collapse() -> None:
    a, b = node("a"), node("b")
    flow = create(a.to(b), a.to(b), b.to())
    assert len([f for f in flow.edges if f.source is a]) == 1


def test_successor_only_nodes_are_egress() -> None:
    a, b = node("a"), node("b")
    assert ("b", "Rookery") in edges(create(a.to(b)))


def test_controller_with_self_loop_is_ingress_and_egress() -> None:
    ctl = node("ctl", allow_cycle=True)
    assert edges(create(ctl.to(ctl))) == {("OpenSea", "ctl"), ("ctl", "ctl"), ("ctl", "Rookery")}


def test_controller_with_other_successor_is_not_egress() -> None:
    ctl, out = node("ctl", allow_cycle=True), node("out")
    assert ("ctl", "Rookery") not in edges(create(ctl.to(ctl, out), out.to()))


def test_two_node_cycle_raises_cycle_error() -> None:
    a, b = node("a"), node("b")
    with pytest.raises(CycleError) as info:
        create(a.to(b), b.to(a))
    assert str(info.value) == "Flow contains a cycle; enable allow_cycles to bypass"
    assert isinstance(info.value, RuntimeError)


def test_self_loop_without_allow_cycle_raises() -> None:
    c = node("c")
    with pytest.raises(CycleError):
        create(c.to(c))


def test_allow_cycles_accepts_cycles_and_pure_cycle_has_no_ingress() -> None:
    a, b = node("a"), node("b")
    flow = create(a.to(b), b.to(a), allow_cycles=True)
    assert not [f for f in flow.edges if f.source == OPEN_SEA]


def test_self_loop_without_allow_cycle_counts_as_incoming_edge() -> None:
    c = node("c")
    flow = create(c.to(c), allow_cycles=True)
    assert edges(flow) == {("c", "c"), ("c", "Rookery")}


@pytest.mark.parametrize(
    "adjacency",
    [
        pytest.param("nope", id="not-a-tuple"),
        pytest.param((object(), ()), id="source-not-node"),
        pytest.param((node("a"), (object(),)), id="successor-not-node"),
    ],
)
def test_bad_adjacency_raises_type_error(adjacency: Any) -> None:
    with pytest.raises(TypeError):
        create(adjacency)


async def test_standalone_floe_has_a_queue() -> None:
    a = node("a")
    floe = Floe(a, ROOKERY, maxsize=2)
    assert (floe.source, floe.target) == (a, ROOKERY)
    assert isinstance(floe.queue, asyncio.Queue)
    assert floe.queue.maxsize == 2
    assert repr(floe) == "Floe(a->Rookery)"


def test_runtime_edges_expose_queue_sizes() -> None:
    a = node("a")
    flow = create(a.to(), queue_maxsize=1)
    ingress = next(f for f in flow.edges if f.source == OPEN_SEA)
    flow.emit_nowait("x")
    assert ingress.queue.qsize() == 1
    assert ingress.queue.full()
    assert not ingress.queue.empty()


def test_context_maps_name_successors_and_predecessors() -> None:
    a, b = node("a"), node("b")
    flow = create(a.to(b))
    assert set(flow.context(a)._outgoing) == {b}
    assert set(flow.context(b)._outgoing) == {ROOKERY}
    assert set(flow.context(a)._incoming) == {OPEN_SEA}
    assert set(flow.context(ROOKERY)._incoming) == {b}
    assert {k.name for k in flow.context(OPEN_SEA)._outgoing} == {"a"}


def test_a_context_names_its_successors() -> None:
    a, b = node("a"), node("b")
    flow = create(a.to(b))
    assert flow.context(a).successors() == (b,)
    assert flow.context(b).successors() == (ROOKERY,)
