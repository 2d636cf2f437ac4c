"""Server-sent event framing shared by the 2.2.5 stream and the JSON-RPC streams."""

from __future__ import annotations

import json
from typing import Any

from penguiflow.types import StreamChunk

__all__ = ["chunk_event", "data_event", "named_event"]


def named_event(name: str, data: Any) -> bytes:
    """``event: <name>\\ndata: <json>\\n\\n`` as the 2.2.5 adapter frames its own events."""
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


def data_event(data: Any, *, event: str | None = None) -> bytes:
    """One standard A2A SSE event: compact one-line JSON, optionally named."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    prefix = f"event: {event}\n" if event else ""
    return f"{prefix}data: {body}\n\n".encode()


def chunk_event(chunk: StreamChunk) -> bytes:
    """The bytes of ``penguiflow.streaming.format_sse_event(chunk)``.

    Kept here (streaming.md fixes the format) so the adapter depends only on
    the message types; a test pins it against ``format_sse_event``.
    """
    lines = [
        f"event: {'done' if chunk.done else 'chunk'}",
        f"id: {chunk.seq}",
        f"data: {chunk.text}",
    ]
    if chunk.meta:
        lines.append(f"data: {json.dumps(chunk.meta, ensure_ascii=False)}")
    return ("\n".join(lines) + "\n\n").encode()
