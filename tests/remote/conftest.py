"""Fixtures for remote node tests: a scripted transport, an in-memory store, a flow builder."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from penguiflow.testkit._remote import InMemoryRemoteTransport
from penguiflow.testkit._stores import InMemoryStateStore


@pytest.fixture
def transport() -> InMemoryRemoteTransport:
    return InMemoryRemoteTransport()


@pytest.fixture
def store() -> InMemoryStateStore:
    return InMemoryStateStore()


@pytest.fixture
def remote_flow(flow_factory: Callable[..., Any], store: InMemoryStateStore) -> Callable[..., Any]:
    """Build and start a flow with the in-memory store; the plugin stops it at teardown."""

    def build(*adjacencies: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("state_store", store)
        flow = flow_factory(*adjacencies, **kwargs)
        flow.run()
        return flow

    return build
