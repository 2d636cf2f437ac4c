"""How a flow run maps onto the supervision tree.

Each ``run()`` gets its own one-for-one ``Supervisor`` whose children are the
node actors, in declaration order. Node actors use the flow's mailboxes
(externally owned: stopping them keeps queued items) and ``shutdown=0``, because
``stop()`` cancels in-flight invocations at once (runtime.md §4). Crashes outside
the node function (the policy runner turns node exceptions into ``FlowError``
values) restart the actor under the supervisor's intensity limit, with the
in-flight item redelivered first.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from penguiflow._runtime.node_actor import NodeActor

if TYPE_CHECKING:
    from penguiflow._runtime.flow import PenguiFlow
    from penguiflow.actors import ActorRef
    from penguiflow.node import Node
    from penguiflow.supervision import Supervisor

__all__ = ["RESTART_INTENSITY", "RESTART_PERIOD_S", "start_node_actors", "stop_node_actors"]

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
        )
        ref = supervisor.start_child_nowait(spec)
        refs[node] = ref  # type: ignore[assignment]
    return supervisor, refs


async def stop_node_actors(supervisor: Supervisor) -> None:
    """Stop the run's supervisor; children stop in reverse order, cancelled at once."""
    await supervisor.stop()
