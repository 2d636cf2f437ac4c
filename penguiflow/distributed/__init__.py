"""Run a flow across processes on Redis: a message bus, a state store, distributed nodes
and shared rate limits.

Needs the ``redis`` extra (``pip install 'penguiflow[redis]'``); ``redis.asyncio``
is imported when a Redis object is created, not at import time. See
docs/deployment.md.

.. versionadded:: 3.0
"""

from __future__ import annotations

from penguiflow.distributed.bus import BusRecord, RedisMessageBus, WireEnvelope
from penguiflow.distributed.deployment import RedisDeployment
from penguiflow.distributed.ratelimit import RedisRateLimiter
from penguiflow.distributed.store import RedisStateStore
from penguiflow.errors import SerializationError

__all__ = [
    "BusRecord",
    "RedisDeployment",
    "RedisMessageBus",
    "RedisRateLimiter",
    "RedisStateStore",
    "SerializationError",
    "WireEnvelope",
]
