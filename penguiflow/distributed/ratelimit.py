"""``RedisRateLimiter``: token buckets every process shares, kept in Redis.

Each reservation is one atomic Lua script (``EVALSHA``, loaded again with
``SCRIPT LOAD`` after a server restart flushed it) that refills the bucket from
the time elapsed, takes the tokens and answers the wait. The script reads the
server's clock (``TIME``), so the workers' clocks never enter the arithmetic;
N processes drawing from one key together stay within its rate.

A bucket is the hash ``<prefix>:ratelimit:<key>`` (fields ``level``, ``ts``); it
expires once it would have refilled completely, so idle keys leave nothing
behind. Keys are not scoped by flow: every flow under one prefix naming a key
shares its bucket, as every node calling one provider should.

.. versionadded:: 3.0
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING, Any

from penguiflow._logging import get_logger
from penguiflow.distributed._redis import connect, redis_errors

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from penguiflow.ratelimit import RateLimit

__all__ = ["RedisRateLimiter"]

_log = get_logger("penguiflow.distributed")

_REFUND_TIMEOUT_S = 1.0

# KEYS: bucket; ARGV: tokens per second, burst, cost (negative: a refund).
# Returns the seconds to wait, as a string (Lua numbers become integers on reply).
_RESERVE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'level', 'ts')
local level = tonumber(state[1])
local ts = tonumber(state[2])
if level == nil or ts == nil then
  level = burst
  ts = now
elseif now > ts then
  level = math.min(burst, level + (now - ts) * rate)
  ts = now
end
level = math.min(burst, level - cost)
redis.call('HSET', KEYS[1], 'level', string.format('%.17g', level),
           'ts', string.format('%.6f', ts))
local full_in = (burst - level) / rate
redis.call('PEXPIRE', KEYS[1], math.ceil(full_in * 1000) + 1000)
if level >= 0 then
  return '0'
end
return string.format('%.17g', -level / rate)
"""


class RedisRateLimiter:
    """A ``penguiflow.ratelimit.RateLimiter`` whose buckets live in Redis.

    Args:
        url: a ``redis://`` URL, or a ``redis.asyncio.Redis`` client created with
            ``decode_responses=True`` (not closed by ``close()``).
        prefix: first part of every key (a ``RedisDeployment`` passes its own).

    ``RedisDeployment.apply`` and ``penguiflow-worker`` install one on the flows
    they run, for every keyed ``NodePolicy.rate_limit`` (a flow given its own
    ``rate_limiter=`` keeps it). A node's own bucket (``key=None``) stays in its
    process. A Redis error while reserving propagates (the node's actor treats
    it as a crash, as for any fault outside the node function); a refund that
    fails is logged (``rate_limit_refund_failed``) and dropped.

    .. versionadded:: 3.0
    """

    def __init__(self, url: str | Redis, *, prefix: str = "penguiflow") -> None:
        self._redis, self._owned = connect(url)
        self._prefix = prefix
        self._script: Any = self._redis.register_script(_RESERVE)

    def __repr__(self) -> str:
        return f"RedisRateLimiter(prefix={self._prefix!r})"

    def bucket_key(self, key: str) -> str:
        """The Redis key of bucket ``key``."""
        return f"{self._prefix}:ratelimit:{key}"

    async def reserve(self, key: str, limit: RateLimit, cost: float = 1.0) -> float:
        """Take ``cost`` tokens from the shared bucket ``key``; return the seconds to wait.

        Raises:
            redis.exceptions.RedisError: the script could not run.
        """
        return await self._run(key, limit, cost)

    async def refund(self, key: str, limit: RateLimit, cost: float = 1.0) -> None:
        """Give back ``cost`` unused tokens; best effort, bounded to one second."""
        try:
            async with asyncio.timeout(_REFUND_TIMEOUT_S):
                await self._run(key, limit, -cost)
        except (TimeoutError, OSError, redis_errors()) as exc:
            _log.warning("rate_limit_refund_failed", key=key, error=repr(exc))

    async def close(self) -> None:
        """Close the client if this limiter created it."""
        if self._owned:
            await self._redis.aclose()

    async def _run(self, key: str, limit: RateLimit, cost: float) -> float:
        args = [repr(limit.tokens_per_s), str(limit.burst), repr(float(cost))]
        reply = await self._script(keys=[self.bucket_key(key)], args=args)
        delay = float(reply)
        return delay if math.isfinite(delay) and delay > 0 else 0.0
