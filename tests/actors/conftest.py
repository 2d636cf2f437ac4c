"""Fixtures for kernel tests: a running ActorSystem on a fake clock, stopped in teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from penguiflow.actors import DeadLetter
from penguiflow.supervision import ActorSystem
from penguiflow.testkit import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def dead() -> list[DeadLetter]:
    return []


@pytest_asyncio.fixture
async def system(clock: FakeClock, dead: list[DeadLetter]) -> AsyncIterator[ActorSystem]:
    system = ActorSystem("test", clock=clock, on_dead_letter=dead.append, intensity=100)
    try:
        yield system
    finally:
        # Cancel at once rather than waiting for fake time that never passes.
        await system.root.stop(timeout=0)
