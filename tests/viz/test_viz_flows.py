"""Rendering real flows: synthetic endpoints, ingress/egress rules, running flows."""

from __future__ import annotations

import asyncio
from typing import Any

from penguiflow import Headers, Message, Node, NodePolicy, create, flow_to_dot, flow_to_mermaid

NO_VALIDATION = NodePolicy(validate="none")


async def _step(message: Any, _ctx: Any) -> Any:
    return message


def _node(name: str, *, allow_cycle: bool = False) -> Node:
    return Node(_step, name=name, allow_cycle=allow_cycle, policy=NO_VALIDATION)


SPEC_EXAMPLE = {
    "graph TD",
    '    controller["controller"]',
    '    worker_1["worker-1"]',
    '    OpenSea["OpenSea"]',
    '    Rookery["Rookery"]',
    "    classDef controller_loop fill:#fef3c7,stroke:#b45309,stroke-width:1px",
    "    classDef endpoint fill:#e0f2fe,stroke:#0369a1,stroke-width:1px",
    "    class controller controller_loop",
    "    class OpenSea endpoint",
    "    class Rookery endpoint",
    "    controller --> worker_1",
    "    OpenSea -->|ingress| controller",
    "    worker_1 -->|egress| Rookery",
    "    controller -->|loop| controller",
}


def test_mermaid_of_a_controller_flow_has_the_spec_lines() -> None:
    controller = _node("controller", allow_cycle=True)
    worker = _node("worker-1")
    flow = create(controller.to(controller, worker), worker.to())
    text = flow_to_mermaid(flow)
    assert text.startswith("graph TD\n")
    assert not text.endswith("\n")
    assert set(text.splitlines()) == SPEC_EXAMPLE
    assert len(text.splitlines()) == len(SPEC_EXAMPLE)


def test_dot_of_a_controller_flow_marks_endpoints_and_loops() -> None:
    controller = _node("controller", allow_cycle=True)
    worker = _node("worker-1")
    lines = flow_to_dot(create(controller.to(controller, worker), worker.to())).splitlines()
    assert lines[:3] == [
        "digraph PenguiFlow {",
        "    rankdir=TB",
        "    node [shape=box, style=rounded]",
    ]
    assert lines[-1] == "}"
    assert set(lines[3:-1]) == {
        '    controller [label="controller", style="rounded,filled", fillcolor="#fef3c7"]',
        '    worker_1 [label="worker-1"]',
        '    OpenSea [label="OpenSea", shape=oval, style="filled", fillcolor="#e0f2fe"]',
        '    Rookery [label="Rookery", shape=oval, style="filled", fillcolor="#e0f2fe"]',
        "    controller -> worker_1",
        '    OpenSea -> controller [label="ingress"]',
        '    worker_1 -> Rookery [label="egress"]',
        '    controller -> controller [label="loop"]',
    }


def test_fan_in_flow_has_one_ingress_and_one_egress_per_boundary_node() -> None:
    a, b, c, d = (_node(n) for n in "abcd")
    lines = set(flow_to_mermaid(create(a.to(b, c), b.to(d), c.to(d), d.to())).splitlines())
    assert {line for line in lines if "-->" in line} == {
        "    a --> b",
        "    a --> c",
        "    b --> d",
        "    c --> d",
        "    OpenSea -->|ingress| a",
        "    d -->|egress| Rookery",
    }


def test_self_loop_without_allow_cycle_is_a_loop_but_not_an_ingress() -> None:
    looper = _node("looper")
    lines = set(flow_to_mermaid(create(looper.to(looper), allow_cycles=True)).splitlines())
    assert "    looper -->|loop| looper" in lines
    assert "    class looper controller_loop" in lines
    assert not any("OpenSea" in line for line in lines)


def test_nodes_with_the_same_name_get_distinct_identifiers() -> None:
    first, second = _node("step"), _node("step")
    text = flow_to_mermaid(create(first.to(second), second.to()))
    assert "    step --> step_2" in text.splitlines()


async def test_rendering_a_running_flow_does_not_disturb_it() -> None:
    a, b = _node("a"), _node("b")
    flow = create(a.to(b), b.to())
    before = flow_to_mermaid(flow)
    flow.run()
    try:
        msg = Message(payload="x", headers=Headers(tenant="acme"))
        await flow.emit(msg)
        assert flow_to_mermaid(flow) == before
        async with asyncio.timeout(5):
            assert await flow.fetch() is msg
    finally:
        await flow.stop()
