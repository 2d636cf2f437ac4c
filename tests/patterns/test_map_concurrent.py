"""``map_concurrent``: bounded concurrency, input-order results, error propagation."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from penguiflow.patterns import map_concurrent


async def test_empty_input_returns_empty_list() -> None:
    async def worker(item: int) -> int:
        raise AssertionError("worker must not run")

    assert await map_concurrent([], worker) == []


async def test_results_follow_input_order_not_completion_order() -> None:
    gates = [asyncio.Event() for _ in range(3)]
    done = [asyncio.Event() for _ in range(3)]
    finished: list[int] = []

    async def worker(index: int) -> str:
        await gates[index].wait()
        finished.append(index)
        done[index].set()
        return f"r{index}"

    task = asyncio.create_task(map_concurrent(range(3), worker, max_concurrency=3))
    try:
        async with asyncio.timeout(5):
            for index in reversed(range(3)):
                gates[index].set()
                await done[index].wait()
            results = await task
    finally:
        task.cancel()
    assert finished == [2, 1, 0]
    assert results == ["r0", "r1", "r2"]


async def test_items_may_be_any_iterable() -> None:
    async def worker(item: int) -> int:
        return item * 2

    assert await map_concurrent((n for n in range(4)), worker) == [0, 2, 4, 6]


@pytest.mark.parametrize(
    ("limit", "expected"),
    [
        pytest.param(2, 2, id="limit-2"),
        pytest.param(8, 5, id="default-more-than-items"),
        pytest.param(0, 1, id="zero-means-one"),
        pytest.param(-3, 1, id="negative-means-one"),
    ],
)
async def test_at_most_max_concurrency_workers_run_at_once(limit: int, expected: int) -> None:
    gate = asyncio.Event()
    started: list[int] = []
    running = 0
    peak = 0

    async def worker(item: int) -> int:
        nonlocal running, peak
        started.append(item)
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return item

    task = asyncio.create_task(map_concurrent(range(5), worker, max_concurrency=limit))
    try:
        # The scheduling contract under test: runners start within a few loop turns.
        for _ in range(5):
            await asyncio.sleep(0)
        assert started == list(range(expected))
        gate.set()
        async with asyncio.timeout(5):
            assert await task == list(range(5))
    finally:
        task.cancel()
    assert peak == expected


async def test_worker_exception_propagates_to_the_caller() -> None:
    boom = ValueError("boom")

    async def worker(item: int) -> int:
        if item == 1:
            raise boom
        return item

    with pytest.raises(ValueError) as info:
        await map_concurrent([0, 1, 2], worker, max_concurrency=1)
    assert info.value is boom


async def test_failure_cancels_the_workers_still_running() -> None:
    blocked = asyncio.Event()
    cancelled = asyncio.Event()

    async def worker(item: str) -> str:
        if item == "slow":
            blocked.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise
        await blocked.wait()
        raise RuntimeError("fail")

    async with asyncio.timeout(5):
        with pytest.raises(RuntimeError, match="fail"):
            await map_concurrent(["slow", "fast"], worker)
    assert cancelled.is_set()


async def test_cancelling_the_caller_cancels_every_worker() -> None:
    started = asyncio.Event()
    cancelled: list[int] = []

    async def worker(item: int) -> int:
        try:
            if item == 1:
                started.set()
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(item)
            raise
        return item

    task = asyncio.create_task(map_concurrent([0, 1], worker))
    async with asyncio.timeout(5):
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sorted(cancelled) == [0, 1]


@settings(max_examples=50, deadline=None)
@given(
    items=st.lists(st.integers(), max_size=30),
    limit=st.integers(min_value=-2, max_value=10),
    yields=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=30),
)
def test_property_results_in_order_and_limit_respected(
    items: list[int], limit: int, yields: list[int]
) -> None:
    """Whatever the interleaving, results keep input order and the limit holds."""
    peak = 0
    running = 0

    async def worker(item: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        # Vary completion order deterministically from the drawn schedule.
        for _ in range(yields[item % len(yields)]):
            await asyncio.sleep(0)
        running -= 1
        return item * 3

    async def main() -> list[int]:
        async with asyncio.timeout(5):
            return await map_concurrent(items, worker, max_concurrency=limit)

    assert asyncio.run(main()) == [item * 3 for item in items]
    assert peak <= max(1, limit)
