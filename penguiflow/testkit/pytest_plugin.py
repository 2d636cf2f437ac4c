"""pytest fixtures for PenguiFlow tests: a fake clock and flows that are always stopped.

Enable it with ``pytest_plugins = ["penguiflow.testkit.pytest_plugin"]`` in your
top-level ``conftest.py`` (or through the ``pytest11`` entry point). The async
fixtures use pytest-asyncio when it is installed, so they work in both its
``auto`` and ``strict`` modes.

Fixtures:

* ``fake_clock`` -- a fresh :class:`~penguiflow.testkit.FakeClock`.
* ``event_recorder`` -- a fresh :class:`~penguiflow.testkit.EventRecorder`.
* ``flow_factory`` -- ``flow_factory(*adjacencies, **kwargs)`` builds a flow
  with ``penguiflow.create``; every flow built is stopped at teardown.
* ``running_flow`` -- ``running_flow(flow, registry=None)`` starts ``flow``
  and returns it; it is stopped at teardown, even when the test failed.

.. versionadded:: 3.0
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from penguiflow.testkit._clock import FakeClock
from penguiflow.testkit._events import EventRecorder

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - depends on the user's environment
    _async_fixture: Callable[..., Any] = pytest.fixture
else:
    _async_fixture = pytest_asyncio.fixture

__all__ = ["event_recorder", "fake_clock", "flow_factory", "running_flow"]

STOP_TIMEOUT_S = 5.0
"""How long teardown waits for one flow to stop before failing the test."""


class FlowTracker:
    """Remembers flows a test used and stops them all, most recent first."""

    __slots__ = ("flows",)

    def __init__(self) -> None:
        self.flows: list[Any] = []

    def track(self, flow: Any) -> Any:
        """Remember ``flow`` (once) and return it."""
        if not any(tracked is flow for tracked in self.flows):
            self.flows.append(flow)
        return flow

    async def stop_all(self) -> None:
        """Stop every remembered flow, most recent first; re-raise the first failure.

        Each stop is bounded by ``STOP_TIMEOUT_S``; a failing stop does not keep the
        others from being stopped.
        """
        errors: list[BaseException] = []
        # Reverse order: a flow started later may feed on one started earlier.
        for flow in reversed(self.flows):
            try:
                async with asyncio.timeout(STOP_TIMEOUT_S):
                    await flow.stop()
            except Exception as exc:  # keep stopping the others, report afterwards
                errors.append(exc)
        self.flows.clear()
        if errors:
            raise errors[0]


@pytest.fixture
def fake_clock() -> FakeClock:
    """A fresh fake clock; pass it as ``clock=`` to flows, actors and supervisors."""
    return FakeClock()


@pytest.fixture
def event_recorder() -> EventRecorder:
    """A fresh event recorder to register as a flow middleware."""
    return EventRecorder()


@_async_fixture
async def flow_factory() -> AsyncIterator[Callable[..., Any]]:
    """Build flows with ``penguiflow.create``; all of them are stopped at teardown."""
    from penguiflow.core import create

    tracker = FlowTracker()

    def build(*adjacencies: Any, **kwargs: Any) -> Any:
        return tracker.track(create(*adjacencies, **kwargs))

    try:
        yield build
    finally:
        await tracker.stop_all()


@_async_fixture
async def running_flow() -> AsyncIterator[Callable[..., Any]]:
    """Start a flow for the test (``running_flow(flow, registry=None)``); stop it at teardown."""
    tracker = FlowTracker()

    def start(flow: Any, *, registry: Any = None) -> Any:
        # Track before run(): if run() fails half-way, teardown still stops it.
        tracker.track(flow)
        flow.run(registry=registry)
        return flow

    try:
        yield start
    finally:
        await tracker.stop_all()
