"""Parked traces as the page shows them: an id instead of the token, the payload as JSON text.

The token of an interrupt is a capability (whoever has it can resume the
trace), while the page and its stream need no authentication. So the page
never sees a token: each parked interrupt is named by a digest of it, and the
resume action, which passes the auth hook, finds the token again by that id.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from penguiflow.interrupts import ParkedInterrupt

__all__ = ["PAYLOAD_LIMIT", "interrupt_id", "parked_rows", "payload_text", "stored_parked"]

#: Characters of a payload's JSON text the page shows (the rest is cut, marked ``…``).
PAYLOAD_LIMIT = 4000


def interrupt_id(token: str) -> str:
    """The public name of the interrupt parked under ``token`` (a digest: not the token)."""
    return hashlib.sha256(token.encode()).hexdigest()[:24]


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)  # pydantic models: their JSON form
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:  # any failure of the model's own dump: show the repr instead
            return repr(value)
    return repr(value)


def payload_text(payload: Any, *, limit: int = PAYLOAD_LIMIT) -> str:
    """``payload`` as JSON text (what JSON cannot hold shown by its ``repr``), cut to ``limit``.

    The page puts it in a text node: it is shown, never parsed as HTML.
    """
    try:
        text = json.dumps(payload, default=_jsonable, ensure_ascii=False, indent=1)
    except (TypeError, ValueError):  # non-string keys, a cycle
        text = json.dumps(repr(payload), ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def parked_rows(parked: list[ParkedInterrupt]) -> list[dict[str, Any]]:
    """The page's ``interrupts``: id, trace, node, payload text, since (no token)."""
    return [
        {
            "id": interrupt_id(entry.token),
            "trace_id": entry.trace_id,
            "node": entry.node,
            "payload": payload_text(entry.payload),
            "since": entry.since,
        }
        for entry in parked
    ]


async def stored_parked(store: object) -> list[dict[str, Any]]:
    """The interrupts waiting in ``store``'s journal (none if it keeps no journal)."""
    from penguiflow.errors import SerializationError
    from penguiflow.journal import journal_of

    try:
        journal = journal_of(store)
    except TypeError:
        return []
    snapshot = await journal.load()
    rows = []
    for record in snapshot.interrupts:
        if record.resumed:
            continue
        try:
            payload = payload_text(record.decode_payload())
        except SerializationError:  # a tagged type not importable here: the stored text
            payload = record.payload[:PAYLOAD_LIMIT]
        rows.append(
            {
                "id": interrupt_id(record.token),
                "trace_id": record.trace_id,
                "node": record.node,
                "payload": payload,
                "since": None,
            }
        )
    return rows
