"""Fixtures for the observability tests: an SDK tracer provider with an in-memory exporter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from penguiflow.core import PenguiFlow


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    tp = TracerProvider()
    tp.add_span_processor(SimpleSpanProcessor(exporter))
    return tp


@pytest.fixture
async def flows() -> AsyncIterator[list[PenguiFlow]]:
    """Flows appended here are stopped at teardown."""
    created: list[PenguiFlow] = []
    yield created
    for flow in created:
        await flow.stop()


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    """``await client_for(app)``: an aiohttp test client on 127.0.0.1, closed at teardown."""
    from aiohttp.test_utils import TestClient, TestServer

    clients: list[TestClient[Any, Any]] = []

    async def make(app: Any) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
