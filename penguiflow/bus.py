"""The message-bus seam: every item placed on an edge can be mirrored outside.

This module holds only the ``MessageBus`` protocol and ``BusEnvelope``. The
runtime publishes one envelope per item put on an edge, before the put; a bus
forwards it to whatever transport it wraps (Redis Streams, a log, a test list).

``penguiflow.testkit.InMemoryMessageBus`` records what it receives, and
``penguiflow.testkit.check_message_bus`` is the contract suite a third-party bus
can run (see docs/persistence.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["BusEnvelope", "MessageBus"]


@dataclass(slots=True)
class BusEnvelope:
    """One item crossing one edge.

    ``edge`` is ``"<source>-><target>"`` using node names and ``OpenSea`` /
    ``Rookery`` for the endpoints; ``payload`` is the item itself (the whole
    ``Message``); ``headers``/``meta`` are plain dict copies for ``Message``
    items and ``None`` otherwise.
    """

    edge: str
    source: str | None
    target: str | None
    trace_id: str | None
    payload: Any
    headers: Mapping[str, Any] | None
    meta: Mapping[str, Any] | None


@runtime_checkable
class MessageBus(Protocol):
    """Receives every item the runtime puts on an edge.

    Programs may subclass it explicitly or provide ``publish`` alone. A failing
    ``publish`` is logged by the runtime and the item is enqueued anyway.
    """

    async def publish(self, envelope: BusEnvelope) -> None:
        """Hand one envelope to the bus."""
        ...
