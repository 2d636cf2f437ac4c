"""The hosting seam: low-level operations a deployment performs on a ``PenguiFlow``.

Published as ``penguiflow.hosting`` (see that module and docs/hosting.md). This
module is the only code outside the flow's own that touches its ``RunState``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.durable import record_state as _record_state
from penguiflow._runtime.events import EventListener
from penguiflow._runtime.graph import Floe
from penguiflow._runtime.observers import AttemptObserver, EmitObserver
from penguiflow.actors import SELF_LANE, MailboxEmpty, MailboxLike
from penguiflow.errors import DurabilityError

if TYPE_CHECKING:
    from penguiflow._runtime.flow import PenguiFlow
    from penguiflow.interrupts import ParkedInterrupt
    from penguiflow.node import Node
    from penguiflow.ratelimit import RateLimiter

__all__ = [
    "AttemptObserver",
    "EmitObserver",
    "EventListener",
    "attach_edge",
    "capacity",
    "deliver_to_rookery",
    "disable_bus",
    "emits_errors",
    "finish",
    "finish_nowait",
    "inject",
    "is_running",
    "node_named",
    "observe_attempts",
    "observe_emits",
    "observe_events",
    "outstanding",
    "parked_interrupts",
    "record_state",
    "refuse_interrupts",
    "replace_mailbox",
    "share_rate_limiter",
    "take_rookery_buffer",
    "unobserve_attempts",
    "unobserve_emits",
    "unobserve_events",
]


# -- reading --------------------------------------------------------------------------
def node_named(flow: PenguiFlow, name: str) -> Node:
    """The node of ``flow`` called ``name``.

    Raises:
        ValueError: no node, or several nodes, carry that name.
    """
    found = [node for node in flow.nodes if node.name == name]
    if len(found) != 1:
        what = "no node" if not found else f"{len(found)} nodes"
        raise ValueError(f"{what} named {name!r} in the flow; a hosted node needs a unique name")
    return found[0]


def capacity(flow: PenguiFlow) -> int:
    """The capacity of each of the flow's edges (``queue_maxsize``; ``<= 0``: unbounded)."""
    return flow._run.queue_maxsize


def is_running(flow: PenguiFlow) -> bool:
    """True between ``flow.run()`` and the end of ``flow.stop()``."""
    return flow._run.running


def emits_errors(flow: PenguiFlow) -> bool:
    """Whether final node failures are delivered to Rookery (``emit_errors_to_rookery``)."""
    return flow._run.emit_errors_to_rookery


def outstanding(flow: PenguiFlow) -> dict[str, int]:
    """Outstanding items per active trace (queued anywhere or in a node's hands); a copy."""
    return dict(flow._run.traces.counts)


def parked_interrupts(flow: PenguiFlow) -> list[ParkedInterrupt]:
    """The interrupts of ``flow`` waiting for ``flow.resume``, oldest first; a copy.

    Each ``penguiflow.interrupts.ParkedInterrupt`` carries its token: whoever
    reads this may resume the trace, so do not hand the tokens to people who
    may not. A resumed, cancelled, timed-out or (not durable) stopped
    interrupt leaves the list. On a durable flow the list also holds the
    interrupts kept by ``stop()`` and those ``recover()`` brought back (their
    ``since`` is ``None``), resumable once the flow runs.

    .. versionadded:: 3.0
    """
    parking = flow._run.parking
    return parking.parked() if parking is not None else []


# -- rewiring (before run()) ----------------------------------------------------------
def replace_mailbox(flow: PenguiFlow, node: Node, mailbox: MailboxLike) -> dict[int, int]:
    """Make ``mailbox`` the mailbox of ``node``; return ``lane -> edge index`` of its inputs.

    Every edge into ``node`` from another owner becomes a lane of ``mailbox``
    (lane ``i`` for the ``i``-th such edge of ``flow.edges``), and the node's
    actor runs on ``mailbox`` from the next ``run()`` on. The node's own
    self-edge (a controller loop) stays where it is: whoever runs the node
    sends on it.

    Raises:
        DurabilityError: the flow is durable.
        RuntimeError: the flow is running, or the current mailbox still holds
            items (they would be stranded: run the flow until it is idle, or
            replace the mailbox before anything is emitted).
        KeyError: ``node`` is not a node of ``flow``.
    """
    run = flow._run
    if run.io.durable:
        raise DurabilityError(
            "a durable flow's nodes keep their mailboxes (the journal tracks every edge); "
            "deployments such as RedisDeployment do not run durable flows"
        )
    if run.running:
        raise RuntimeError("replace a node's mailbox before flow.run() (or after stop())")
    current = run.mailboxes[node]
    queued = len(current) + current.depth(SELF_LANE)
    if queued:
        raise RuntimeError(
            f"node {node.name!r} has {queued} queued item(s); replacing its mailbox "
            "would strand them"
        )
    lanes: dict[int, int] = {}
    inputs = (
        (index, floe)
        for index, floe in enumerate(flow.edges)
        if floe.target is node and floe.source is not node
    )
    for lane, (index, floe) in enumerate(inputs):
        floe.attach(mailbox, lane)  # type: ignore[arg-type]
        lanes[lane] = index
    run.mailboxes[node] = mailbox
    run.contexts[node]._in_mailbox = mailbox
    return lanes


def attach_edge(flow: PenguiFlow, edge: int, mailbox: Any, lane: int) -> None:
    """Make edge number ``edge`` of ``flow`` a lane of ``mailbox`` (a sink of its own).

    What the flow puts on the edge goes to ``mailbox.put``/``put_nowait(item,
    lane)``; nothing of the flow reads it back. A worker hosting one node sends
    that node's outputs and every Rookery edge to a collector this way.

    Raises:
        RuntimeError: the flow is running.
        IndexError: there is no such edge.
    """
    if flow._run.running:
        raise RuntimeError("attach an edge before flow.run()")
    floe: Floe = flow.edges[edge]
    floe.attach(mailbox, lane)


def disable_bus(flow: PenguiFlow, edges: Iterable[int] | None = None) -> None:
    """Stop publishing to the flow's message bus, on ``edges`` (indexes) or everywhere.

    ``None`` turns the bus off altogether (Rookery's buffer included): a worker's
    copy of a flow does that, since the origin already published every edge put.
    """
    io = flow._run.io
    if edges is None:
        io.bus = None
        io.direct = not io.durable
        return
    all_edges = flow.edges
    io.muted = io.muted | frozenset(all_edges[index] for index in edges)


def share_rate_limiter(flow: PenguiFlow, limiter: RateLimiter) -> None:
    """Draw the flow's keyed ``NodePolicy.rate_limit`` buckets from ``limiter``.

    A deployment shares keyed buckets across processes this way (the Redis one
    installs ``RedisRateLimiter``); a flow created with its own ``rate_limiter=``
    keeps it. Buckets of unkeyed limits stay the node's own, in this process.
    """
    flow._run.rate_limits.share(limiter)


def refuse_interrupts(flow: PenguiFlow, reason: str) -> None:
    """Make ``ctx.interrupt`` in this flow's nodes raise ``InterruptUnavailable(reason)``.

    For a deployment whose copy of a flow cannot hand a parked trace back to
    whoever resumes it (a distributed worker: the caller resumes on the origin).

    .. versionadded:: 3.0
    """
    parking = flow._run.parking
    if parking is not None:
        parking.refused = reason


# -- moving items ---------------------------------------------------------------------
def inject(flow: PenguiFlow, edge: int, item: Any) -> Awaitable[None]:
    """Put ``item`` on edge number ``edge`` as its source would (awaitable).

    The item is counted for its trace, published to the bus and waits while the
    edge is full, exactly as a node's ``ctx.emit(item, to=target)``.

    Raises:
        IndexError: there is no such edge.
    """
    floe: Floe = flow.edges[edge]
    return flow._run.contexts[floe.source].emit(item, to=floe.target)


async def finish(flow: PenguiFlow, item: Any) -> None:
    """Mark ``item`` finished for its trace's accounting (any outcome).

    A deployment calls this once the item it took from a node mailbox has been
    handled elsewhere and its results were injected: the trace ends (and trace
    listeners hear it) once nothing of it is outstanding.
    """
    await flow._run.io.finish(item)


def finish_nowait(flow: PenguiFlow, item: Any) -> None:
    """``finish`` from synchronous code; a due event is emitted by a task the flow owns."""
    flow._run.io.finish_nowait(item)


async def deliver_to_rookery(flow: PenguiFlow, item: Any, *, source: Node | None = None) -> None:
    """Deliver ``item`` to Rookery as the runtime does for finals and errors.

    Uses ``source``'s own Rookery edge, else the first Rookery edge, else
    Rookery's buffer; counted if it has a trace, published to the bus.
    """
    await flow._run.io.to_rookery(item, source=source)


def take_rookery_buffer(flow: PenguiFlow) -> list[Any]:
    """Take what the runtime parked in Rookery (in a flow without Rookery edges).

    Items are taken as queued, so a bare payload keeps the trace it carries
    (``Rookery.fetch_nowait`` would hand out the payload alone); each is
    finished for trace accounting as a fetch would.

    Raises:
        DurabilityError: the flow is durable (``await flow.fetch()`` marks each
            item delivered in the journal).
    """
    run = flow._run
    if run.io.durable:
        raise DurabilityError(
            "take_rookery_buffer would bypass the journal's delivered marks; on a "
            "durable flow use 'await flow.fetch()'"
        )
    items: list[Any] = []
    while True:
        try:
            item = run.rookery.get_nowait(None).item
        except MailboxEmpty:
            return items
        run.io.finish_nowait(item)
        items.append(item)


def record_state(key: str, value: Any = None, *, delete: bool = False) -> bool:
    """Journal per-trace state with the item the calling node is handling.

    On a durable flow the update (``value``, or ``delete=True``) is committed
    with the node's step: together with the consumption of its input and its
    outputs, for the trace of that input. ``recover`` gives state keyed
    ``"join:<node name>"`` back to that node's function, through its
    ``restore_state(trace_id, value, flow)`` attribute (``join_k`` does this).
    Returns False, recording nothing, outside a durable node's step.

    .. versionadded:: 3.0
    """
    return _record_state(key, value, delete=delete)


# -- observing ------------------------------------------------------------------------
def observe_emits(flow: PenguiFlow, observer: EmitObserver) -> None:
    """Call ``observer`` around every ``flow.emit``/``emit_nowait`` from now on."""
    flow._emit_observers.append(observer)


def unobserve_emits(flow: PenguiFlow, observer: EmitObserver) -> None:
    """Stop calling ``observer`` (no-op if it was not observing)."""
    if observer in flow._emit_observers:
        flow._emit_observers.remove(observer)


def observe_attempts(flow: PenguiFlow, observer: AttemptObserver) -> None:
    """Call ``observer`` around every node attempt from now on (see ``AttemptObserver``).

    An attempt already under way is not seen; one under way when the observer
    is removed is still ended on it.
    """
    run = flow._run
    if observer not in run.attempt_observers:
        run.attempt_observers = (*run.attempt_observers, observer)


def unobserve_attempts(flow: PenguiFlow, observer: AttemptObserver) -> None:
    """Stop calling ``observer`` for new attempts (no-op if it was not observing)."""
    run = flow._run
    run.attempt_observers = tuple(o for o in run.attempt_observers if o is not observer)


def observe_events(flow: PenguiFlow, listener: EventListener) -> None:
    """Call ``listener(event)`` for every ``FlowEvent`` but the per-hop ones.

    Unlike a middleware, a listener does not make the runtime build the per-hop
    ``node_start``/``node_success`` events: it sees failures, retries,
    cancellations and the rest, inline and in order, before the middlewares.
    """
    listeners = flow._run.events.listeners
    if listener not in listeners:
        listeners.append(listener)


def unobserve_events(flow: PenguiFlow, listener: EventListener) -> None:
    """Stop calling ``listener`` (no-op if it was not listening)."""
    listeners = flow._run.events.listeners
    if listener in listeners:
        listeners.remove(listener)
