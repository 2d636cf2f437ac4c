"""Persist a run to SQLite, then read its history back with ``penguiflow-admin``.

Run: ``python -m examples.persistence_sqlite.flow [--output-dir demo-output]``

``draft -> review -> Rookery``: ``review`` is a ``RemoteNode`` (its "remote agent" is
an in-memory transport here), so the stored history holds the node events, the
``remote_*`` telemetry and the remote binding of the trace.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
from pathlib import Path
from typing import Any

from penguiflow import Headers, Message, Node, NodePolicy, RemoteNode, create
from penguiflow.admin import main as admin
from penguiflow.remote import RemoteCallRequest, RemoteCallResult
from penguiflow.stores import SQLiteStateStore
from penguiflow.testkit import InMemoryRemoteTransport

NONE = NodePolicy(validate="none")
_tasks = itertools.count(1)


async def draft(message: Message, _ctx: Any) -> Message:
    return message.model_copy(update={"payload": f"draft: {message.payload}"})


async def reviewer_agent(request: RemoteCallRequest) -> RemoteCallResult:
    # Stands in for an agent reached over A2A: it answers and names its task.
    return RemoteCallResult(
        result=f"approved ({request.message.payload})",
        context_id="review-ctx",
        task_id=f"review-task-{next(_tasks)}",
    )


async def run(db: Path) -> str:
    store = SQLiteStateStore(db)
    review = RemoteNode(
        transport=InMemoryRemoteTransport(reviewer_agent),
        skill="review",
        agent_url="http://reviewer.local",
        name="review",
        policy=NONE,
    )
    flow = create(Node(draft, name="draft", policy=NONE).to(review), review.to(), state_store=store)
    message = Message(payload="a poem about penguins", headers=Headers(tenant="demo"))
    flow.run()
    try:
        await flow.emit(message)
        async with asyncio.timeout(10):
            print("result:", await flow.fetch())
        history = await flow.load_history(message.trace_id)
        bindings = await store.load_remote_bindings(message.trace_id)
    finally:
        await flow.stop()
        await store.close()
    print(f"stored {len(history)} events of trace {message.trace_id} in {db}")
    print(f"remote binding: {bindings[0]}")
    return message.trace_id


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="demo-output", type=Path)
    out_dir: Path = parser.parse_args(argv).output_dir
    db = out_dir / "persistence.db"
    db.unlink(missing_ok=True)  # one run per file, so the history shown is this run's
    trace_id = asyncio.run(run(db))
    command = ["history", trace_id, "--state-store", str(db), "--table"]
    print("\n$ penguiflow-admin " + " ".join(command))
    admin(command)  # the console script's entry point, run in-process


if __name__ == "__main__":
    main()
