"""A manually advanced clock implementing ``penguiflow._time.Clock``.

Sleeps and timeouts registered through the clock fire only when a test calls
``advance``; nothing waits for real time. Timeouts are genuine
``asyncio.Timeout`` objects (created with no deadline and expired through
``reschedule`` when the fake time passes their target), so code under test sees
exactly the ``TimeoutError`` translation asyncio gives it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FakeClock"]


@dataclass(order=True, slots=True)
class _Timer:
    when: float
    seq: int
    target: Any = field(compare=False)  # asyncio.Future (sleep) or asyncio.Timeout


class FakeClock:
    """Fake time for deadlines, timeouts, backoff and latency.

    Args:
        wall: the initial wall-clock reading (epoch seconds) returned by ``time()``.
        monotonic: the initial ``monotonic()`` reading.

    ``advance(seconds)`` moves both readings forward and fires every sleep and
    timeout whose target has been reached, in target order. ``wait_for_timers(n)``
    lets a test wait until the code under test has armed ``n`` timers (for example
    a node sitting in its retry backoff) before advancing, so tests never sleep.

    .. versionadded:: 3.0
    """

    def __init__(self, *, wall: float = 1_700_000_000.0, monotonic: float = 0.0) -> None:
        self._wall0 = wall
        self._mono0 = monotonic
        self._elapsed = 0.0
        self._timers: list[_Timer] = []
        self._seq = itertools.count()
        self._changed: asyncio.Event | None = None

    # -- Clock protocol -------------------------------------------------------------
    def time(self) -> float:
        """Return the fake wall-clock time (``wall`` plus the time advanced)."""
        return self._wall0 + self._elapsed

    def monotonic(self) -> float:
        """Return the fake monotonic time (``monotonic`` plus the time advanced)."""
        return self._mono0 + self._elapsed

    async def sleep(self, delay: float) -> None:
        """Wait until the test advances the clock by ``delay`` (``<= 0``: yield once)."""
        if delay <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._push(self.monotonic() + delay, future)
        await future

    def timeout_at(self, when: float | None) -> asyncio.Timeout:
        """Return a timeout that expires when the fake monotonic time reaches ``when``.

        ``None`` never expires; a ``when`` already past expires on entry.
        """
        if when is None:
            return asyncio.timeout(None)
        if when <= self.monotonic():
            # Already due: a real Timeout at the loop's "now" expires on entry.
            return asyncio.timeout_at(asyncio.get_running_loop().time())
        timeout = asyncio.timeout(None)
        self._push(when, timeout)
        return timeout

    # -- test controls ----------------------------------------------------------------
    @property
    def pending_timers(self) -> int:
        """How many sleeps and timeouts are armed and not yet fired or abandoned."""
        self._prune()
        return len(self._timers)

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and fire every timer that came due."""
        if seconds < 0:
            raise ValueError("cannot move a clock backwards")
        self._elapsed += seconds
        now = self.monotonic()
        while self._timers and self._timers[0].when <= now:
            self._fire(heapq.heappop(self._timers).target)

    def advance_to_next(self) -> float:
        """Advance exactly to the earliest armed timer and fire it; return the step taken."""
        self._prune()
        if not self._timers:
            return 0.0
        step = max(0.0, self._timers[0].when - self.monotonic())
        self.advance(step)
        return step

    async def wait_for_timers(self, count: int = 1) -> None:
        """Wait until at least ``count`` timers are armed (wrap in ``asyncio.timeout``)."""
        while self.pending_timers < count:
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            await changed.wait()
            # Reset only our own Event: with several waiters, the first one woken may
            # already have armed a fresh Event that the others must not discard.
            if self._changed is changed:
                self._changed = None

    # -- internals -------------------------------------------------------------------
    def _push(self, when: float, target: Any) -> None:
        heapq.heappush(self._timers, _Timer(when, next(self._seq), target))
        if self._changed is not None:
            self._changed.set()

    def _prune(self) -> None:
        alive = [t for t in self._timers if _is_armed(t.target)]
        if len(alive) != len(self._timers):
            self._timers = alive
            heapq.heapify(self._timers)

    @staticmethod
    def _fire(target: Any) -> None:
        if isinstance(target, asyncio.Future):
            if not target.done():
                target.set_result(None)
            return
        if getattr(getattr(target, "_state", None), "value", None) == "active":
            target.reschedule(asyncio.get_running_loop().time())


def _is_armed(target: Any) -> bool:
    if isinstance(target, asyncio.Future):
        return not target.done()
    # An asyncio.Timeout that was exited or already expired can no longer fire.
    state = getattr(target, "_state", None)
    return getattr(state, "value", None) in {"created", "active"}
