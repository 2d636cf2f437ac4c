"""Server-sent event framing shared by the 2.2.5 stream and the JSON-RPC streams.

Every frame is encoded with ``strict_dumps``: a value that is not strict JSON
raises ``NotJsonError`` before any byte of the frame is written.
"""

from __future__ import annotations

from typing import Any

from penguiflow.types import StreamChunk

from ._strict_json import check_text, strict_dumps

__all__ = ["chunk_event", "data_event", "named_event"]


def named_event(name: str, data: Any) -> bytes:
    """``event: <name>\\ndata: <json>\\n\\n`` as the 2.2.5 adapter frames its own events.

    Raises:
        NotJsonError: ``data`` is not strict JSON.
    """
    return f"event: {name}\ndata: {strict_dumps(data)}\n\n".encode()


def data_event(data: Any, *, event: str | None = None) -> bytes:
    """One standard A2A SSE event: compact one-line JSON, optionally named.

    Raises:
        NotJsonError: ``data`` is not strict JSON.
    """
    body = strict_dumps(data, compact=True)
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {body}\n\n".encode()


def chunk_event(chunk: StreamChunk) -> bytes:
    """The bytes of ``penguiflow.streaming.format_sse_event(chunk)``.

    Kept here (streaming.md fixes the format) so the adapter depends only on
    the message types; a test pins it against ``format_sse_event``.

    Raises:
        NotJsonError: the text or the meta cannot be sent (a lone surrogate,
            a non-finite number, ...).
    """
    what = "a stream chunk"
    lines = [
        f"event: {'done' if chunk.done else 'chunk'}",
        f"id: {chunk.seq}",
        f"data: {chunk.text}",
    ]
    if chunk.meta:
        lines.append(f"data: {strict_dumps(chunk.meta, what=what)}")
    return check_text("\n".join(lines) + "\n\n", what=what)
