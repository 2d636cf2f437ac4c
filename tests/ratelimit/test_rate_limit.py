"""``RateLimit`` (validation, positional use of ``NodePolicy``) and ``InMemoryRateLimiter``."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

import penguiflow
from penguiflow import NodePolicy, RateLimit
from penguiflow.ratelimit import InMemoryRateLimiter, RateLimiter, RateLimiterStatistics
from penguiflow.testkit import RATE_LIMITER_CHECKS, FakeClock, check_rate_limiter

LIMIT = RateLimit(rate=2.0, per_s=1.0, burst=3)


@pytest.fixture
def limiter(fake_clock: FakeClock) -> InMemoryRateLimiter:
    return InMemoryRateLimiter(clock=fake_clock)


def test_importable_from_the_top_level_but_not_in_all() -> None:
    assert penguiflow.RateLimit is RateLimit
    assert "RateLimit" not in penguiflow.__all__  # __all__ is the 2.2.5 list
    assert "RateLimit" in dir(penguiflow)


def test_module_exports() -> None:
    import penguiflow.ratelimit as module

    assert module.__all__ == [
        "InMemoryRateLimiter",
        "RateLimit",
        "RateLimiter",
        "RateLimiterStatistics",
    ]


def test_defaults_are_the_documented_ones() -> None:
    assert RateLimit() == RateLimit(rate=10.0, per_s=1.0, burst=20, key=None)
    assert RateLimit(rate=120, per_s=60).tokens_per_s == 2.0


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        pytest.param({"rate": 0}, ValueError, "rate must be positive", id="rate-zero"),
        pytest.param({"rate": -1.0}, ValueError, "rate must be positive", id="rate-negative"),
        pytest.param({"rate": math.inf}, ValueError, "rate must be positive", id="rate-inf"),
        pytest.param({"rate": math.nan}, ValueError, "rate must be positive", id="rate-nan"),
        pytest.param({"rate": "10"}, TypeError, "rate must be a number", id="rate-str"),
        pytest.param({"rate": True}, TypeError, "rate must be a number", id="rate-bool"),
        pytest.param({"per_s": 0.0}, ValueError, "per_s must be positive", id="per-zero"),
        pytest.param({"per_s": None}, TypeError, "per_s must be a number", id="per-none"),
        pytest.param({"burst": 0}, ValueError, "burst must be at least 1", id="burst-zero"),
        pytest.param({"burst": 2.5}, TypeError, "burst must be an int", id="burst-float"),
        pytest.param({"burst": True}, TypeError, "burst must be an int", id="burst-bool"),
        pytest.param({"key": ""}, ValueError, "key must not be empty", id="key-empty"),
        pytest.param({"key": "a\ud800"}, ValueError, "valid Unicode", id="key-lone-surrogate"),
        pytest.param({"key": 3}, TypeError, "key must be a string", id="key-int"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], error: type, text: str) -> None:
    with pytest.raises(error, match=text):
        RateLimit(**kwargs)


def test_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        LIMIT.rate = 5.0  # type: ignore[misc]


def test_node_policy_keeps_the_225_positional_order() -> None:
    names = [f.name for f in dataclasses.fields(NodePolicy)]
    assert names == [
        "validate",
        "timeout_s",
        "max_retries",
        "backoff_base",
        "backoff_mult",
        "max_backoff",
        "rate_limit",
    ]
    policy = NodePolicy("none", 1.5, 2, 0.1, 3.0, 4.0)
    assert (policy.validate, policy.timeout_s, policy.max_retries) == ("none", 1.5, 2)
    assert (policy.backoff_base, policy.backoff_mult, policy.max_backoff) == (0.1, 3.0, 4.0)
    assert policy.rate_limit is None
    assert NodePolicy(rate_limit=LIMIT).rate_limit is LIMIT


def test_node_policy_refuses_a_rate_limit_that_is_not_one() -> None:
    with pytest.raises(TypeError, match=r"rate_limit must be a penguiflow\.RateLimit"):
        NodePolicy(rate_limit={"rate": 1})  # type: ignore[arg-type]


def test_in_memory_limiter_is_a_rate_limiter(limiter: InMemoryRateLimiter) -> None:
    assert isinstance(limiter, RateLimiter)


async def test_a_new_bucket_starts_full(limiter: InMemoryRateLimiter) -> None:
    delays = [await limiter.reserve("k", LIMIT) for _ in range(3)]
    assert delays == [0.0, 0.0, 0.0]
    assert limiter.tokens("k", LIMIT) == 0.0


async def test_reservations_past_the_burst_queue_in_order(limiter: InMemoryRateLimiter) -> None:
    for _ in range(3):
        await limiter.reserve("k", LIMIT)
    delays = [await limiter.reserve("k", LIMIT) for _ in range(3)]
    assert delays == [0.5, 1.0, 1.5]  # 2 tokens a second, each waiter behind the last


async def test_refill_is_capped_at_the_burst(
    limiter: InMemoryRateLimiter, fake_clock: FakeClock
) -> None:
    await limiter.reserve("k", LIMIT, cost=3)
    fake_clock.advance(0.5)
    assert limiter.tokens("k", LIMIT) == 1.0
    fake_clock.advance(60)
    assert limiter.tokens("k", LIMIT) == 3.0


async def test_refund_gives_tokens_back_up_to_the_burst(limiter: InMemoryRateLimiter) -> None:
    await limiter.reserve("k", LIMIT, cost=4)
    assert limiter.tokens("k", LIMIT) == -1.0
    await limiter.refund("k", LIMIT, cost=2)
    assert limiter.tokens("k", LIMIT) == 1.0
    await limiter.refund("k", LIMIT, cost=10)
    assert limiter.tokens("k", LIMIT) == 3.0


async def test_keys_are_separate_buckets(limiter: InMemoryRateLimiter) -> None:
    await limiter.reserve("a", LIMIT, cost=3)
    assert await limiter.reserve("b", LIMIT) == 0.0
    assert await limiter.reserve("a", LIMIT) == 0.5


async def test_statistics_count_reservations_waits_and_refunds(
    limiter: InMemoryRateLimiter,
) -> None:
    for _ in range(5):
        await limiter.reserve("k", LIMIT)
    await limiter.refund("k", LIMIT)
    assert limiter.statistics() == RateLimiterStatistics(
        reservations=5, delayed=2, delay_s=1.5, refunds=1, buckets=1
    )


def test_default_clock_is_the_system_clock() -> None:
    from penguiflow._time import SYSTEM_CLOCK

    assert InMemoryRateLimiter().clock is SYSTEM_CLOCK


async def test_the_in_memory_limiter_passes_the_contract_suite(fake_clock: FakeClock) -> None:
    await check_rate_limiter(lambda: InMemoryRateLimiter(clock=fake_clock))


class Unlimited:
    """A limiter that never makes anyone wait (a broken one)."""

    async def reserve(self, key: str, limit: RateLimit, cost: float = 1.0) -> float:
        return 0.0

    async def refund(self, key: str, limit: RateLimit, cost: float = 1.0) -> None:
        return None


@pytest.mark.parametrize(
    "name", ["reservations_queue_in_order", "cost_counts_tokens", "refund_is_capped_at_the_burst"]
)
async def test_contract_checks_catch_a_limiter_that_never_limits(name: str) -> None:
    with pytest.raises(AssertionError):
        await RATE_LIMITER_CHECKS[name](Unlimited(), "k")


async def test_the_suite_names_the_failed_check() -> None:
    with pytest.raises(AssertionError, match="rate limiter contract 'satisfies_protocol'"):
        await check_rate_limiter(object)  # type: ignore[arg-type]
