"""A durable A2A server is restarted while a task waits for approval; the new one resumes it.

Run from the repository root::

    python -m examples.a2a_durable.flow

The flow is durable (``create(..., state_store=SQLiteStateStore(path),
durable=True)``), so the A2A tasks live in the same SQLite file. The first
server takes an order, whose node asks for approval (``ctx.interrupt``): the
task is ``input-required``. The server stops. A second server on the same
file (its startup runs ``flow.recover()``) returns the task with ``GetTask``;
the approval, a message naming the task, resumes it to ``completed``.
Everything stays on 127.0.0.1 (an ephemeral port), so the example runs offline.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from penguiflow import Message, Node, NodePolicy, create
from penguiflow.stores import SQLiteStateStore
from penguiflow_a2a import A2AAgentCard, A2AServerAdapter, create_a2a_app


async def review(message: Message, ctx: Any) -> dict[str, Any]:
    """Ask a person to approve the order, then record the decision."""
    order = message.payload["order"]
    decision = await ctx.interrupt({"approve": order})
    return {"order": order, "approved": decision == "yes"}


def build_app(store: SQLiteStateStore) -> web.Application:
    node = Node(review, name="review", policy=NodePolicy(validate="none"))
    adapter = A2AServerAdapter(
        create(node.to(), state_store=store, durable=True),
        agent_card=A2AAgentCard(name="Orders", description="Approves orders"),
        agent_url="http://127.0.0.1/",
        default_headers={"tenant": "orders"},
    )
    return create_a2a_app(adapter)


async def serve(store: SQLiteStateStore) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(build_app(store))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}/"


async def call(http: aiohttp.ClientSession, url: str, method: str, params: Any) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    async with http.post(url, json=body) as response:
        return (await response.json())["result"]


async def run_demo(path: Path) -> str:
    """Serve, take an order, restart, approve it; returns the task's final state."""
    order = {"messageId": "m1", "role": "ROLE_USER", "parts": [{"data": {"order": "krill-17"}}]}
    async with aiohttp.ClientSession() as http, asyncio.timeout(30):
        store = SQLiteStateStore(path)
        runner, url = await serve(store)
        task = (await call(http, url, "SendMessage", {"message": order}))["task"]
        print(f"server 1: task {task['id'][:8]}... {task['status']['state']}")
        await runner.cleanup()  # the server stops; the task stays in the file
        await store.close()

        store = SQLiteStateStore(path)
        runner, url = await serve(store)
        try:
            again = (await call(http, url, "GetTask", {"id": task["id"]}))["status"]["state"]
            print(f"server 2: GetTask -> {again}")
            answer = {
                "messageId": "m2",
                "role": "ROLE_USER",
                "parts": [{"text": "yes"}],
                "taskId": task["id"],
            }
            done = (await call(http, url, "SendMessage", {"message": answer}))["task"]
            result = done["artifacts"][-1]["parts"][0]["data"]
            state = str(done["status"]["state"])
            print(f"server 2: after the approval -> {state} {result}")
            return state
        finally:
            await runner.cleanup()
            await store.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(run_demo(Path(folder) / "orders.db"))


if __name__ == "__main__":
    main()
