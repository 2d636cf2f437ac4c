"""How a flow run maps onto the supervision tree.

Each ``run()`` gets its own one-for-one ``Supervisor`` whose children are the
node actors, in declaration order. Node actors use the flow's mailboxes
(externally owned: stopping them keeps queued items) and ``shutdown=0``, because
``stop()`` cancels in-flight invocations at once (runtime.md §4). Crashes outside
the node function (the policy runner turns node exceptions into ``FlowError``
values) restart the actor under the supervisor's intensity limit, with the
in-flight item redelivered first.

If the run's supervisor escalates (restart intensity exceeded) its node actors
are gone for good. ``watch_supervisor`` hears that (every run has one watcher
task, owned by the flow and awaited by ``stop()``), records the failure as
``flow.failure``, ends every queued traced item with a ``FlowError``
(``metadata["reason"] == "escalated"``) and wakes ``fetch`` callers waiting for
results that can no longer arrive.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.node_actor import NodeActor
from penguiflow._runtime.policy import failure
from penguiflow._runtime.tracing import trace_id_of
from penguiflow.actors import SELF_LANE
from penguiflow.errors import Escalated

if TYPE_CHECKING:
    from penguiflow._runtime.flow import PenguiFlow
    from penguiflow.actors import ActorRef
    from penguiflow.node import Node
    from penguiflow.supervision import Supervisor

__all__ = [
    "RESTART_INTENSITY",
    "RESTART_PERIOD_S",
    "start_node_actors",
    "stop_node_actors",
    "watch_supervisor",
]

RESTART_INTENSITY = 3
"""More node-actor restarts than this within ``RESTART_PERIOD_S`` escalate."""
RESTART_PERIOD_S = 5.0


def _child_ids(nodes: tuple[Node, ...]) -> list[str]:
    # Node names need not be unique in a flow; child ids must be.
    seen: dict[str | None, int] = {}
    ids = []
    for node in nodes:
        count = seen.get(node.name, 0)
        seen[node.name] = count + 1
        ids.append(node.name if count == 0 else f"{node.name}#{count}")
    return ids  # type: ignore[return-value]


def start_node_actors(
    flow: PenguiFlow, parent: Supervisor | None
) -> tuple[Supervisor, dict[Node, ActorRef]]:
    """Start a supervisor for this run and one node actor per node (synchronously)."""
    from penguiflow.supervision import ChildSpec, Supervisor

    supervisor = Supervisor(
        "one_for_one",
        intensity=RESTART_INTENSITY,
        period=RESTART_PERIOD_S,
        name="penguiflow.flow",
        clock=flow._clock,
    )
    if parent is not None:
        spec = ChildSpec(
            id=f"flow-{id(flow):x}-{id(supervisor):x}",
            start=lambda: supervisor,
            restart="temporary",
            shutdown=None,
        )
        parent.start_child_nowait(spec)
    refs: dict[Node, ActorRef] = {}
    nodes = flow._graph.nodes
    for node, child_id in zip(nodes, _child_ids(nodes), strict=True):
        spec = ChildSpec(
            id=child_id,
            start=functools.partial(NodeActor, flow, node),
            restart="permanent",
            shutdown=0,
            mailbox=flow._mailboxes[node],
            lazy=True,  # an idle node costs no task (see flow.run for node_cancelled)
        )
        ref = supervisor.start_child_nowait(spec)
        refs[node] = ref  # type: ignore[assignment]
    return supervisor, refs


async def stop_node_actors(supervisor: Supervisor) -> None:
    """Stop the run's supervisor; children stop in reverse order, cancelled at once."""
    await supervisor.stop()


async def watch_supervisor(flow: PenguiFlow, supervisor: Supervisor) -> None:
    """Wait for the run's supervisor to exit; on escalation fail the run (see above)."""
    try:
        await supervisor.wait()
    except Escalated as exc:
        await _escalated(flow, exc)


def _traced(item: Any) -> bool:
    return trace_id_of(item) is not None


async def _escalated(flow: PenguiFlow, exc: Escalated) -> None:
    flow._failure = exc
    # The node actors were cancelled without finishing their items (the kernel put
    # in-flight ones back in front), so nothing is busy any more.
    flow._busy = 0
    flow._busy_changed(0)
    io = flow._io
    events = flow._events
    for node, mailbox in flow._mailboxes.items():
        lanes = (SELF_LANE, *range(mailbox.lanes))
        # Trace-less items stay queued (a later run() resumes them): no trace waits.
        pending = mailbox.purge(_traced, lanes=lanes)
        ctx = flow._contexts[node]
        try:
            while pending:
                item = pending[0].item
                trace_id = item.trace_id
                error = failure(node, trace_id, exc, 0, 0.0)
                error.metadata["reason"] = "escalated"
                await events.emit(
                    "node_failed",
                    ctx,
                    trace_id,
                    extra={"exception": repr(exc), "flow_error": error.to_payload()},
                    exc=exc,
                )
                if flow._emit_errors_to_rookery:
                    await io.to_rookery(error, source=node)
                pending.pop(0)
                await io.finish(item)
        except BaseException:
            # stop() interrupted us (e.g. waiting on a full Rookery): put the items
            # not yet ended back in front of their lanes, in order; nothing is lost.
            for delivery in reversed(pending):
                mailbox.requeue_front(delivery.item, delivery.lane)
            raise
    # Every item that will ever reach Rookery is there now: from here on a fetch
    # that finds nothing raises, and those already waiting would wait forever.
    flow._fetch_failure = exc
    flow._rookery.fail_getters(exc)
