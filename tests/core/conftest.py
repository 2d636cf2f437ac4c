"""Fixtures for the core runtime tests: flows that always stop, an event recorder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from core_support import Recorder

from penguiflow.core import PenguiFlow, create
from penguiflow.testkit import FakeClock


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def flows() -> AsyncIterator[list[PenguiFlow]]:
    created: list[PenguiFlow] = []
    yield created
    async with asyncio.timeout(5):
        for flow in created:
            await flow.stop()


@pytest.fixture
def make_flow(flows: list[PenguiFlow], recorder: Recorder) -> Callable[..., PenguiFlow]:
    """Build a flow with the recorder attached; it is stopped at teardown."""

    def factory(*adjacencies: Any, **kwargs: Any) -> PenguiFlow:
        kwargs.setdefault("middlewares", [recorder])
        flow = create(*adjacencies, **kwargs)
        flows.append(flow)
        return flow

    return factory
