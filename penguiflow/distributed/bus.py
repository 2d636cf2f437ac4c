"""``RedisMessageBus``: every edge put, as a ``BusEnvelope``, appended to a Redis stream.

Each envelope is one stream entry with a single field ``envelope``: the JSON of
a pydantic ``WireEnvelope`` whose ``payload``/``headers``/``meta`` went through
``penguiflow.distributed`` encoding, so a reader (``read``) gets the same
``Message`` or model back, not a dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from penguiflow.bus import BusEnvelope
from penguiflow.distributed._codec import decode, encode
from penguiflow.distributed._redis import connect
from penguiflow.errors import SerializationError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["BusRecord", "RedisMessageBus", "WireEnvelope"]


class WireEnvelope(BaseModel):
    """The JSON form of a ``BusEnvelope`` (payload, headers and meta encoded).

    .. versionadded:: 3.0
    """

    edge: str
    source: str | None
    target: str | None
    trace_id: str | None
    payload: Any
    headers: Any
    meta: Any

    @classmethod
    def from_envelope(cls, envelope: BusEnvelope, *, strict: bool = True) -> WireEnvelope:
        """Encode ``envelope``; with ``strict=False`` unserialisable parts become their repr.

        Raises:
            SerializationError: ``strict`` and a part cannot be serialised.
        """
        return cls(
            edge=envelope.edge,
            source=envelope.source,
            target=envelope.target,
            trace_id=envelope.trace_id,
            payload=_encode(envelope.payload, "payload", strict),
            headers=_encode(_plain(envelope.headers), "headers", strict),
            meta=_encode(_plain(envelope.meta), "meta", strict),
        )

    def to_envelope(self) -> BusEnvelope:
        """Decode back into a ``BusEnvelope``."""
        return BusEnvelope(
            edge=self.edge,
            source=self.source,
            target=self.target,
            trace_id=self.trace_id,
            payload=decode(self.payload),
            headers=decode(self.headers),
            meta=decode(self.meta),
        )


def _plain(mapping: Mapping[str, Any] | None) -> dict[str, Any] | None:
    return None if mapping is None else dict(mapping)


def _encode(value: Any, path: str, strict: bool) -> Any:
    try:
        return encode(value, path)
    except SerializationError:
        if strict:
            raise
        return {"$json": repr(value)}


class BusRecord(BaseModel):
    """One envelope read back from the stream, with its stream entry id.

    .. versionadded:: 3.0
    """

    entry_id: str
    envelope: Any  # a BusEnvelope (a plain dataclass, kept as is)


class RedisMessageBus:
    """A ``MessageBus`` appending every envelope to one Redis stream.

    Args:
        url: a ``redis://`` URL or a ``redis.asyncio.Redis`` client created with
            ``decode_responses=True`` (not closed by ``close()``).
        stream: the stream key.
        maxlen: keep about this many entries (approximate trimming); ``None`` keeps all.
        strict: raise ``SerializationError`` for a payload that cannot be
            serialised (the runtime logs ``message_bus_publish_failed`` and still
            delivers the item); ``False`` publishes its ``repr`` instead.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        url: str | Redis,
        *,
        stream: str = "penguiflow:bus",
        maxlen: int | None = None,
        strict: bool = True,
    ) -> None:
        self._redis, self._owned = connect(url)
        self.stream = stream
        self.maxlen = maxlen
        self.strict = strict

    def __repr__(self) -> str:
        return f"RedisMessageBus(stream={self.stream!r})"

    async def publish(self, envelope: BusEnvelope) -> None:
        """Append ``envelope`` to the stream.

        Raises:
            SerializationError: ``strict`` and the payload cannot be serialised.
        """
        wire = WireEnvelope.from_envelope(envelope, strict=self.strict).model_dump_json()
        await self._redis.xadd(
            self.stream,
            {"envelope": wire},
            maxlen=self.maxlen,
            approximate=self.maxlen is not None,
        )

    async def read(self, *, after: str = "0", count: int = 100) -> list[BusRecord]:
        """Return up to ``count`` envelopes published after entry id ``after``, oldest first."""
        start = "-" if after == "0" else f"({after}"
        rows: Any = await self._redis.xrange(self.stream, min=start, max="+", count=count)
        return [
            BusRecord(
                entry_id=entry_id,
                envelope=WireEnvelope.model_validate_json(fields["envelope"]).to_envelope(),
            )
            for entry_id, fields in rows
        ]

    async def close(self) -> None:
        """Close the connection pool (only if this bus created it)."""
        if self._owned:
            await self._redis.aclose()
