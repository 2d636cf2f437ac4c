"""Fixtures for the black-box conformance suite: flows stopped in teardown, event capture."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from conformance_support import EventLog

from penguiflow import PenguiFlow, create


@pytest.fixture
def event_log() -> EventLog:
    return EventLog()


@pytest.fixture
async def make_flow() -> AsyncIterator[Callable[..., PenguiFlow]]:
    """Build flows with ``create``; every flow built here is stopped in teardown."""
    built: list[PenguiFlow] = []

    def _make(*adjacencies: Any, **kwargs: Any) -> PenguiFlow:
        flow = create(*adjacencies, **kwargs)
        built.append(flow)
        return flow

    yield _make
    for flow in built:
        async with asyncio.timeout(5):
            await flow.stop()
