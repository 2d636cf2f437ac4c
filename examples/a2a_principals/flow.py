"""Two callers of one A2A server: each sees, cancels and lists only its own tasks.

Run from the repository root::

    python -m examples.a2a_principals.flow

The server's ``auth`` hook maps a bearer token to a user id: that id is the
caller's principal, and every task belongs to the principal that created it.
Alice starts a task that waits for her; Bob, although admitted, gets "task not
found" for it on every method (the answer for an id that does not exist),
and his cancel does not stop it. Everything stays on 127.0.0.1 (an ephemeral
port), so the example runs offline.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import web

from penguiflow import Message, Node, NodePolicy, create
from penguiflow_a2a import A2AAgentCard, A2AServerAdapter, create_a2a_app

TOKENS = {"Bearer alice-token": "alice", "Bearer bob-token": "bob"}
RELEASE: dict[str, asyncio.Event] = {}


def auth(request: web.Request) -> str | None:
    """The caller's principal: the user owning the bearer token (``None``: 401)."""
    return TOKENS.get(request.headers.get("Authorization", ""))


async def draft(message: Message, ctx: Any) -> dict[str, Any]:
    """Wait until the note's author releases it, then return it."""
    note = message.payload["note"]
    await RELEASE.setdefault(note, asyncio.Event()).wait()
    return {"note": note, "status": "published"}


def build_app() -> web.Application:
    node = Node(draft, name="draft", policy=NodePolicy(validate="none"))
    adapter = A2AServerAdapter(
        create(node.to()),
        agent_card=A2AAgentCard(name="Notes", description="Publishes notes"),
        agent_url="http://127.0.0.1/",
        default_headers={"tenant": "notes"},
    )
    return create_a2a_app(adapter, auth=auth)


class Caller:
    """A JSON-RPC caller holding one user's token."""

    def __init__(self, http: aiohttp.ClientSession, url: str, token: str | None) -> None:
        self._http = http
        self._url = url
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}

    async def call(self, method: str, params: dict[str, Any]) -> tuple[int, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        async with self._http.post(self._url, json=body, headers=self._headers) as response:
            return response.status, await response.json()

    def stream(self, method: str, params: dict[str, Any]) -> Any:
        """The SSE response of a streaming method (an async context manager)."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
        return self._http.post(self._url, json=body, headers=self._headers)


def outcome(reply: Any) -> str:
    if "error" in reply:
        return f"error {reply['error']['code']} {reply['error']['message']}"
    result = reply["result"]
    if "tasks" in result:
        return f"{len(result['tasks'])} task(s)"
    return str(result["status"]["state"])


async def run_demo() -> bool:
    """Serve on an ephemeral port, call it as alice, bob and nobody; shut down."""
    runner = web.AppRunner(build_app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(30):
            alice = Caller(http, url, "alice-token")
            bob = Caller(http, url, "bob-token")
            nobody = Caller(http, url, None)
            message = {
                "messageId": "m1",
                "role": "ROLE_USER",
                "parts": [{"data": {"note": "krill season"}}],
            }
            params = {"message": message, "configuration": {"returnImmediately": True}}
            _, reply = await alice.call("SendMessage", params)
            task_id = reply["result"]["task"]["id"]
            print(f"alice started task {task_id[:8]}...")

            bob_replies = []
            for method in ("GetTask", "CancelTask", "SubscribeToTask"):
                _, reply = await bob.call(method, {"id": task_id})
                bob_replies.append(reply)
                print(f"bob   {method:<15} -> {outcome(reply)[:48]}...")
            _, bob_list = await bob.call("ListTasks", {})
            print(f"bob   {'ListTasks':<15} -> {outcome(bob_list)}")
            _, reply = await alice.call("GetTask", {"id": task_id})
            print(f"alice {'GetTask':<15} -> {outcome(reply)} (bob's cancel did not stop it)")
            _, alice_list = await alice.call("ListTasks", {})
            print(f"alice {'ListTasks':<15} -> {outcome(alice_list)}")
            status, _ = await nobody.call("GetTask", {"id": task_id})
            print(f"no token        GetTask         -> HTTP {status}")

            # Alice follows her task while she releases it; the stream ends with it.
            async with alice.stream("SubscribeToTask", {"id": task_id}) as events:
                RELEASE.setdefault("krill season", asyncio.Event()).set()
                await events.read()
            _, reply = await alice.call("GetTask", {"id": task_id})
            result = reply["result"]["artifacts"][-1]["parts"][0]["data"]
            print(f"alice {'GetTask':<15} -> TASK_STATE_COMPLETED {result}")
            private = all(r["error"]["code"] == -32001 for r in bob_replies)
            private = private and not bob_list["result"]["tasks"]
            print(f"bob saw none of alice's tasks: {private}")
            return private
    finally:
        await runner.cleanup()


def main() -> None:
    asyncio.run(run_demo())


if __name__ == "__main__":
    main()
