"""Fixtures for the A2A tests: a small routing flow, adapters, in-process servers.

The flow: ``route`` sends each message to ``work`` (the default lane) or to
``slow`` (payload ``{"lane": "slow", "gate": name}``), so two requests can
finish in either order. ``work`` interprets ``payload["op"]``:

* ``echo`` (default): returns the bare dict ``{"echo": value}``;
* ``message``: returns a ``Message`` with ``meta={"handled": True}``;
* ``chunks``: emits ``texts`` as stream chunks, then returns ``{"final": ...}``;
* ``fail``: raises ``ValueError("boom")``;
* ``hang``: waits on the gate ``payload["gate"]`` (a test opens it or cancels).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from penguiflow import FinalAnswer, Message, Node, NodePolicy, create
from penguiflow_a2a import A2AAgentCard, A2ASkill, A2AServerAdapter, create_a2a_app

AGENT_URL = "http://agent.test/"


class Gates:
    """Named events the test opens to let a node go on; ``entered`` marks arrival."""

    def __init__(self) -> None:
        self._gates: dict[str, asyncio.Event] = {}
        self._entered: dict[str, asyncio.Event] = {}

    def gate(self, name: str) -> asyncio.Event:
        return self._gates.setdefault(name, asyncio.Event())

    def entered(self, name: str) -> asyncio.Event:
        return self._entered.setdefault(name, asyncio.Event())

    def open(self, name: str) -> None:
        self.gate(name).set()

    async def wait_entered(self, name: str) -> None:
        async with asyncio.timeout(5):
            await self.entered(name).wait()


def build_flow(gates: Gates, **kwargs: Any) -> Any:
    """The routing flow described in the module docstring."""

    async def work(message: Message, ctx: Any) -> Any:
        payload = message.payload
        op = payload.get("op", "echo") if isinstance(payload, dict) else "echo"
        if op == "message":
            return message.model_copy(update={"payload": {"wrapped": True}, "meta": {"handled": True}})
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
        if op == "hang":
            gates.entered(payload["gate"]).set()
            await gates.gate(payload["gate"]).wait()
            return {"released": payload["gate"]}
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


@pytest.fixture
def gates() -> Gates:
    return Gates()


@pytest.fixture
def card() -> A2AAgentCard:
    return make_card()


@pytest.fixture
async def make_adapter(gates: Gates) -> AsyncIterator[Callable[..., A2AServerAdapter]]:
    """``make_adapter(**flow_kwargs, default_headers=...)``; all are stopped at teardown."""
    adapters: list[A2AServerAdapter] = []

    def factory(*, default_headers: Any = None, **flow_kwargs: Any) -> A2AServerAdapter:
        adapter = A2AServerAdapter(
            build_flow(gates, **flow_kwargs),
            agent_card=make_card(),
            agent_url=AGENT_URL,
            default_headers=default_headers,
        )
        adapters.append(adapter)
        return adapter

    yield factory
    for gate in list(gates._gates.values()):
        gate.set()
    for adapter in adapters:
        async with asyncio.timeout(5):
            await adapter.stop()


@pytest.fixture
async def adapter(make_adapter: Callable[..., A2AServerAdapter]) -> A2AServerAdapter:
    """A started adapter over the routing flow (errors go to Rookery)."""
    started = make_adapter(emit_errors_to_rookery=True)
    await started.start()
    return started


@pytest.fixture
async def make_client(
    gates: Gates,
) -> AsyncIterator[Callable[..., Any]]:
    """``await make_client(adapter, **app_kwargs)`` -> a started aiohttp ``TestClient``."""
    clients: list[TestClient[Any, Any]] = []

    async def factory(adapter: A2AServerAdapter, **app_kwargs: Any) -> TestClient[Any, Any]:
        app = create_a2a_app(adapter, **app_kwargs)
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
        clients.append(client)
        async with asyncio.timeout(5):
            await client.start_server()
        return client

    yield factory
    for gate in list(gates._gates.values()):
        gate.set()
    for client in clients:
        async with asyncio.timeout(10):
            await client.close()


@pytest.fixture
async def client(
    make_adapter: Callable[..., A2AServerAdapter], make_client: Callable[..., Any]
) -> TestClient[Any, Any]:
    """A client of an app over a fresh (not yet started) adapter; the app starts it."""
    return await make_client(make_adapter(emit_errors_to_rookery=True))
