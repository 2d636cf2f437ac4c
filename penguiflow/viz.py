"""Render a flow's graph as Mermaid or Graphviz DOT text.

Both renderers read only the flow's edge list (``flow.edges``; a flow-like object
written for 2.2.5 may offer ``_floes`` instead), each edge with ``.source`` and
``.target``, including the synthetic OpenSea (ingress) and Rookery (egress)
edges, and the nodes' ``name`` / ``node_id`` / ``allow_cycle``.
Nothing needs to be running. Conventions:

* endpoints (OpenSea, Rookery) get the ``endpoint`` class;
* controller-loop nodes (``allow_cycle=True`` or a self-edge) get ``controller_loop``;
* edges are labelled ``loop`` (self-edge), ``ingress`` (from an endpoint) and
  ``egress`` (into an endpoint).

A subflow started with ``call_playbook`` is a separate ``PenguiFlow`` built at
call time; render it on its own (``flow_to_mermaid(playbook()[0])``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from penguiflow.core import PenguiFlow
from penguiflow.node import Node

__all__ = ["flow_to_mermaid", "flow_to_dot"]  # noqa: RUF022 - the 2.2.5 order

_NOT_ID = re.compile(r"[^0-9A-Za-z_]")

_MERMAID_CLASSDEFS = {
    "controller_loop": "fill:#fef3c7,stroke:#b45309,stroke-width:1px",
    "endpoint": "fill:#e0f2fe,stroke:#0369a1,stroke-width:1px",
}


@dataclass(slots=True)
class _VisualNode:
    ident: str
    label: str
    is_endpoint: bool
    classes: set[str] = field(default_factory=set)


@dataclass(frozen=True, slots=True)
class _VisualEdge:
    source: _VisualNode
    target: _VisualNode
    label: str | None


@dataclass(frozen=True, slots=True)
class _Graph:
    nodes: tuple[_VisualNode, ...]
    edges: tuple[_VisualEdge, ...]


def _build_graph(flow: Any) -> _Graph:
    """Collect visual nodes and labelled edges from the flow's edge list."""
    entities: dict[Any, _VisualNode] = {}
    used_ids: set[str] = set()

    def visual(entity: Any) -> _VisualNode:
        found = entities.get(entity)
        if found is not None:
            return found
        is_node = isinstance(entity, Node)
        label = (entity.name or entity.node_id) if is_node else str(entity.name)
        base = _NOT_ID.sub("_", label) or "node"
        ident, suffix = base, 1
        while ident in used_ids:
            suffix += 1
            ident = f"{base}_{suffix}"
        used_ids.add(ident)
        node = _VisualNode(ident, label, is_endpoint=not is_node)
        if not is_node:
            node.classes.add("endpoint")
        elif entity.allow_cycle:
            node.classes.add("controller_loop")
        entities[entity] = node
        return node

    edges: list[_VisualEdge] = []
    seen: set[tuple[int, int]] = set()
    floes = flow.edges if isinstance(flow, PenguiFlow) else flow._floes  # a 2.2.5 flow-like
    for floe in floes:
        source, target = visual(floe.source), visual(floe.target)
        key = (id(source), id(target))
        if key in seen:  # duplicate declarations collapse into one edge
            continue
        seen.add(key)
        if source is target:
            source.classes.add("controller_loop")
            label: str | None = "loop"
        elif source.is_endpoint:
            label = "ingress"
        elif target.is_endpoint:
            label = "egress"
        else:
            label = None
        edges.append(_VisualEdge(source, target, label))

    # Line order is not part of the contract; this one (nodes, then endpoints;
    # plain edges, ingress, egress, loops) is stable and reads top-down.
    kind_order = {None: 0, "ingress": 1, "egress": 2, "loop": 3}
    nodes = sorted(entities.values(), key=lambda node: node.is_endpoint)
    ordered_edges = sorted(edges, key=lambda edge: kind_order[edge.label])
    return _Graph(tuple(nodes), tuple(ordered_edges))


def flow_to_mermaid(flow: Any, *, direction: str = "TD") -> str:
    """Return a Mermaid ``graph`` definition of ``flow``.

    Args:
        flow: a ``PenguiFlow`` (running or not).
        direction: Mermaid direction (``TD``, ``LR``, ...).

    The text starts with ``graph <direction>`` and has no trailing newline.
    """
    graph = _build_graph(flow)
    lines = [f"graph {direction}"]
    for node in graph.nodes:
        label = node.label.replace('"', '\\"')
        lines.append(f'    {node.ident}["{label}"]')
    used = sorted({name for node in graph.nodes for name in node.classes})
    lines.extend(f"    classDef {name} {_MERMAID_CLASSDEFS[name]}" for name in used)
    lines.extend(
        f"    class {node.ident} {' '.join(sorted(node.classes))}"
        for node in graph.nodes
        if node.classes
    )
    for edge in graph.edges:
        arrow = "-->" if edge.label is None else f"-->|{edge.label}|"
        lines.append(f"    {edge.source.ident} {arrow} {edge.target.ident}")
    return "\n".join(lines)


def flow_to_dot(flow: Any, *, rankdir: str = "TB") -> str:
    """Return a Graphviz DOT ``digraph PenguiFlow`` definition of ``flow``.

    Args:
        flow: a ``PenguiFlow`` (running or not).
        rankdir: Graphviz ``rankdir`` (``TB``, ``LR``, ...).
    """
    graph = _build_graph(flow)
    lines = [
        "digraph PenguiFlow {",
        f"    rankdir={rankdir}",
        "    node [shape=box, style=rounded]",
    ]
    for node in graph.nodes:
        attrs = [f'label="{node.label}"']  # label not escaped, as in 2.2.5
        if node.is_endpoint:
            attrs.append('shape=oval, style="filled", fillcolor="#e0f2fe"')
        elif "controller_loop" in node.classes:
            attrs.append('style="rounded,filled", fillcolor="#fef3c7"')
        lines.append(f"    {node.ident} [{', '.join(attrs)}]")
    for edge in graph.edges:
        line = f"    {edge.source.ident} -> {edge.target.ident}"
        if edge.label is not None:
            line += f' [label="{edge.label}"]'  # fixed words: nothing to escape
        lines.append(line)
    lines.append("}")
    return "\n".join(lines)
