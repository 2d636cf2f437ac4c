"""Wiring a flow's graph: one mailbox per receiver, one context per owner, one transport.

Every node and Rookery gets one multi-lane mailbox (one lane per incoming edge;
a node's own self-edge, the controller loop, uses the unbounded self lane).
OpenSea, every node and Rookery get one ``Context`` for the life of the flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from penguiflow._runtime.context import Context
from penguiflow._runtime.durable import DurableTransport
from penguiflow._runtime.graph import OPEN_SEA, ROOKERY, Endpoint, Floe, FlowGraph
from penguiflow._runtime.transport import Transport
from penguiflow.actors import SELF_LANE, Mailbox
from penguiflow.node import Node

if TYPE_CHECKING:
    from penguiflow._runtime.context import Target
    from penguiflow._runtime.run_state import RunState
    from penguiflow.journal import Journal

__all__ = ["wire"]


def wire(
    run: RunState, graph: FlowGraph, *, runtime: Any, bus: Any, journal: Journal | None = None
) -> None:
    """Fill ``run``'s mailboxes, Rookery, contexts and transport for ``graph``.

    ``runtime`` is what ``Context.runtime`` returns (the ``PenguiFlow``); a
    ``journal`` makes the transport a ``DurableTransport`` (a durable flow).
    """
    maxsize = run.queue_maxsize
    owners: list[Any] = [OPEN_SEA, *graph.nodes, ROOKERY]
    incoming: dict[Any, dict[Target, Floe]] = {owner: {} for owner in owners}
    outgoing: dict[Any, dict[Target, Floe]] = {owner: {} for owner in owners}
    for floe in graph.floes:
        incoming[floe.target][floe.source] = floe
        outgoing[floe.source][floe.target] = floe
    receivers: list[Node | Endpoint] = [*graph.nodes, ROOKERY]
    for owner in receivers:
        data = [f for src, f in incoming[owner].items() if src is not owner]
        mailbox = Mailbox(maxsize, lanes=max(1, len(data)))
        for lane, floe in enumerate(data):
            floe.attach(mailbox, lane)
        own = incoming[owner].get(owner)
        if own is not None:
            own.attach(mailbox, SELF_LANE)  # controller loop: the unbounded self lane
        if isinstance(owner, Node):
            run.mailboxes[owner] = mailbox
        else:
            run.rookery = mailbox
    contexts = run.contexts
    for owner in owners:
        contexts[owner] = Context(owner, runtime)
    if journal is None:
        run.io = Transport(
            traces=run.traces,
            events=run.events,
            bus=bus,
            rookery=run.rookery,
            rookery_ctx=contexts[ROOKERY],
        )
    else:
        run.io = DurableTransport(
            journal=journal,
            traces=run.traces,
            events=run.events,
            bus=bus,
            rookery=run.rookery,
            rookery_ctx=contexts[ROOKERY],
        )
    for owner in owners:
        mailbox_of = run.rookery if owner is ROOKERY else run.mailboxes.get(owner)
        contexts[owner]._wire(incoming[owner], outgoing[owner], mailbox_of, run)
