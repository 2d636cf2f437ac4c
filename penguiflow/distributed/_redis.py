"""The one place ``redis.asyncio`` is imported (the optional ``redis`` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["connect"]


def connect(url_or_client: str | Redis) -> tuple[Redis, bool]:
    """Return a client for ``url_or_client`` and whether we own it (and must close it).

    Raises:
        ImportError: the ``redis`` package is missing (``pip install penguiflow[redis]``).
    """
    if not isinstance(url_or_client, str):
        return url_or_client, False
    try:
        from redis.asyncio import Redis
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise ImportError(
            "penguiflow.distributed needs the redis client: pip install 'penguiflow[redis]'"
        ) from exc
    client: Redis = Redis.from_url(url_or_client, decode_responses=True)
    return client, True
