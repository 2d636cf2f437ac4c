"""Rate limits: ``RateLimit`` (a token bucket), the ``RateLimiter`` seam, its in-memory form.

A ``RateLimit`` is a token bucket: it holds at most ``burst`` tokens, starts
full, and refills at ``rate`` tokens every ``per_s`` seconds. A node whose
``NodePolicy.rate_limit`` is set takes one token before each attempt (docs/tools.md,
"Rate limits").

A ``RateLimiter`` keeps the buckets. It never sleeps: ``reserve`` takes the
tokens at once, letting a bucket go into debt, and answers how long the caller
must wait before using them (zero while the bucket has tokens). Reservations
are served in order, so waiters queue without waking each other, and a caller
that gives up hands its tokens back with ``refund``. Waiting is the caller's
job, on its own clock: under ``penguiflow.testkit.FakeClock`` a bucket refills
only when the test advances time.

``InMemoryRateLimiter`` shares buckets within one process (every flow given the
same instance); ``penguiflow.distributed.RedisRateLimiter`` shares them across
processes.

.. versionadded:: 3.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from penguiflow._time import SYSTEM_CLOCK

if TYPE_CHECKING:
    from penguiflow._time import Clock

__all__ = ["InMemoryRateLimiter", "RateLimit", "RateLimiter", "RateLimiterStatistics"]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: ``rate`` tokens per ``per_s`` seconds, at most ``burst`` at once.

    Args:
        rate: tokens added every ``per_s`` seconds (a positive, finite number).
        per_s: the period ``rate`` is counted over (positive, finite seconds).
        burst: the bucket's capacity, an ``int >= 1``; a new bucket starts full.
        key: ``None`` gives each node a bucket of its own; nodes naming the same
            key share one bucket (in a flow, among flows given the same
            ``rate_limiter``, and across processes with a ``RedisRateLimiter``).

    Raises:
        TypeError: a number is not a number, ``burst`` is not an ``int``, or
            ``key`` is not a string.
        ValueError: ``rate`` or ``per_s`` is not positive and finite, ``burst``
            is below 1, or ``key`` is empty.

    .. versionadded:: 3.0
    """

    rate: float = 10.0
    per_s: float = 1.0
    burst: int = 20
    key: str | None = None

    def __post_init__(self) -> None:
        for name in ("rate", "per_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"RateLimit.{name} must be a number, got {value!r}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"RateLimit.{name} must be positive and finite, got {value!r}")
        burst = self.burst
        if isinstance(burst, bool) or not isinstance(burst, int):
            raise TypeError(f"RateLimit.burst must be an int, got {burst!r}")
        if burst < 1:
            raise ValueError(f"RateLimit.burst must be at least 1, got {burst!r}")
        key = self.key
        if key is not None:
            if not isinstance(key, str):
                raise TypeError(f"RateLimit.key must be a string or None, got {key!r}")
            if not key:
                raise ValueError("RateLimit.key must not be empty (None: the node's own bucket)")
            try:
                key.encode("utf-8")  # a shared bucket's name travels to Redis as UTF-8
            except UnicodeEncodeError:
                raise ValueError(f"RateLimit.key must be valid Unicode text, got {key!r}") from None

    @property
    def tokens_per_s(self) -> float:
        """The refill rate in tokens per second (``rate / per_s``)."""
        return self.rate / self.per_s


@runtime_checkable
class RateLimiter(Protocol):
    """Where token buckets live: in this process, or shared through a server.

    Both methods may wait for I/O (a shared limiter asks its server) but never
    for tokens: waiting out the returned delay is the caller's job.

    .. versionadded:: 3.0
    """

    async def reserve(self, key: str, limit: RateLimit, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from bucket ``key`` now; return the seconds to wait.

        The bucket may go into debt: the answer is zero while it had the tokens,
        else how long until the reservations before this one and this one are
        paid for. ``limit`` gives the bucket's rate and capacity (a new bucket
        starts full with ``limit.burst`` tokens).
        """
        ...

    async def refund(self, key: str, limit: RateLimit, cost: float = 1.0) -> None:
        """Give back ``cost`` tokens reserved and not used (capped at ``burst``)."""
        ...


@dataclass(frozen=True, slots=True)
class RateLimiterStatistics:
    """Counters of an ``InMemoryRateLimiter``.

    ``reservations``: calls of ``reserve``; ``delayed``: those answered with a
    wait; ``delay_s``: the waits summed; ``refunds``: calls of ``refund``;
    ``buckets``: buckets in memory.

    .. versionadded:: 3.0
    """

    reservations: int
    delayed: int
    delay_s: float
    refunds: int
    buckets: int


class _Bucket:
    __slots__ = ("level", "stamp")

    def __init__(self, level: float, stamp: float) -> None:
        self.level = level  # tokens; below zero while reservations are in debt
        self.stamp = stamp  # the monotonic time ``level`` was computed at


class InMemoryRateLimiter:
    """Token buckets in this process, read on ``clock`` (a ``RateLimiter``).

    Args:
        clock: the time source (``penguiflow.testkit.FakeClock`` in tests); the
            system clock by default. A flow's own limiter uses the flow's clock.

    A flow made without ``rate_limiter=`` has one of its own, so keyed buckets
    are shared among its nodes only; give several flows the same instance to
    share them process-wide.

    .. versionadded:: 3.0
    """

    __slots__ = ("_buckets", "_clock", "_delay_s", "_delayed", "_refunds", "_reservations")

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._buckets: dict[str, _Bucket] = {}
        self._reservations = 0
        self._delayed = 0
        self._delay_s = 0.0
        self._refunds = 0

    @property
    def clock(self) -> Clock:
        """The clock buckets refill on."""
        return self._clock

    async def reserve(self, key: str, limit: RateLimit, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from bucket ``key``; return the seconds to wait."""
        return self.reserve_nowait(key, limit, cost)

    def reserve_nowait(self, key: str, limit: RateLimit, cost: float = 1.0) -> float:
        """``reserve`` without a coroutine: this limiter never waits for I/O."""
        bucket = self._refill(key, limit)
        bucket.level -= cost
        self._reservations += 1
        if bucket.level >= 0:
            return 0.0
        delay = -bucket.level / limit.tokens_per_s
        self._delayed += 1
        self._delay_s += delay
        return delay

    async def refund(self, key: str, limit: RateLimit, cost: float = 1.0) -> None:
        """Give back ``cost`` unused tokens to bucket ``key`` (see ``RateLimiter``)."""
        self.refund_nowait(key, limit, cost)

    def refund_nowait(self, key: str, limit: RateLimit, cost: float = 1.0) -> None:
        """``refund`` without a coroutine."""
        bucket = self._refill(key, limit)
        bucket.level = min(float(limit.burst), bucket.level + cost)
        self._refunds += 1

    def tokens(self, key: str, limit: RateLimit) -> float:
        """Tokens bucket ``key`` holds now (negative: reservations in debt)."""
        return self._refill(key, limit).level

    def statistics(self) -> RateLimiterStatistics:
        """A snapshot of this limiter's counters."""
        return RateLimiterStatistics(
            reservations=self._reservations,
            delayed=self._delayed,
            delay_s=self._delay_s,
            refunds=self._refunds,
            buckets=len(self._buckets),
        )

    def _refill(self, key: str, limit: RateLimit) -> _Bucket:
        now = self._clock.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(limit.burst), now)
            return bucket
        elapsed = now - bucket.stamp
        if elapsed > 0:
            bucket.level = min(float(limit.burst), bucket.level + elapsed * limit.tokens_per_s)
            bucket.stamp = now
        return bucket
