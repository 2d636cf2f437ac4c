"""``FakeClock``: manually advanced time for sleeps, timeouts and deadlines."""

from __future__ import annotations

import asyncio

import pytest

from penguiflow._time import Clock
from penguiflow.testkit import FakeClock


def test_implements_the_clock_protocol() -> None:
    assert isinstance(FakeClock(), Clock)


def test_readings_start_where_configured_and_move_together() -> None:
    clock = FakeClock(wall=100.0, monotonic=5.0)
    clock.advance(2.5)
    assert (clock.time(), clock.monotonic()) == (102.5, 7.5)


def test_cannot_move_backwards() -> None:
    with pytest.raises(ValueError, match="backwards"):
        FakeClock().advance(-1)


async def test_sleep_returns_only_after_enough_time_passed() -> None:
    clock = FakeClock()
    sleeper = asyncio.create_task(clock.sleep(10))
    async with asyncio.timeout(5):
        await clock.wait_for_timers(1)
    clock.advance(9.9)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(0.1)
    async with asyncio.timeout(5):
        await sleeper


async def test_zero_sleep_just_yields() -> None:
    clock = FakeClock()
    async with asyncio.timeout(5):
        await clock.sleep(0)
    assert clock.pending_timers == 0


async def test_timers_fire_in_target_order() -> None:
    clock = FakeClock()
    woke: list[int] = []

    async def sleeper(delay: int) -> None:
        await clock.sleep(delay)
        woke.append(delay)

    tasks = [asyncio.create_task(sleeper(d)) for d in (3, 1, 2)]
    async with asyncio.timeout(5):
        await clock.wait_for_timers(3)
        clock.advance(3)
        await asyncio.gather(*tasks)
    assert woke == [1, 2, 3]


async def test_timeout_at_expires_when_time_passes_it() -> None:
    clock = FakeClock()

    async def guarded() -> None:
        async with clock.timeout_at(clock.monotonic() + 30):
            await asyncio.Event().wait()

    task = asyncio.create_task(guarded())
    async with asyncio.timeout(5):
        await clock.wait_for_timers(1)
        clock.advance(30)
        with pytest.raises(TimeoutError):
            await task


async def test_timeout_at_in_the_past_expires_at_once() -> None:
    clock = FakeClock()
    clock.advance(10)
    with pytest.raises(TimeoutError):
        async with clock.timeout_at(5):
            await asyncio.Event().wait()


async def test_timeout_at_none_never_expires() -> None:
    clock = FakeClock()
    async with clock.timeout_at(None):
        clock.advance(1e9)
        await asyncio.sleep(0)
    assert clock.pending_timers == 0


async def test_finished_timeouts_are_not_pending() -> None:
    clock = FakeClock()
    async with clock.timeout_at(clock.monotonic() + 5):
        assert clock.pending_timers == 1
    assert clock.pending_timers == 0
    clock.advance(10)  # firing an exited timeout is harmless


async def test_advance_to_next_steps_exactly_to_the_earliest_timer() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(4))
    async with asyncio.timeout(5):
        await clock.wait_for_timers(1)
        assert clock.advance_to_next() == 4
        await task
    assert clock.monotonic() == 4
    assert clock.advance_to_next() == 0.0


async def test_cancelled_sleep_is_dropped() -> None:
    clock = FakeClock()
    task = asyncio.create_task(clock.sleep(4))
    async with asyncio.timeout(5):
        await clock.wait_for_timers(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.pending_timers == 0
    clock.advance(5)


async def test_several_tasks_can_wait_for_timers() -> None:
    """A waiter woken too early re-arms; a waiter that is satisfied must not disarm it."""
    clock = FakeClock()
    needs_two = asyncio.create_task(clock.wait_for_timers(2))  # woken first, re-arms
    needs_one = asyncio.create_task(clock.wait_for_timers(1))
    await asyncio.sleep(0)  # both waiters are parked
    first = asyncio.create_task(clock.sleep(1))
    async with asyncio.timeout(5):
        await needs_one
        assert not needs_two.done()
        second = asyncio.create_task(clock.sleep(2))
        await needs_two
        clock.advance(2)
        await asyncio.gather(first, second)
    assert clock.pending_timers == 0
