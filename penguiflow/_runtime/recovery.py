"""Putting a durable flow back where its journal left it, and the checks made at ``create``.

``recover`` reads the journal once (``Journal.load``) and restores, in this
order: per-trace state (join buckets go back to their ``join_k`` node), every
edge entry on its edge (FIFO per edge, beyond
the edge's capacity if need be: recovery never waits), and every Rookery item
not delivered yet in Rookery's buffer. Each restored item is counted for its
trace, as a put would be. Entries a node had in hand are handled again from
their first line (node functions run at least once), with the retry count the
journal held. An entry parked in ``ctx.interrupt`` and not resumed stays off its
edge (``parking.Held``) until ``flow.resume`` puts it back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.parking import Held
from penguiflow._runtime.tracing import Carried, Journaled, trace_id_of
from penguiflow.errors import DurabilityError
from penguiflow.journal import journal_of

if TYPE_CHECKING:
    from penguiflow._runtime.graph import Floe, FlowGraph
    from penguiflow._runtime.run_state import RunState
    from penguiflow.journal import Journal
    from penguiflow.node import Node

__all__ = [
    "JOIN_STATE_PREFIX",
    "Release",
    "claim_journal",
    "durable_journal",
    "no_release",
    "recover",
]

#: Per-trace state key of a ``join_k`` bucket: ``"join:<node name>"``.
JOIN_STATE_PREFIX = "join:"


def durable_journal(state_store: Any, graph: FlowGraph) -> Journal:
    """The journal a durable flow on ``state_store`` writes to; checks the graph.

    Raises:
        DurabilityError: no state store, a store without a journal, or two nodes
            with one name (journal entries name their edge ``"<source>-><target>"``).
    """
    if state_store is None:
        raise DurabilityError(
            "durable=True needs a state_store with a journal, e.g. "
            "state_store=penguiflow.stores.SQLiteStateStore('runs.db')"
        )
    try:
        journal = journal_of(state_store)
    except TypeError as exc:
        raise DurabilityError(str(exc)) from exc
    seen: set[str] = set()
    for node in graph.nodes:
        name = str(node.name)
        if name in seen or name in ("OpenSea", "Rookery"):
            raise DurabilityError(
                f"a durable flow needs unique node names (its journal names edges "
                f"'<source>-><target>'): {name!r} is used twice or is reserved"
            )
        seen.add(name)
    return journal


def _edge_item(item: Any, trace: str | None) -> tuple[Any, str | None]:
    """``item`` as an edge carries it, and its own trace (what is counted)."""
    own = trace_id_of(item)
    if own is None and trace is not None:
        return Carried(item, trace), None
    return item, own


async def recover(run: RunState, graph: FlowGraph, journal: Journal, runtime: Any) -> list[str]:
    """Restore everything unfinished in ``journal`` into ``run``; the traces put back.

    Raises:
        DurabilityError: the journal names an edge this flow does not have (the
            graph changed since it was written); nothing was restored.
        JournalError: the journal could not be read.
    """
    snapshot = await journal.load()
    floes: dict[str, Floe] = {floe.name: floe for floe in graph.floes}
    unknown = sorted({e.edge for e in snapshot.entries if e.edge not in floes})
    if unknown:
        raise DurabilityError(
            f"the journal holds entries on edges this flow does not have: {unknown}; "
            "recover with the graph that wrote it"
        )
    nodes: dict[str, Node] = {str(node.name): node for node in graph.nodes}
    for state in snapshot.state:
        if state.key.startswith(JOIN_STATE_PREFIX):
            node = nodes.get(state.key[len(JOIN_STATE_PREFIX) :])
            restore = getattr(getattr(node, "func", None), "restore_state", None)
            if restore is not None:
                restore(state.trace_id, state.decode(), runtime)
    traces = run.traces
    back: dict[str, None] = {}
    per_edge: dict[str, list[Journaled]] = {}
    parking = run.parking
    # Entries parked in ctx.interrupt and not resumed wait off their edge (parking).
    parked = parking.recovered(snapshot.interrupts) if parking is not None else {}
    for entry in snapshot.entries:
        item, own = _edge_item(entry.decode(), entry.trace_id)
        journaled = Journaled(item, entry.id, own, entry.trace_id, entry.attempt)
        token = parked.get(entry.id)
        if token is not None and parking is not None:
            floe = floes[entry.edge]
            assert floe.mailbox is not None  # runtime edges are always attached
            held = Held(entry.trace_id, journaled, floe.mailbox, floe.lane, counted=True)
            parking.hold(token, held)
            if own is not None:
                traces.add(own)
            if entry.trace_id is not None:
                back.setdefault(entry.trace_id)
            continue
        per_edge.setdefault(entry.edge, []).append(journaled)
        if entry.trace_id is not None:
            back.setdefault(entry.trace_id)
    for name, items in per_edge.items():
        floe = floes[name]
        _restore_edge(floe, items)
        for journaled in items:
            if journaled.trace_id is not None:
                traces.add(journaled.trace_id)
    for record in snapshot.rookery:
        item, own = _edge_item(record.decode(), record.trace_id)
        run.rookery.put_self(Journaled(item, record.id, own, record.trace_id))
        if own is not None:
            traces.add(own)
        if record.trace_id is not None:
            back.setdefault(record.trace_id)
    return list(back)


def _restore_edge(floe: Floe, items: Sequence[Journaled]) -> None:
    """Put ``items`` on ``floe``'s lane in order, whatever its capacity."""
    mailbox = floe.mailbox
    assert mailbox is not None  # runtime edges are always attached
    for item in items:
        mailbox.put_beyond(item, floe.lane)  # the self lane too (a controller loop)


def no_release() -> None:
    """The release of a journal that was not claimed: nothing to do."""
    return None


#: What ``claim_journal`` returns: lets go of the journal; a journal whose letting
#: go takes I/O (a Redis lease) returns an awaitable that completes it.
Release = Callable[[], Awaitable[None] | None]


def claim_journal(journal: Journal | None) -> Release:
    """Claim ``journal`` for a starting run if it can be owned; return the release.

    The stores' journals (and the testkit's) have ``claim``/``unclaim``; a
    journal without them is not guarded. ``unclaim`` may return an awaitable
    (``RedisJournal``: freeing its lease is a server call), which ``stop()`` awaits.

    Raises:
        JournalInUse: another running durable flow owns the journal.
    """
    claim = getattr(journal, "claim", None)
    unclaim: Release | None = getattr(journal, "unclaim", None)
    if claim is None or unclaim is None:
        return no_release
    claim()
    return unclaim
