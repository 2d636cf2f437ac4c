"""``flow_to_mermaid`` / ``flow_to_dot`` over a hand-built edge list."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from penguiflow import viz
from penguiflow.node import Node
from penguiflow.viz import flow_to_dot, flow_to_mermaid


@dataclass(frozen=True, slots=True)
class Endpoint:
    name: str


OPEN_SEA = Endpoint("OpenSea")
ROOKERY = Endpoint("Rookery")


@dataclass(frozen=True, slots=True)
class Edge:
    source: Any
    target: Any


class GraphOnly:
    """Just the part of a flow the renderers read."""

    def __init__(self, *edges: tuple[Any, Any]) -> None:
        self._floes = [Edge(source, target) for source, target in edges]


async def _noop(message: Any, ctx: Any) -> None:
    return None


def _node(name: str, *, allow_cycle: bool = False) -> Node:
    return Node(_noop, name=name, allow_cycle=allow_cycle)


@pytest.fixture
def controller_flow() -> GraphOnly:
    controller = _node("controller", allow_cycle=True)
    worker = _node("worker-1")
    return GraphOnly(
        (controller, worker),
        (OPEN_SEA, controller),
        (worker, ROOKERY),
        (controller, controller),
    )


def test_viz_exports_exactly_the_two_renderers() -> None:
    assert viz.__all__ == ["flow_to_mermaid", "flow_to_dot"]


def test_mermaid_matches_the_spec_example(controller_flow: GraphOnly) -> None:
    assert flow_to_mermaid(controller_flow) == "\n".join(
        [
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
        ]
    )


def test_mermaid_direction_is_configurable(controller_flow: GraphOnly) -> None:
    assert flow_to_mermaid(controller_flow, direction="LR").startswith("graph LR\n")


def test_mermaid_escapes_quotes_in_labels() -> None:
    quoted = _node('say "hi"')
    text = flow_to_mermaid(GraphOnly((OPEN_SEA, quoted)))
    assert '    say__hi_["say \\"hi\\""]' in text.splitlines()


def test_mermaid_has_no_class_lines_when_no_class_is_used() -> None:
    a, b = _node("a"), _node("b")
    text = flow_to_mermaid(GraphOnly((a, b)))
    assert text == 'graph TD\n    a["a"]\n    b["b"]\n    a --> b'


def test_self_edge_marks_a_node_as_controller_loop_even_without_allow_cycle() -> None:
    looper = _node("looper")
    lines = flow_to_mermaid(GraphOnly((looper, looper))).splitlines()
    assert "    class looper controller_loop" in lines
    assert "    looper -->|loop| looper" in lines


def test_allow_cycle_marks_a_node_without_a_self_edge() -> None:
    node = _node("ctl", allow_cycle=True)
    lines = flow_to_mermaid(GraphOnly((OPEN_SEA, node))).splitlines()
    assert "    class ctl controller_loop" in lines
    assert "    classDef endpoint fill:#e0f2fe,stroke:#0369a1,stroke-width:1px" in lines


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param(["worker-1"], ["worker_1"], id="punctuation"),
        pytest.param(["a b", "a-b", "a_b"], ["a_b", "a_b_2", "a_b_3"], id="collisions"),
        pytest.param(["x", "x", "x_2"], ["x", "x_2", "x_2_2"], id="suffix-taken"),
        pytest.param(["é"], ["_"], id="non-ascii"),
    ],
)
def test_identifiers_are_sanitised_and_made_unique(labels: list[str], expected: list[str]) -> None:
    nodes = [_node(label) for label in labels]
    flow = GraphOnly(*[(OPEN_SEA, node) for node in nodes])
    text = flow_to_mermaid(flow)
    for label, ident in zip(labels, expected, strict=True):
        assert f'    {ident}["{label}"]' in text.splitlines()


def test_empty_label_falls_back_to_node_id_then_identifier_node() -> None:
    node = _node("temp")
    node.name = ""
    text = flow_to_mermaid(GraphOnly((OPEN_SEA, node)))
    assert f'    {node.node_id}["{node.node_id}"]' in text.splitlines()


def test_entity_with_empty_identifier_becomes_node() -> None:
    blank = Endpoint("")
    text = flow_to_mermaid(GraphOnly((blank, _node("a"))))
    assert '    node[""]' in text.splitlines()


def test_duplicate_edges_render_once() -> None:
    a, b = _node("a"), _node("b")
    text = flow_to_mermaid(GraphOnly((a, b), (a, b)))
    assert text.splitlines().count("    a --> b") == 1


def test_dot_renders_nodes_endpoints_and_labelled_edges(controller_flow: GraphOnly) -> None:
    assert flow_to_dot(controller_flow) == "\n".join(
        [
            "digraph PenguiFlow {",
            "    rankdir=TB",
            "    node [shape=box, style=rounded]",
            '    controller [label="controller", style="rounded,filled", fillcolor="#fef3c7"]',
            '    worker_1 [label="worker-1"]',
            '    OpenSea [label="OpenSea", shape=oval, style="filled", fillcolor="#e0f2fe"]',
            '    Rookery [label="Rookery", shape=oval, style="filled", fillcolor="#e0f2fe"]',
            "    controller -> worker_1",
            '    OpenSea -> controller [label="ingress"]',
            '    worker_1 -> Rookery [label="egress"]',
            '    controller -> controller [label="loop"]',
            "}",
        ]
    )


def test_dot_rankdir_is_configurable(controller_flow: GraphOnly) -> None:
    assert flow_to_dot(controller_flow, rankdir="LR").splitlines()[1] == "    rankdir=LR"


def test_dot_does_not_escape_node_labels() -> None:
    quoted = _node('say "hi"')
    lines = flow_to_dot(GraphOnly((quoted, ROOKERY))).splitlines()
    assert '    say__hi_ [label="say "hi""]' in lines


def test_empty_flow_renders_headers_only() -> None:
    assert flow_to_mermaid(GraphOnly()) == "graph TD"
    assert flow_to_dot(GraphOnly()) == (
        "digraph PenguiFlow {\n    rankdir=TB\n    node [shape=box, style=rounded]\n}"
    )
