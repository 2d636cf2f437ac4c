"""The worker's side of a distributed node: a copy of the flow hosting that node alone.

A worker builds its own copy of the flow and hosts one node in it. Whatever the
node sends on its outgoing edges, and whatever reaches Rookery, goes to a
``Collector`` instead of a mailbox (``penguiflow.hosting.attach_edge``), so the
worker can ship it back to the origin as the result of one work entry. The bus
is off in the copy (``hosting.disable_bus``): the origin already published every
edge put once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from penguiflow import hosting
from penguiflow.distributed._protocol import ROOKERY_CODE

if TYPE_CHECKING:
    from penguiflow.core import PenguiFlow
    from penguiflow.node import Node

__all__ = ["Collector", "edge_name", "mount_worker"]


class Collector:
    """Stands in for the mailboxes behind a hosted node's outgoing edges in a worker.

    Whatever the node puts there is recorded as ``(edge code, item)`` for the
    result entry and at once marked finished locally: the origin counts it again
    when it delivers the item, and per-trace capacity waits (``emit_chunk``)
    must not stall on items that already left.
    """

    capacity = 0
    lanes = 1

    def __init__(self, flow: PenguiFlow, codes: dict[int, int]) -> None:
        self._flow = flow
        self._codes = codes  # lane -> edge code
        self.items: list[tuple[int, Any]] = []

    async def put(self, item: Any, lane: int = 0) -> None:
        """Collect ``item`` for the edge of ``lane`` and finish its accounting in the copy."""
        self.items.append((self._codes[lane], item))
        await hosting.finish(self._flow, item)  # the transport counted it before the put

    def put_nowait(self, item: Any, lane: int = 0) -> bool:
        """Collect ``item`` without waiting; always True (the collector is unbounded)."""
        self.items.append((self._codes[lane], item))
        # The transport's send_nowait counts the item after this returns: uncount after that.
        asyncio.get_running_loop().call_soon(hosting.finish_nowait, self._flow, item)
        return True

    def depth(self, lane: int | None = None) -> int:
        """Return 0: collected items are not queued work of this copy."""
        return 0

    def __len__(self) -> int:
        return 0

    def take(self) -> list[tuple[int, Any]]:
        """Return the collected ``(edge code, item)`` pairs in order and forget them."""
        items, self.items = self.items, []
        return items


def mount_worker(flow: PenguiFlow, node: Node) -> Collector:
    """Prepare a worker's copy of the flow to host ``node`` alone.

    The node's outgoing edges and every Rookery edge go to one ``Collector``
    (lane = edge index, or ``ROOKERY_CODE`` for Rookery), and bus publishing is
    turned off. Other nodes' actors run but never receive anything.
    """
    codes: dict[int, int] = {}
    collector = Collector(flow, codes)
    for index, floe in enumerate(flow.edges):
        if floe.target is hosting.ROOKERY:
            code = ROOKERY_CODE
        elif floe.source is node and floe.target is not node:
            code = index
        else:
            continue
        codes[index] = code
        hosting.attach_edge(flow, index, collector, index)
    hosting.disable_bus(flow)
    return collector


def edge_name(flow: PenguiFlow, edge: int) -> str | None:
    """The name (``"a->b"``) of edge number ``edge``, or ``None`` if there is none."""
    edges = flow.edges
    return edges[edge].name if 0 <= edge < len(edges) else None
