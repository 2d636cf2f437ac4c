"""The flow graph: endpoints, edges (``Floe``), ingress/egress rules and the cycle check.

Pure data: nothing here runs. The flow wires each edge to a mailbox lane later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from penguiflow.actors import SELF_LANE
from penguiflow.errors import PenguiFlowError
from penguiflow.node import Node

if TYPE_CHECKING:
    from penguiflow.actors import Mailbox

__all__ = [
    "OPEN_SEA",
    "ROOKERY",
    "SELF_LANE",
    "CycleError",
    "Endpoint",
    "Floe",
    "FlowGraph",
    "build_graph",
]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A synthetic flow boundary: ``OpenSea`` (ingress) or ``Rookery`` (egress)."""

    name: str


OPEN_SEA = Endpoint("OpenSea")
ROOKERY = Endpoint("Rookery")


class CycleError(PenguiFlowError, RuntimeError):
    """The graph has a cycle and ``allow_cycles`` was not set."""


class _LaneView:
    """The ``queue``-like face of one mailbox lane (``qsize`` and friends)."""

    __slots__ = ("_lane", "_mailbox", "maxsize")

    def __init__(self, mailbox: Mailbox, lane: int, maxsize: int) -> None:
        self._mailbox = mailbox
        self._lane = lane
        self.maxsize = maxsize

    def qsize(self) -> int:
        return self._mailbox.depth(self._lane)  # the self lane included

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        return self.maxsize > 0 and self._lane != SELF_LANE and self.qsize() >= self.maxsize


class Floe:
    """An edge from ``source`` to ``target`` with capacity ``maxsize``.

    A standalone ``Floe`` owns an ``asyncio.Queue``; inside a flow the edge is a
    lane of the target's mailbox and ``queue`` is a read-only view of it.
    """

    __slots__ = ("_queue", "lane", "mailbox", "maxsize", "source", "target")

    def __init__(self, source: Node | Endpoint, target: Node | Endpoint, *, maxsize: int) -> None:
        self.source = source
        self.target = target
        self.maxsize = maxsize
        # Made on first use: a flow's edges are lanes, and an asyncio.Queue
        # (three deques) per edge would be built only to be thrown away.
        self._queue: Any = None
        self.mailbox: Mailbox | None = None
        self.lane = 0

    @property
    def queue(self) -> Any:
        """The edge's queue: its own ``asyncio.Queue``, or a view of its mailbox lane."""
        queue = self._queue
        if queue is None:
            mailbox = self.mailbox
            if mailbox is None:
                queue = asyncio.Queue(maxsize=self.maxsize)
            else:
                queue = _LaneView(mailbox, self.lane, self.maxsize)
            self._queue = queue
        return queue

    def attach(self, mailbox: Mailbox, lane: int) -> None:
        """Make this edge a lane of ``mailbox`` (``SELF_LANE`` for a self-edge)."""
        self.mailbox = mailbox
        self.lane = lane
        self._queue = None  # the lane's view, made on first use

    @property
    def name(self) -> str:
        """The edge's label, ``"<source>-><target>"``."""
        return f"{self.source.name}->{self.target.name}"

    def __repr__(self) -> str:
        return f"Floe({self.name})"


@dataclass(frozen=True, slots=True)
class FlowGraph:
    """Nodes in declaration order and every edge, endpoints included."""

    nodes: tuple[Node, ...]
    floes: tuple[Floe, ...]

    def incoming(self, owner: Node | Endpoint) -> dict[Node | Endpoint, Floe]:
        """Edges into ``owner``, keyed by their source."""
        return {f.source: f for f in self.floes if f.target == owner}

    def outgoing(self, owner: Node | Endpoint) -> dict[Node | Endpoint, Floe]:
        """Edges out of ``owner``, keyed by their target."""
        return {f.target: f for f in self.floes if f.source == owner}


def _parse(adjacencies: Iterable[Any]) -> tuple[list[Node], list[tuple[Node, Node]]]:
    nodes: dict[Node, None] = {}
    edges: dict[tuple[Node, Node], None] = {}
    for entry in adjacencies:
        try:
            node, successors = entry
        except (TypeError, ValueError):
            raise TypeError(
                f"Each adjacency must be a (node, successors) tuple as returned by "
                f"Node.to(); got {entry!r}"
            ) from None
        if not isinstance(node, Node):
            raise TypeError(f"Adjacency source must be a Node; got {node!r}")
        nodes.setdefault(node)
        for successor in successors:
            if not isinstance(successor, Node):
                raise TypeError(f"Successor of {node.name!r} must be a Node; got {successor!r}")
            nodes.setdefault(successor)
            edges.setdefault((node, successor))
    return list(nodes), list(edges)


def _check_acyclic(nodes: Sequence[Node], edges: Sequence[tuple[Node, Node]]) -> None:
    # Kahn's algorithm; self-edges of allow_cycle nodes are controller loops, not cycles.
    indegree = dict.fromkeys(nodes, 0)
    successors: dict[Node, list[Node]] = {node: [] for node in nodes}
    for source, target in edges:
        if source is target and source.allow_cycle:
            continue
        successors[source].append(target)
        indegree[target] += 1
    ready = [node for node, degree in indegree.items() if degree == 0]
    visited = 0
    while ready:
        node = ready.pop()
        visited += 1
        for target in successors[node]:
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    if visited != len(nodes):
        raise CycleError("Flow contains a cycle; enable allow_cycles to bypass")


def build_graph(adjacencies: Iterable[Any], *, maxsize: int, allow_cycles: bool) -> FlowGraph:
    """Build and check the graph of ``adjacencies`` (``Node.to(...)`` tuples).

    Raises:
        TypeError: an adjacency is not a ``(Node, successors)`` tuple.
        CycleError: a cycle exists and ``allow_cycles`` is false.
    """
    nodes, edges = _parse(adjacencies)
    if not allow_cycles:
        _check_acyclic(nodes, edges)
    fed = {t for s, t in edges if not (s is t and s.allow_cycle)}
    # Nodes with an edge to another node (a self-edge alone still leads to Rookery).
    onward = {s for s, t in edges if s is not t}
    floes = [Floe(OPEN_SEA, node, maxsize=maxsize) for node in nodes if node not in fed]
    floes += [Floe(source, target, maxsize=maxsize) for source, target in edges]
    floes += [Floe(node, ROOKERY, maxsize=maxsize) for node in nodes if node not in onward]
    return FlowGraph(tuple(nodes), tuple(floes))
