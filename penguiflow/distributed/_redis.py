"""The one place ``redis.asyncio`` is imported (the optional ``redis`` extra)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "MAX_CONNECTIONS",
    "checkpoint",
    "connect",
    "ensure_group",
    "redis_errors",
    "socket_timeout",
]

MAX_CONNECTIONS = 100
"""Connections a client made from a URL opens at most; more concurrent calls wait."""


def connect(url_or_client: str | Redis, *, block_ms: int = 0) -> tuple[Redis, bool]:
    """Return a client for ``url_or_client`` and whether we own it (and must close it).

    A client made from a URL gets a socket timeout well above ``block_ms``, the
    longest blocking read it will make: the client's default (5 s) would turn
    every longer read into a timeout. Its pool is a ``BlockingConnectionPool`` of
    ``MAX_CONNECTIONS``: a call made while every connection is busy waits for one
    (up to the socket timeout), where the client's default pool fails it at once
    with ``MaxConnectionsError`` (redis-py caps that pool at 100 connections), so
    a burst of concurrent emits, journal steps or rate-limit reservations would
    fail instead of queueing.

    Raises:
        ImportError: the ``redis`` package is missing (``pip install penguiflow[redis]``).
    """
    if not isinstance(url_or_client, str):
        return url_or_client, False
    try:
        from redis.asyncio import BlockingConnectionPool, Redis
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise ImportError(
            "penguiflow.distributed needs the redis client: pip install 'penguiflow[redis]'"
        ) from exc
    timeout = socket_timeout(block_ms)
    pool = BlockingConnectionPool.from_url(
        url_or_client,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout,
        decode_responses=True,
        socket_timeout=timeout,
    )
    client: Redis = Redis.from_pool(pool)  # the client closes the pool with itself
    return client, True


def socket_timeout(block_ms: int) -> float:
    """Seconds a reply may take: the longest blocking read plus a margin, at least 5 s."""
    return max(5.0, block_ms / 1000 + 5.0)


def redis_errors() -> type[Exception]:
    """The base class of the client's errors (connection loss, server replies)."""
    from redis.exceptions import RedisError

    return RedisError


async def ensure_group(redis: Redis, stream: str, group: str = "workers") -> None:
    """Create ``group`` on ``stream`` (and the stream) unless it exists."""
    from redis.exceptions import ResponseError

    try:
        await redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


def checkpoint() -> None:
    """Raise ``CancelledError`` if the current task was asked to cancel.

    Python 3.11's ``asyncio.wait_for``, which the redis client uses, can swallow a
    cancel request that races with a reply; the request stays visible in
    ``Task.cancelling()``. Loops around client calls check here after each call,
    so ``flow.stop()`` and worker shutdown cannot be lost.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
