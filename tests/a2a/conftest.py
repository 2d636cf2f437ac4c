"""Fixtures for the A2A tests: adapters over the routing flow, in-process servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from a2a_support import AGENT_URL, Gates, build_flow, make_card
from aiohttp.test_utils import TestClient, TestServer

from penguiflow_a2a import A2AAgentCard, A2AServerAdapter, create_a2a_app


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


@pytest.fixture
async def receiver() -> AsyncIterator[Any]:
    """A started webhook ``push_support.Receiver`` on 127.0.0.1."""
    from push_support import Receiver

    hook = Receiver()
    async with asyncio.timeout(5):
        await hook.start()
    yield hook
    async with asyncio.timeout(5):
        await hook.close()


@pytest.fixture
async def push_client(
    make_adapter: Callable[..., A2AServerAdapter], make_client: Callable[..., Any]
) -> TestClient[Any, Any]:
    """Like ``client``, with webhooks on 127.0.0.1 allowed."""
    return await make_client(
        make_adapter(emit_errors_to_rookery=True), push_allow_hosts=["127.0.0.1"]
    )
