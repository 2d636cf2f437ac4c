"""The pytest plugin: fixtures stop every flow at teardown, even after a failure."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from penguiflow.testkit import FakeClock
from penguiflow.testkit.pytest_plugin import FlowTracker

CONFTEST = """
pytest_plugins = ["penguiflow.testkit.pytest_plugin"]
"""

FAILING_TESTS = textwrap.dedent(
    """
    import asyncio

    import pytest

    from penguiflow import Node, NodePolicy, create

    FLOWS = []


    async def forever(message, _ctx):
        await asyncio.Event().wait()


    def node():
        return Node(forever, name="forever", policy=NodePolicy(validate="none"))


    @pytest.mark.asyncio
    async def test_a_running_flow_then_fail(running_flow):
        FLOWS.append(running_flow(create(node().to())))
        await FLOWS[-1].emit("x")
        assert False, "deliberate"


    @pytest.mark.asyncio
    async def test_b_built_flow_then_fail(flow_factory):
        flow = flow_factory(node().to())
        flow.run()
        FLOWS.append(flow)
        raise RuntimeError("deliberate")


    def test_c_every_flow_was_stopped():
        assert len(FLOWS) == 2
        assert [flow.running for flow in FLOWS] == [False, False]
    """
)


def test_fixtures_stop_flows_even_when_tests_fail(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_flows=FAILING_TESTS)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "-o",
        "asyncio_mode=strict",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    result.assert_outcomes(passed=1, failed=2)


def test_fake_clock_fixture_is_fresh(fake_clock: FakeClock) -> None:
    assert isinstance(fake_clock, FakeClock)
    assert fake_clock.pending_timers == 0


async def test_running_flow_returns_the_started_flow(running_flow: Any, flow_factory: Any) -> None:
    async def echo(message: Any, _ctx: Any) -> Any:
        return message

    from penguiflow import Node, NodePolicy

    flow = flow_factory(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    assert running_flow(flow) is flow
    assert flow.running is True


class _FakeFlow:
    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.stopped = 0

    async def stop(self) -> None:
        self.stopped += 1
        if self.error is not None:
            raise self.error


async def test_tracker_stops_each_flow_once_most_recent_first() -> None:
    order: list[str] = []

    class Named(_FakeFlow):
        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

        async def stop(self) -> None:
            order.append(self.name)

    tracker = FlowTracker()
    first, second = Named("first"), Named("second")
    tracker.track(first)
    tracker.track(second)
    tracker.track(first)
    await tracker.stop_all()
    assert order == ["second", "first"]


async def test_tracker_stops_the_rest_then_raises_the_first_error() -> None:
    tracker = FlowTracker()
    ok = _FakeFlow()
    tracker.track(ok)
    tracker.track(_FakeFlow(ValueError("stop failed")))
    with pytest.raises(ValueError, match="stop failed"):
        await tracker.stop_all()
    assert ok.stopped == 1
    assert tracker.flows == []
