"""``simulate_error`` (spec/testkit-viz.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from penguiflow import FlowErrorCode, Headers, Message, Node, NodePolicy, create
from penguiflow.testkit import run_one, simulate_error


@pytest.fixture
def message() -> Message:
    return Message(payload="p", headers=Headers(tenant="acme"))


@pytest.mark.parametrize("fail_times", [0, -1], ids=["zero", "negative"])
def test_fail_times_must_be_positive(fail_times: int) -> None:
    with pytest.raises(ValueError, match=r"^fail_times must be >= 1$"):
        simulate_error("n", "C", fail_times=fail_times)


def test_result_and_result_factory_are_exclusive() -> None:
    with pytest.raises(ValueError, match=r"^Specify only one of result or result_factory$"):
        simulate_error("n", "C", result="x", result_factory=lambda m: m)


def test_returns_a_coroutine_function_named_after_the_node() -> None:
    func = simulate_error("fetcher", "C")
    assert asyncio.iscoroutinefunction(func)
    assert Node(func).name == "fetcher"


@pytest.mark.parametrize(
    ("code", "shown"),
    [
        pytest.param(FlowErrorCode.NODE_TIMEOUT, "NODE_TIMEOUT", id="flow-error-code"),
        pytest.param("CUSTOM", "CUSTOM", id="plain-string"),
    ],
)
async def test_failure_text_names_code_node_and_attempt(code: Any, shown: str) -> None:
    func = simulate_error("fetch", code, fail_times=2)
    for attempt in (1, 2):
        with pytest.raises(RuntimeError) as info:
            await func("m", None)
        assert str(info.value) == f"[{shown}] simulated failure in fetch (attempt {attempt})"


async def test_raises_the_requested_exception_type() -> None:
    func = simulate_error("n", "C", exception_type=TimeoutError)
    with pytest.raises(TimeoutError):
        await func("m", None)


async def test_returns_the_message_unchanged_after_the_failures() -> None:
    func = simulate_error("n", "C")
    with pytest.raises(RuntimeError):
        await func("m", None)
    sentinel = object()
    assert await func(sentinel, None) is sentinel


async def test_returns_the_given_result_after_the_failures() -> None:
    func = simulate_error("n", "C", result="ok")
    with pytest.raises(RuntimeError):
        await func("m", None)
    assert await func("m", None) == "ok"


async def test_calls_a_sync_result_factory_with_the_message() -> None:
    func = simulate_error("n", "C", result_factory=lambda m: f"built from {m}")
    with pytest.raises(RuntimeError):
        await func("m", None)
    assert await func("m", None) == "built from m"


async def test_awaits_an_async_result_factory() -> None:
    async def build(message: Any) -> str:
        return f"async {message}"

    func = simulate_error("n", "C", result_factory=build)
    with pytest.raises(RuntimeError):
        await func("m", None)
    assert await func("m", None) == "async m"


async def test_counters_after_retries_in_a_flow(message: Message) -> None:
    func = simulate_error("flaky", FlowErrorCode.NODE_EXCEPTION, fail_times=2)
    node = Node(
        func, name="flaky", policy=NodePolicy(validate="none", max_retries=2, backoff_base=0.0)
    )
    result = await run_one(create(node.to()), message)
    assert result is message
    assert func.simulation.failures == 2
    assert func.simulation.attempts == 3


async def test_counters_are_read_only() -> None:
    func = simulate_error("n", "C")
    with pytest.raises(AttributeError):
        func.simulation.attempts = 5  # type: ignore[misc]
    assert repr(func.simulation) == "Simulation(attempts=0, failures=0)"
