"""``RateLimitedLLMClient``: a model client held under a tokens-per-minute limit.

The tokens a call costs are known only from its answer, so the limit is paid
in two steps. Before a call the client reserves an estimate (the tokens the
previous call used, at most the bucket's ``burst``) and waits, on the clock,
until the bucket can pay it; after the call it settles the difference with the
usage the model reported through ``record_token_usage`` (``LiteLLMJSONClient``
reports what litellm returns; a custom client calls it itself). A call that used
more than estimated leaves the bucket in debt, which the next call waits out; one
that used less gives the rest back. A call that reports nothing keeps its
estimate; one that raises keeps it too (the provider may have counted it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from penguiflow._time import SYSTEM_CLOCK
from penguiflow.planner._telemetry import USAGE
from penguiflow.ratelimit import InMemoryRateLimiter, RateLimit, RateLimiter

if TYPE_CHECKING:
    from penguiflow._time import Clock
    from penguiflow.planner._llm import JSONLLMClient

__all__ = ["RateLimitedLLMClient", "tpm_limit"]


def tpm_limit(limit: int | RateLimit) -> RateLimit:
    """``limit`` tokens per minute as a ``RateLimit`` (its burst: one minute's worth).

    Raises:
        TypeError: ``limit`` is neither an ``int`` nor a ``RateLimit``.
        ValueError: ``limit`` is not positive.
    """
    if isinstance(limit, RateLimit):
        return limit
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"tpm_limit must be an int or a RateLimit, got {limit!r}")
    if limit < 1:
        raise ValueError(f"tpm_limit must be at least 1 token per minute, got {limit!r}")
    return RateLimit(rate=float(limit), per_s=60.0, burst=limit)


class RateLimitedLLMClient:
    """A ``JSONLLMClient`` that waits before calls so ``client`` keeps within ``limit``.

    Args:
        client: the model client to limit (it reports usage with
            ``record_token_usage``, as ``LiteLLMJSONClient`` does).
        limit: tokens per minute (an ``int``), or a ``RateLimit`` counted in
            tokens; a ``key`` shares the bucket with every client naming it on
            the same ``limiter``.
        limiter: where the bucket lives; default, an in-memory one of this
            client's, on ``clock``. A ``penguiflow.distributed.RedisRateLimiter``
            shares it across processes.
        clock: where the client waits (``penguiflow.testkit.FakeClock`` in tests).

    ``ReactPlanner(..., tpm_limit=..., rate_limiter=...)`` wraps its model
    clients in one.

    .. versionadded:: 3.0
    """

    __slots__ = ("_bucket", "_client", "_clock", "_estimate", "_limit", "_limiter")

    def __init__(
        self,
        client: JSONLLMClient,
        limit: int | RateLimit,
        *,
        limiter: RateLimiter | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._client = client
        self._limit = tpm_limit(limit)
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._limiter: RateLimiter = (
            limiter if limiter is not None else InMemoryRateLimiter(clock=self._clock)
        )
        key = self._limit.key
        self._bucket = key if key is not None else f"llm:{id(self)}"
        self._estimate = 0

    @property
    def model(self) -> str | None:
        """The wrapped client's model name, when it has one."""
        model = getattr(self._client, "model", None)
        return None if model is None else str(model)

    @property
    def limit(self) -> RateLimit:
        """The token bucket calls draw from."""
        return self._limit

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        """Wait for the bucket, call the model, settle what it reported using.

        Raises:
            Exception: whatever the wrapped client raised, unchanged.
        """
        limit = self._limit
        estimate = min(self._estimate, limit.burst)
        delay = await self._limiter.reserve(self._bucket, limit, estimate)
        if delay > 0:
            try:
                await self._clock.sleep(delay)
            except BaseException:
                await self._limiter.refund(self._bucket, limit, estimate)
                raise
        reports: list[int] = []
        token = USAGE.set(reports)
        try:
            reply = await self._client.complete(messages=messages, response_format=response_format)
        finally:
            USAGE.reset(token)
            outer = USAGE.get()
            if outer is not None:  # a limit around this one counts the same tokens
                outer.extend(reports)
        if reports:
            used = sum(reports)
            self._estimate = used
            if used > estimate:
                await self._limiter.reserve(self._bucket, limit, used - estimate)
            elif used < estimate:
                await self._limiter.refund(self._bucket, limit, estimate - used)
        return reply
