"""A tokens-per-minute limit on the planner's model calls, fed by the usage they report."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from planner_support import default_catalog

from penguiflow import RateLimit
from penguiflow.planner import RateLimitedLLMClient, ReactPlanner
from penguiflow.planner._telemetry import record_token_usage
from penguiflow.planner._tpm import tpm_limit
from penguiflow.ratelimit import InMemoryRateLimiter
from penguiflow.testkit import FakeClock

SAFETY_S = 5.0
FINISH = json.dumps({"thought": "done", "next_node": None, "args": {"answer": "ok"}})
MESSAGES = [{"role": "user", "content": "hi"}]
TPM = RateLimit(rate=100.0, per_s=60.0, burst=100, key="k")  # 100 tokens a minute


class UsageClient:
    """Replies at once and reports ``usage`` tokens per call (None: reports nothing)."""

    model = "scripted"

    def __init__(self, *usage: int | None, fail: BaseException | None = None) -> None:
        self.usage = list(usage)
        self.fail = fail
        self.calls = 0

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        self.calls += 1
        used = self.usage.pop(0) if self.usage else None
        if used is not None:
            record_token_usage(used // 2, used - used // 2)
        if self.fail is not None and self.calls > 1:
            raise self.fail
        return FINISH


@pytest.fixture(autouse=True)
def local_cost_map(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def limited(
    client: Any, tpm: int | RateLimit, clock: FakeClock, **kwargs: Any
) -> tuple[RateLimitedLLMClient, InMemoryRateLimiter]:
    limiter = kwargs.pop("limiter", None) or InMemoryRateLimiter(clock=clock)
    return RateLimitedLLMClient(client, tpm, limiter=limiter, clock=clock, **kwargs), limiter


async def until_waiting(clock: FakeClock) -> None:
    async with asyncio.timeout(SAFETY_S):
        await clock.wait_for_timers(1)


def test_an_int_is_tokens_per_minute_with_a_minute_of_burst(fake_clock: FakeClock) -> None:
    assert tpm_limit(600) == RateLimit(rate=600.0, per_s=60.0, burst=600)
    assert limited(UsageClient(), 600, fake_clock)[0].limit == tpm_limit(600)
    own = RateLimit(rate=5.0, per_s=1.0, burst=5, key="openai")
    assert tpm_limit(own) is own


@pytest.mark.parametrize(
    ("value", "error"),
    [
        pytest.param(0, ValueError, id="zero"),
        pytest.param(-5, ValueError, id="negative"),
        pytest.param(1.5, TypeError, id="float"),
        pytest.param(True, TypeError, id="bool"),
        pytest.param("100", TypeError, id="str"),
    ],
)
def test_bad_limits_are_refused(value: Any, error: type) -> None:
    with pytest.raises(error, match="tpm_limit must be"):
        tpm_limit(value)


async def test_the_first_call_goes_at_once_and_is_paid_after(fake_clock: FakeClock) -> None:
    client, limiter = limited(UsageClient(60), TPM, fake_clock)
    assert await client.complete(messages=MESSAGES) == FINISH
    assert fake_clock.pending_timers == 0
    assert limiter.tokens("k", TPM) == 40.0


async def test_a_call_waits_until_the_bucket_can_pay_the_last_calls_usage(
    fake_clock: FakeClock,
) -> None:
    inner = UsageClient(60, 60)
    client, _ = limited(inner, TPM, fake_clock)
    await client.complete(messages=MESSAGES)
    second = asyncio.ensure_future(client.complete(messages=MESSAGES))
    await until_waiting(fake_clock)  # 40 left, 60 estimated: 20 short = 12 s
    assert inner.calls == 1
    fake_clock.advance(11.9)
    await asyncio.sleep(0)
    assert not second.done()
    fake_clock.advance(0.1)
    async with asyncio.timeout(SAFETY_S):
        assert await second == FINISH
    assert inner.calls == 2


async def test_using_less_than_estimated_gives_the_rest_back(fake_clock: FakeClock) -> None:
    client, limiter = limited(UsageClient(50, 10), TPM, fake_clock)
    await client.complete(messages=MESSAGES)
    await client.complete(messages=MESSAGES)  # 50 estimated, 10 used
    assert limiter.tokens("k", TPM) == 40.0


async def test_a_call_that_reports_nothing_keeps_its_estimate(fake_clock: FakeClock) -> None:
    client, limiter = limited(UsageClient(30, None), TPM, fake_clock)
    await client.complete(messages=MESSAGES)
    await client.complete(messages=MESSAGES)
    assert limiter.tokens("k", TPM) == 40.0


async def test_a_failed_call_keeps_its_reservation_and_raises(fake_clock: FakeClock) -> None:
    client, limiter = limited(UsageClient(25, None, fail=RuntimeError("429")), TPM, fake_clock)
    await client.complete(messages=MESSAGES)
    with pytest.raises(RuntimeError, match="429"):
        await client.complete(messages=MESSAGES)
    assert limiter.tokens("k", TPM) == 50.0  # 25 used, then 25 reserved and kept


async def test_cancelling_a_waiting_call_gives_its_reservation_back(
    fake_clock: FakeClock,
) -> None:
    inner = UsageClient(100)
    client, limiter = limited(inner, TPM, fake_clock)
    await client.complete(messages=MESSAGES)
    waiting = asyncio.ensure_future(client.complete(messages=MESSAGES))
    await until_waiting(fake_clock)
    assert limiter.tokens("k", TPM) == -100.0
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert limiter.tokens("k", TPM) == 0.0
    assert inner.calls == 1


async def test_clients_naming_one_key_share_its_bucket(fake_clock: FakeClock) -> None:
    shared = RateLimit(rate=100.0, per_s=60.0, burst=100, key="openai")
    limiter = InMemoryRateLimiter(clock=fake_clock)
    first, _ = limited(UsageClient(70), shared, fake_clock, limiter=limiter)
    second, _ = limited(UsageClient(70), shared, fake_clock, limiter=limiter)
    await first.complete(messages=MESSAGES)
    await second.complete(messages=MESSAGES)
    assert limiter.tokens("openai", shared) == -40.0


async def test_an_outer_limit_sees_the_usage_an_inner_one_saw(fake_clock: FakeClock) -> None:
    big = RateLimit(rate=1000.0, per_s=60.0, burst=1000, key="big")
    inner, inner_limiter = limited(UsageClient(30), TPM, fake_clock)
    outer, outer_limiter = limited(inner, big, fake_clock)
    await outer.complete(messages=MESSAGES)
    assert inner_limiter.tokens("k", TPM) == 70.0
    assert outer_limiter.tokens("big", big) == 970.0


def test_model_is_the_wrapped_clients(fake_clock: FakeClock) -> None:
    client, _ = limited(UsageClient(), 100, fake_clock)
    assert client.model == "scripted"
    bare, _ = limited(object(), 100, fake_clock)
    assert bare.model is None


async def test_the_planner_waits_on_its_clock_for_litellm_reported_usage(
    fake_clock: FakeClock,
) -> None:
    """litellm's mock_response reports 30 tokens a call; 40 a minute lets one through."""
    limiter = InMemoryRateLimiter(clock=fake_clock)
    planner = ReactPlanner(
        {"model": "gpt-4o-mini", "mock_response": FINISH},
        catalog=default_catalog(),
        tpm_limit=40,
        rate_limiter=limiter,
        clock=fake_clock,
    )
    first = await planner.run("Q")
    assert first.payload == {"answer": "ok"}
    assert limiter.statistics().delayed == 0
    second = asyncio.ensure_future(planner.run("Q"))
    await until_waiting(fake_clock)  # 10 left, 30 estimated: 20 short at 40/min = 30 s
    assert limiter.statistics().delay_s == pytest.approx(30.0)
    fake_clock.advance(30.0)
    async with asyncio.timeout(SAFETY_S):
        assert (await second).payload == {"answer": "ok"}


async def test_a_planner_without_a_limit_calls_its_client_directly() -> None:
    client = UsageClient()
    planner = ReactPlanner(llm_client=client, catalog=default_catalog())
    assert planner._client is client  # noqa: SLF001 - white-box: no wrapper without a limit
