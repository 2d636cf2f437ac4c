"""Helpers of the A2A tests: a small routing flow, gates, an SSE reader, JSON-RPC calls.

The flow: ``route`` sends each message to ``work`` (the default lane) or to
``slow`` (payload ``{"lane": "slow", "gate": name}``), so two requests can
finish in either order. ``work`` interprets ``payload["op"]``:

* ``echo`` (default): returns the bare dict ``{"echo": value}``;
* ``message``: returns a ``Message`` with ``meta={"handled": True}``;
* ``chunks``: emits ``texts`` as stream chunks, then returns ``{"final": ...}``;
* ``fail``: raises ``ValueError("boom")``;
* ``hang``: waits on the gate ``payload["gate"]`` (a test opens it or cancels);
* ``ask``: ``ctx.interrupt(payload["question"])``, then returns ``{"answer": ...}``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp.test_utils import TestClient

from penguiflow import FinalAnswer, Message, Node, NodePolicy, create
from penguiflow_a2a import A2AAgentCard, A2ASkill

AGENT_URL = "http://agent.test/"


class Gates:
    """Named events the test opens to let a node go on; ``entered`` marks arrival."""

    def __init__(self) -> None:
        self._gates: dict[str, asyncio.Event] = {}
        self._entered: dict[str, asyncio.Event] = {}
        self._cancelled: dict[str, asyncio.Event] = {}

    def gate(self, name: str) -> asyncio.Event:
        return self._gates.setdefault(name, asyncio.Event())

    def entered(self, name: str) -> asyncio.Event:
        return self._entered.setdefault(name, asyncio.Event())

    def cancelled(self, name: str) -> asyncio.Event:
        return self._cancelled.setdefault(name, asyncio.Event())

    def open(self, name: str) -> None:
        self.gate(name).set()

    async def wait_entered(self, name: str) -> None:
        async with asyncio.timeout(5):
            await self.entered(name).wait()


class SSEReader:
    """Reads the ``data:`` JSON of server-sent events one at a time."""

    def __init__(self, response: Any) -> None:
        self.response = response

    @classmethod
    async def open(
        cls, client: Any, method: str, params: Any, *, path: str = "/", request_id: Any = 7
    ) -> SSEReader:
        body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
        async with asyncio.timeout(5):
            response = await client.post(path, json=body)
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        return cls(response)

    async def next(self) -> Any:
        """The next event's data, or ``None`` at the end of the stream."""
        data: list[str] = []
        async with asyncio.timeout(5):
            async for raw in self.response.content:
                line = raw.decode().rstrip("\n")
                if not line:
                    if data:
                        return json.loads("\n".join(data))
                    continue
                if line.startswith("data: "):
                    data.append(line.removeprefix("data: "))
        return json.loads("\n".join(data)) if data else None

    async def rest(self) -> list[Any]:
        """Every remaining event until the server closes the stream."""
        events = []
        while (event := await self.next()) is not None:
            events.append(event)
        return events


def build_flow(gates: Gates, **kwargs: Any) -> Any:
    """The routing flow described in the module docstring."""

    async def work(message: Message, ctx: Any) -> Any:
        payload = message.payload
        op = payload.get("op", "echo") if isinstance(payload, dict) else "echo"
        if op == "message":
            return message.model_copy(
                update={"payload": {"wrapped": True}, "meta": {"handled": True}}
            )
        if op == "chunks":
            texts = payload["texts"]
            for index, text in enumerate(texts):
                await ctx.emit_chunk(
                    parent=message, text=text, done=index == len(texts) - 1, meta={"i": index}
                )
            return {"final": "".join(texts)}
        if op == "fail":
            raise ValueError("boom")
        if op == "answer":
            return FinalAnswer(text="done", citations=["c1"])
        if op == "ask":
            return {"answer": await ctx.interrupt(payload.get("question", "?"))}
        if op == "hang":
            name = payload["gate"]
            gates.entered(name).set()
            try:
                await gates.gate(name).wait()
            except asyncio.CancelledError:
                gates.cancelled(name).set()
                raise
            return {"released": name}
        value = payload.get("value") if isinstance(payload, dict) else payload
        return {"echo": value}

    async def slow(message: Message, ctx: Any) -> Any:
        name = message.payload["gate"]
        gates.entered(name).set()
        await gates.gate(name).wait()
        return {"lane": "slow", "gate": name}

    policy = NodePolicy(validate="none")
    work_node = Node(work, name="work", policy=policy)
    slow_node = Node(slow, name="slow", policy=policy)

    async def route(message: Message, ctx: Any) -> None:
        payload = message.payload
        lane = payload.get("lane") if isinstance(payload, dict) else None
        await ctx.emit(message, to=slow_node if lane == "slow" else work_node)

    route_node = Node(route, name="route", policy=policy)
    return create(route_node.to(work_node, slow_node), work_node.to(), slow_node.to(), **kwargs)


def make_card() -> A2AAgentCard:
    return A2AAgentCard(
        name="Penguin Agent",
        description="Answers penguin questions",
        version="2.0.0",
        tags=["penguins"],
        skills=[A2ASkill(name="echo", description="Echo the payload")],
    )


# -- JSON-RPC helpers ------------------------------------------------------------------------

TENANT_META = {"headers": {"tenant": "acme"}}


def message(*parts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "messageId": "m1",
        "role": "ROLE_USER",
        "parts": list(parts) or [{"text": "hi"}],
        "metadata": TENANT_META,
        **extra,
    }


def message03(*parts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "kind": "message",
        "messageId": "m1",
        "role": "user",
        "parts": list(parts) or [{"kind": "text", "text": "hi"}],
        "metadata": TENANT_META,
        **extra,
    }


async def rpc(
    client: TestClient[Any, Any],
    method: str,
    params: Any,
    *,
    request_id: Any = 1,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    async with asyncio.timeout(5):
        response = await client.post("/", json=body, headers=headers)
        assert response.status == 200
        return await response.json()  # type: ignore[no-any-return]


async def rpc_stream(
    client: TestClient[Any, Any], method: str, params: Any, *, request_id: Any = 7
) -> list[dict[str, Any]]:
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    async with asyncio.timeout(5):
        response = await client.post("/", json=body)
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        text = (await response.read()).decode()
    events = []
    for frame in text.split("\n\n"):
        if frame:
            assert frame.startswith("data: ")
            events.append(json.loads(frame.removeprefix("data: ")))
    return events


async def send_running(client: TestClient[Any, Any], gates: Gates, gate: str) -> str:
    """Start a task that waits on ``gate``; return its id once the node is inside."""
    params = {
        "message": message({"data": {"op": "hang", "gate": gate}}),
        "configuration": {"returnImmediately": True},
    }
    reply = await rpc(client, "SendMessage", params)
    await gates.wait_entered(gate)
    return str(reply["result"]["task"]["id"])
