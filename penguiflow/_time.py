"""The clock seam: every deadline, timeout, backoff and latency reads time here.

``SystemClock`` is the real clock. ``penguiflow.testkit.FakeClock`` implements the
same protocol with manually advanced time, so a 30-second timeout test runs in
microseconds. Two time bases exist, as in the 2.2.5 spec:

* ``time()`` is wall-clock epoch seconds; ``Message.deadline_s`` is compared to it.
* ``monotonic()`` is for durations: latency, backoff, restart intensity windows.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

__all__ = ["SYSTEM_CLOCK", "Clock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """Where the runtime reads time and waits for it to pass."""

    def time(self) -> float:
        """Wall-clock epoch seconds (deadlines)."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds (durations, timer targets for ``timeout_at``)."""
        ...

    async def sleep(self, delay: float) -> None:
        """Wait ``delay`` seconds of this clock's time."""
        ...

    def timeout_at(self, when: float | None) -> asyncio.Timeout:
        """An ``asyncio.Timeout`` that expires at monotonic time ``when`` (None: never)."""
        ...


class SystemClock:
    """The real clock: ``time.time``, the event loop's clock, ``asyncio.sleep``."""

    __slots__ = ()

    def time(self) -> float:
        """Return the wall-clock time, ``time.time()``."""
        return time.time()

    def monotonic(self) -> float:
        """Return the running event loop's monotonic clock."""
        return asyncio.get_running_loop().time()

    async def sleep(self, delay: float) -> None:
        """Sleep ``delay`` seconds with ``asyncio.sleep``."""
        await asyncio.sleep(delay)

    def timeout_at(self, when: float | None) -> asyncio.Timeout:
        """Return ``asyncio.timeout_at(when)``; ``when`` is on the ``monotonic()`` scale."""
        return asyncio.timeout_at(when)


SYSTEM_CLOCK: Clock = SystemClock()
