"""Fixtures for supervision tests: a fake clock and supervisors stopped in teardown."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from penguiflow.supervision import Supervisor
from penguiflow.testkit import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def events() -> list[tuple[str, str]]:
    return []


@pytest_asyncio.fixture
async def make_supervisor(clock: FakeClock) -> AsyncIterator[Callable[..., Supervisor]]:
    """Build supervisors on the fake clock; each is stopped at teardown (cancelled at once)."""
    made: list[Supervisor] = []

    def make(*args: Any, **kwargs: Any) -> Supervisor:
        kwargs.setdefault("clock", clock)
        supervisor = Supervisor(*args, **kwargs)
        made.append(supervisor)
        return supervisor

    try:
        yield make
    finally:
        for supervisor in reversed(made):
            await supervisor.stop(timeout=0)
