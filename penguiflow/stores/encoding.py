"""JSON encoding of stored payloads, shared by the shipped stores and open to third-party ones.

A store that wants the same duplicate detection as ours keys events by
``event_key(event, dumps_payload(event.payload))``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from penguiflow.state import StoredEvent

__all__ = ["dumps_payload", "event_key"]


def _default(value: Any) -> Any:
    # Extras may hold pydantic models or arbitrary objects: keep models as data
    # and everything else as its str(), so a stored event is always loadable.
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        try:
            return model_dump(mode="json")
        except Exception:  # a model with unserialisable fields: fall back to text
            return str(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def dumps_payload(payload: Mapping[str, Any]) -> str:
    """Serialise a payload mapping; non-JSON values become JSON data or text."""
    return json.dumps(dict(payload), default=_default, separators=(",", ":"))


def event_key(event: StoredEvent, payload_json: str) -> str:
    """A digest identifying an event by content, so a re-saved event is stored once."""
    ident = json.dumps(
        [event.trace_id, repr(event.ts), event.kind, event.node_name, event.node_id, payload_json]
    )
    return hashlib.sha256(ident.encode("utf-8")).hexdigest()
