"""The contract suite for ``RateLimiter`` implementations (in memory, Redis, yours).

Each check takes a limiter and a bucket key no other check uses, and raises
``AssertionError`` on a violation. The checks use a slow limit (one token per
1000 s), so the little real time a server-side clock sees pass between two
calls changes no answer beyond the tolerance; under a ``FakeClock`` none passes.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from penguiflow.ratelimit import RateLimit, RateLimiter

__all__ = ["RATE_LIMITER_CHECKS", "check_rate_limiter"]

LimiterFactory = Callable[[], RateLimiter | Awaitable[RateLimiter]]
LimiterCheck = Callable[[RateLimiter, str], Awaitable[None]]

_SLOW = RateLimit(rate=1.0, per_s=1000.0, burst=3)
_TOLERANCE_S = 1.0


def _near(actual: float, expected: float) -> bool:
    return abs(actual - expected) <= _TOLERANCE_S


async def satisfies_protocol(limiter: RateLimiter, key: str) -> None:
    """The limiter is a ``RateLimiter`` (structurally)."""
    assert isinstance(limiter, RateLimiter), f"{limiter!r} lacks reserve() or refund()"


async def new_bucket_starts_full(limiter: RateLimiter, key: str) -> None:
    """A bucket never used before lets ``burst`` reservations through at once."""
    delays = [await limiter.reserve(key, _SLOW) for _ in range(_SLOW.burst)]
    assert delays == [0.0] * _SLOW.burst, f"a full bucket made callers wait: {delays}"


async def reservations_queue_in_order(limiter: RateLimiter, key: str) -> None:
    """Past the burst, each reservation waits one refill period more than the last."""
    await limiter.reserve(key, _SLOW, _SLOW.burst)
    first = await limiter.reserve(key, _SLOW)
    second = await limiter.reserve(key, _SLOW)
    assert _near(first, 1000.0), f"first wait {first}, expected about 1000 s"
    assert _near(second, 2000.0), f"second wait {second}, expected about 2000 s"


async def cost_counts_tokens(limiter: RateLimiter, key: str) -> None:
    """A reservation of ``cost`` tokens takes that many; zero never waits while in credit."""
    assert await limiter.reserve(key, _SLOW, 0) == 0.0
    assert await limiter.reserve(key, _SLOW, 2) == 0.0
    delay = await limiter.reserve(key, _SLOW, 3)
    assert _near(delay, 2000.0), f"3 tokens with 1 left: waited {delay}, expected about 2000 s"


async def refund_gives_tokens_back(limiter: RateLimiter, key: str) -> None:
    """Refunded tokens serve the next reservation."""
    await limiter.reserve(key, _SLOW, _SLOW.burst + 1)
    await limiter.refund(key, _SLOW, 2)
    delay = await limiter.reserve(key, _SLOW)
    assert delay == 0.0, f"a refunded token was not reused: waited {delay}"


async def refund_is_capped_at_the_burst(limiter: RateLimiter, key: str) -> None:
    """Refunds never raise a bucket above ``burst`` tokens."""
    await limiter.refund(key, _SLOW, 100)
    for _ in range(_SLOW.burst):
        await limiter.reserve(key, _SLOW)
    delay = await limiter.reserve(key, _SLOW)
    assert _near(delay, 1000.0), f"the bucket held more than its burst: waited {delay}"


async def keys_are_separate(limiter: RateLimiter, key: str) -> None:
    """Draining one key leaves another full."""
    await limiter.reserve(key, _SLOW, _SLOW.burst)
    delay = await limiter.reserve(f"{key}-other", _SLOW)
    assert delay == 0.0, f"a fresh key waited {delay}"


RATE_LIMITER_CHECKS: dict[str, LimiterCheck] = {
    "satisfies_protocol": satisfies_protocol,
    "new_bucket_starts_full": new_bucket_starts_full,
    "reservations_queue_in_order": reservations_queue_in_order,
    "cost_counts_tokens": cost_counts_tokens,
    "refund_gives_tokens_back": refund_gives_tokens_back,
    "refund_is_capped_at_the_burst": refund_is_capped_at_the_burst,
    "keys_are_separate": keys_are_separate,
}
"""Every check by name: ``check(limiter, key)`` (parametrize over these in pytest).

.. versionadded:: 3.0
"""


async def check_rate_limiter(make_limiter: LimiterFactory, *, prefix: str = "contract") -> None:
    """Run every ``RATE_LIMITER_CHECKS`` entry on a fresh limiter and an unused key.

    ``make_limiter()`` may return the limiter or an awaitable of it; a limiter
    with a ``close()`` method is closed after its check. Keys start with
    ``prefix`` and end with a random suffix, so a shared server needs no cleanup
    between runs (buckets expire).

    .. versionadded:: 3.0
    """
    for name, check in RATE_LIMITER_CHECKS.items():
        limiter = await _build(make_limiter)
        try:
            await check(limiter, f"{prefix}-{name}-{uuid.uuid4().hex[:8]}")
        except AssertionError as exc:
            raise AssertionError(f"rate limiter contract {name!r} failed: {exc}") from exc
        finally:
            await _close(limiter)


async def _build(factory: Callable[[], Any]) -> Any:
    made = factory()
    return await made if inspect.isawaitable(made) else made


async def _close(obj: object) -> None:
    close = getattr(obj, "close", None)
    if callable(close):
        result = close()
        if inspect.isawaitable(result):
            await result
