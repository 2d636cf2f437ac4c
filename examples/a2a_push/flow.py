"""A2A push notifications: a client registers a webhook and receives every task update.

Run from the repository root::

    python -m examples.a2a_push.flow

A small flow ("Penguin Census") is served with ``create_a2a_app`` on
127.0.0.1; a webhook receiver (aiohttp, also on 127.0.0.1) stands in for the
client's server. The client sends ``SendMessage`` with an inline
``taskPushNotificationConfig`` and does not wait: the agent POSTs each update
(the task, ``working``, the streamed artifacts, ``completed``) to the webhook
with the client's token. The receiver answers 503 once, so the first update is
retried with the same ``X-A2A-Notification-Id``, which the receiver uses to
drop the duplicate. Webhooks on 127.0.0.1 are refused unless allowed, hence
``push_allow_hosts=["127.0.0.1"]``. Everything stays on this machine.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from penguiflow import Message, Node, NodePolicy, create
from penguiflow_a2a import A2AAgentCard, A2AServerAdapter, A2ASkill, create_a2a_app
from penguiflow_a2a.push import PushSettings

TOKEN = "colony-secret"


async def census(message: Message, ctx: Any) -> dict[str, Any]:
    """Count penguins colony by colony, streaming a line per colony."""
    colonies = {"Cape Crozier": 300, "Coulman Island": 250, "Cape Washington": 200}
    for name, count in colonies.items():
        await ctx.emit_chunk(parent=message, text=f"{name}: {count}\n", done=False)
    return {"total": sum(colonies.values())}


def build_agent() -> A2AServerAdapter:
    """The census flow behind an A2A adapter."""
    node = Node(census, name="census", policy=NodePolicy(validate="none"))
    card = A2AAgentCard(
        name="Penguin Census",
        description="Counts emperor penguins per colony.",
        version="1.0.0",
        skills=[A2ASkill(name="census", description="Count the colonies")],
    )
    return A2AServerAdapter(
        create(node.to()),
        agent_card=card,
        agent_url="http://127.0.0.1/",
        default_headers={"tenant": "antarctica"},
    )


class Webhook:
    """The client's webhook: checks the token, drops duplicates, fails once."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self.duplicates = 0
        self.failures_left = 1
        self.finished = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        if request.headers.get("X-A2A-Notification-Token") != TOKEN:
            return web.json_response({"error": "bad token"}, status=401)
        note_id = request.headers["X-A2A-Notification-Id"]
        if self.failures_left:
            self.failures_left -= 1
            self.seen.add(note_id)  # as if it was stored, then the reply got lost
            self.updates.append(await request.json())
            return web.json_response({}, status=503)
        if note_id in self.seen:
            self.duplicates += 1
            return web.json_response({})
        self.seen.add(note_id)
        body = await request.json()
        self.updates.append(body)
        status = body.get("statusUpdate", {}).get("status", {}).get("state")
        if status == "TASK_STATE_COMPLETED":
            self.finished.set()
        return web.json_response({})


def describe(update: dict[str, Any]) -> str:
    """One line per update."""
    if "task" in update:
        return f"task {update['task']['status']['state']}"
    if "statusUpdate" in update:
        return f"status {update['statusUpdate']['status']['state']}"
    artifact = update["artifactUpdate"]["artifact"]
    part = artifact["parts"][0]
    return f"artifact {artifact['name']}: {part.get('text', part.get('data'))!r}"


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


async def run_demo() -> Webhook:
    """Serve the agent and the webhook, send one task, print what the webhook got."""
    hook = Webhook()
    hook_app = web.Application()
    hook_app.router.add_post("/hook", hook.handle)
    agent_app = create_a2a_app(
        build_agent(),
        push_allow_hosts=["127.0.0.1"],
        push_settings=PushSettings(backoff_s=0.05),
    )
    hook_runner, hook_url = await serve(hook_app)
    agent_runner, agent_url = await serve(agent_app)
    try:
        request = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "SendMessage",
            "params": {
                "message": {
                    "messageId": "m1",
                    "role": "ROLE_USER",
                    "parts": [{"text": "count the colonies"}],
                },
                "configuration": {
                    "returnImmediately": True,
                    "taskPushNotificationConfig": {"url": f"{hook_url}/hook", "token": TOKEN},
                },
            },
        }
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{agent_url}/", json=request) as response,
        ):
            reply = await response.json()
        task = reply["result"]["task"]
        print(f"sent; task {task['id'][:8]}... is {task['status']['state']}")
        async with asyncio.timeout(30):
            await hook.finished.wait()
        for index, update in enumerate(hook.updates, 1):
            print(f"webhook update {index}: {describe(update)}")
        print(f"duplicates dropped by the webhook: {hook.duplicates}")
        return hook
    finally:
        await agent_runner.cleanup()
        await hook_runner.cleanup()


def main() -> None:
    asyncio.run(run_demo())


if __name__ == "__main__":
    main()
