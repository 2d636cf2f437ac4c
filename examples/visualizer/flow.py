"""Export Mermaid and Graphviz DOT diagrams of a flow and of its playbook subflow.

Run: ``python -m examples.visualizer.flow [OUTPUT_DIR]``

The main flow has a controller loop (``allow_cycle=True`` with a self-edge), a
router and two workers. The controller calls a retrieval playbook with
``ctx.call_playbook``; a playbook is a separate ``PenguiFlow`` built on demand,
so it is rendered as its own diagram. Files are written to OUTPUT_DIR (a new
temporary directory by default) and the Mermaid text is printed. Nothing runs:
the renderers only read the graph.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from penguiflow import (
    ModelRegistry,
    Node,
    NodePolicy,
    PenguiFlow,
    create,
    flow_to_dot,
    flow_to_mermaid,
    predicate_router,
)

NO_VALIDATION = NodePolicy(validate="none")


async def passthrough(message: Any, _ctx: Any) -> Any:
    return message


def build_retrieval_playbook() -> tuple[PenguiFlow, ModelRegistry | None]:
    """The subflow the controller calls: retrieve -> rerank -> compress."""
    retrieve = Node(passthrough, name="retrieve", policy=NO_VALIDATION)
    rerank = Node(passthrough, name="rerank", policy=NO_VALIDATION)
    compress = Node(passthrough, name="compress", policy=NO_VALIDATION)
    return create(retrieve.to(rerank), rerank.to(compress), compress.to()), None


async def controller(message: Any, ctx: Any) -> Any:
    return await ctx.call_playbook(build_retrieval_playbook, message)


def build_flow() -> PenguiFlow:
    ctl = Node(controller, name="controller", allow_cycle=True, policy=NO_VALIDATION)
    router = predicate_router("router", lambda msg: ["worker-1"])
    worker_1 = Node(passthrough, name="worker-1", policy=NO_VALIDATION)
    worker_2 = Node(passthrough, name="worker-2", policy=NO_VALIDATION)
    return create(
        ctl.to(ctl, router),
        router.to(worker_1, worker_2),
        worker_1.to(),
        worker_2.to(),
    )


def export(name: str, flow: PenguiFlow, out_dir: Path) -> str:
    mermaid = flow_to_mermaid(flow, direction="LR")
    (out_dir / f"{name}.md").write_text(f"```mermaid\n{mermaid}\n```\n", encoding="utf-8")
    (out_dir / f"{name}.dot").write_text(flow_to_dot(flow, rankdir="LR") + "\n", encoding="utf-8")
    return mermaid


def main(argv: list[str] | None = None) -> Path:
    args = sys.argv[1:] if argv is None else argv
    out_dir = Path(args[0]) if args else Path(tempfile.mkdtemp(prefix="penguiflow-viz-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    print(export("flow", build_flow(), out_dir))
    print()
    subflow, _registry = build_retrieval_playbook()
    print(export("playbook_retrieval", subflow, out_dir))
    print()
    for path in sorted(out_dir.iterdir()):
        print(f"wrote {path}")
    return out_dir


if __name__ == "__main__":
    main()
