"""What the inspector shows of a live flow, read through its public surface only."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from penguiflow import hosting
from penguiflow.inspector._interrupts import parked_rows

if TYPE_CHECKING:
    from penguiflow.inspector._traces import TraceLog

__all__ = ["flow_edges", "flow_names", "live_state", "supervision_tree"]


def flow_names(flow: Any) -> list[str]:
    """``OpenSea``, every node in graph order, ``Rookery``."""
    return ["OpenSea", *(str(node.name) for node in flow.nodes), "Rookery"]


def flow_edges(flow: Any) -> list[tuple[str, str]]:
    """``(source, target)`` names of every edge."""
    return [(str(floe.source.name), str(floe.target.name)) for floe in flow.edges]


def supervision_tree(supervisor: Any) -> dict[str, Any] | None:
    """The supervisor, its children (state, restarts) and nested supervisors."""
    if supervisor is None:
        return None
    children = []
    for info in supervisor.which_children():
        child: dict[str, Any] = {
            "id": str(info.id),
            "state": info.state,
            "restarts": info.restarts,
            "kind": info.kind,
        }
        if info.kind == "supervisor" and info.ref is not None:
            child["tree"] = supervision_tree(info.ref)
        children.append(child)
    return {
        "name": str(getattr(supervisor, "name", "supervisor")),
        "strategy": str(getattr(supervisor, "strategy", "")),
        "children": children,
    }


def live_state(flow: Any, traces: TraceLog) -> dict[str, Any]:
    """The whole page state as JSON-ready data (sent first on the stream, then on change)."""
    boxes = flow.mailboxes()
    lanes: dict[str, list[dict[str, Any]]] = {}
    for floe in flow.edges:
        target = str(floe.target.name)
        lanes.setdefault(target, []).append(
            {
                "source": str(floe.source.name),
                "depth": int(floe.queue.qsize()),
                "capacity": int(floe.maxsize),
            }
        )
    nodes = []
    queued: dict[str, str] = {}
    for name, box in boxes.items():
        nodes.append(
            {
                "name": name,
                "depth": box.depth,
                "capacity": box.capacity,
                "busy": box.busy,
                "lanes": lanes.get(name, []),
            }
        )
        for item in box.items:
            trace_id = getattr(item, "trace_id", None)
            if isinstance(trace_id, str):
                queued.setdefault(trace_id, name)
    parked = parked_rows(hosting.parked_interrupts(flow))
    waiting_traces = {row["trace_id"] for row in parked}
    recent = [record.summary() for record in traces.recent()]
    for entry in recent:
        if entry["status"] == "running" and entry["trace_id"] in waiting_traces:
            entry["status"] = "parked"
    known = {entry["trace_id"] for entry in recent}
    # Traces still waiting for their first node have no event yet.
    waiting = [
        {
            "trace_id": trace_id,
            "status": "queued",
            "started": None,
            "updated": None,
            "events": 0,
            "last_event": None,
            "last_node": node,
        }
        for trace_id, node in queued.items()
        if trace_id not in known
    ]
    return {
        "mode": "live",
        "running": flow.supervisor is not None,
        "nodes": nodes,
        "supervision": supervision_tree(flow.supervisor),
        "traces": waiting + recent,
        "interrupts": parked,
    }
