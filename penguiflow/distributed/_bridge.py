"""The seam between a deployment and the flow runtime: the only module touching its internals.

A deployment changes *where* a node's mailbox lives, never the flow's code. It
needs four things from a ``PenguiFlow`` that 2.2.5 has no public name for:

* replace a node's mailbox (``flow._mailboxes[node]``) and re-attach its
  incoming edges (``Floe.attach``) -- the origin's side of a distributed node;
* mark an item finished for trace accounting (``flow._io.finish``) once its
  remote results were delivered locally;
* know whether final errors go to Rookery (``flow._emit_errors_to_rookery``);
* turn off bus publishing in a worker's copy of the flow (``flow._io._bus``),
  since the origin already published every edge put once.
* draw the flow's keyed rate-limit buckets from Redis
  (``flow._rate_limits.share``), so every process shares them.

Keeping them here means a future runtime hook replaces this module alone.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.graph import ROOKERY, Floe
from penguiflow.actors import MailboxEmpty
from penguiflow.distributed._wire import ROOKERY_CODE
from penguiflow.node import Node

if TYPE_CHECKING:
    from penguiflow.core import PenguiFlow
    from penguiflow.ratelimit import RateLimiter

__all__ = [
    "Collector",
    "edge_name",
    "emits_errors",
    "find_node",
    "finish",
    "inject",
    "mount_remote",
    "mount_worker",
    "queue_maxsize",
    "share_rate_limits",
    "take_rookery_buffer",
]


def find_node(flow: PenguiFlow, name: str) -> Node:
    """The node called ``name``.

    Raises:
        ValueError: no node, or several nodes, carry that name.
    """
    found = [node for node in flow.nodes if node.name == name]
    if len(found) != 1:
        what = "no node" if not found else f"{len(found)} nodes"
        raise ValueError(
            f"{what} named {name!r} in the flow; a distributed node needs a unique name"
        )
    return found[0]


def _edge_indexes(flow: PenguiFlow) -> dict[int, int]:
    return {id(floe): index for index, floe in enumerate(flow.edges)}


def mount_remote(flow: PenguiFlow, node: Node, mailbox: Any) -> dict[int, int]:
    """Make ``mailbox`` the node's mailbox; return ``lane -> edge index`` of its inputs.

    The node's own self-edge (a controller loop) is left alone: only the node
    sends on it, and the node runs in the workers.
    """
    indexes = _edge_indexes(flow)
    lanes: dict[int, int] = {}
    data = [f for f in flow.edges if f.target is node and f.source is not node]
    for lane, floe in enumerate(data):
        floe.attach(mailbox, lane)
        lanes[lane] = indexes[id(floe)]
    flow._mailboxes[node] = mailbox
    return lanes


def share_rate_limits(flow: PenguiFlow, limiter: RateLimiter) -> None:
    """Draw the flow's keyed rate-limit buckets from ``limiter`` (unless it has its own)."""
    flow._rate_limits.share(limiter)


def queue_maxsize(flow: PenguiFlow) -> int:
    """The flow's edge capacity (``queue_maxsize``)."""
    return int(flow._queue_maxsize)


async def finish(flow: PenguiFlow, item: Any) -> None:
    """Mark ``item`` finished for per-trace accounting (any outcome)."""
    await flow._io.finish(item)


def emits_errors(flow: PenguiFlow) -> bool:
    """Whether final node failures are delivered to Rookery."""
    return bool(flow._emit_errors_to_rookery)


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
        await self._flow._io.finish(item)  # Transport.send counted it before the put

    def put_nowait(self, item: Any, lane: int = 0) -> bool:
        """Collect ``item`` without waiting; always True (the collector is unbounded)."""
        self.items.append((self._codes[lane], item))
        # Transport.send_nowait counts the item after this returns: uncount after that.
        asyncio.get_running_loop().call_soon(self._flow._io.finish_nowait, item)
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
        if floe.target is ROOKERY:
            code = ROOKERY_CODE
        elif floe.source is node and floe.target is not node:
            code = index
        else:
            continue
        codes[index] = code
        floe.attach(collector, index)  # type: ignore[arg-type]
    flow._io._bus = None
    return collector


def edge_name(flow: PenguiFlow, edge: int) -> str | None:
    """The name (``"a->b"``) of edge number ``edge``, or ``None`` if there is none."""
    edges = flow.edges
    return edges[edge].name if 0 <= edge < len(edges) else None


def inject(flow: PenguiFlow, edge: int, item: Any) -> Any:
    """Put ``item`` on edge number ``edge`` of ``flow`` as its source would (awaitable)."""
    floe: Floe = flow.edges[edge]
    return flow._contexts[floe.source].emit(item, to=floe.target)


def take_rookery_buffer(flow: PenguiFlow) -> list[Any]:
    """Take what the runtime parked in Rookery's buffer (a flow without Rookery edges).

    Items are taken as queued, so a bare payload keeps the trace it carries
    across the trip back (``Rookery.fetch_nowait`` would hand out the payload alone).
    """
    items: list[Any] = []
    mailbox = flow._rookery
    io = flow._io
    while True:
        try:
            item = mailbox.get_nowait(None).item
        except MailboxEmpty:
            return items
        io.finish_nowait(item)  # what Rookery's fetch_nowait does for trace accounting
        items.append(item)
