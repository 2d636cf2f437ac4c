"""Streaming helpers: SSE and websocket framing, and driving a flow as a stream.

Chunks themselves are produced by ``Context.emit_chunk`` / ``PenguiFlow.emit_chunk``
(in ``penguiflow.core``), which number them ``0, 1, 2, ...`` per stream with no
gaps or duplicates. This module turns chunks into wire formats
(``format_sse_event``, ``chunk_to_ws_json``), feeds provider event streams into a
flow (``emit_stream_events``) and reads a flow's output as an async iterator
(``stream_flow``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from penguiflow._time import SYSTEM_CLOCK, Clock
from penguiflow.types import StreamChunk

if TYPE_CHECKING:
    from penguiflow.types import Message

__all__ = [  # noqa: RUF022 - the 2.2.5 order
    "format_sse_event",
    "chunk_to_ws_json",
    "stream_flow",
    "emit_stream_events",
]

EventAdapter: TypeAlias = Callable[[Any], tuple[str, bool, dict[str, Any]]]
"""Maps one provider event to ``(text, done, meta)`` for ``emit_stream_events``."""


class _ChunkEmitter(Protocol):
    """Anything with the ``emit_chunk`` of a node ``Context`` or a ``PenguiFlow``."""

    async def emit_chunk(
        self,
        *,
        parent: Message,
        text: str,
        stream_id: str | None = ...,
        seq: int | None = ...,
        done: bool = ...,
        meta: dict[str, Any] | None = ...,
        to: Any = ...,
    ) -> StreamChunk: ...


def format_sse_event(
    chunk: StreamChunk, *, event_name: str | None = None, retry_ms: int | None = None
) -> str:
    """Render ``chunk`` as one Server-Sent Events frame, ending with a blank line.

    Args:
        chunk: the chunk to render.
        event_name: the ``event:`` value; defaults to ``done`` for the final
            chunk and ``chunk`` otherwise.
        retry_ms: when given, a ``retry:`` line is added.

    The text goes into a single ``data:`` line verbatim (embedded newlines are
    not split, as in 2.2.5); a non-empty ``meta`` adds a second ``data:`` line
    with its JSON.
    """
    name = event_name or ("done" if chunk.done else "chunk")
    lines = [f"event: {name}", f"id: {chunk.seq}", f"data: {chunk.text}"]
    if chunk.meta:
        lines.append(f"data: {json.dumps(chunk.meta, ensure_ascii=False)}")
    if retry_ms is not None:
        lines.append(f"retry: {retry_ms}")
    return "\n".join(lines) + "\n\n"


def chunk_to_ws_json(chunk: StreamChunk, *, extra: Mapping[str, Any] | None = None) -> str:
    """Render ``chunk`` as a websocket JSON text frame.

    Keys come in the order ``stream_id``, ``seq``, ``text``, ``done``, ``meta``;
    ``extra`` keys are appended, or replace an existing key in place.
    """
    payload: dict[str, Any] = {
        "stream_id": chunk.stream_id,
        "seq": chunk.seq,
        "text": chunk.text,
        "done": chunk.done,
        "meta": chunk.meta,
    }
    if extra:
        payload.update(extra)
    return json.dumps(payload, ensure_ascii=False)


async def stream_flow(
    flow: Any,
    parent_msg: Any,
    *,
    to: Any = None,
    timeout: float | None = None,
    include_final: bool = False,
) -> AsyncIterator[Any]:
    """Emit ``parent_msg`` into a running flow and yield what reaches Rookery.

    Args:
        flow: a running ``PenguiFlow``; the caller stops it.
        parent_msg: the item to emit into OpenSea.
        to: optional ingress node(s), as for ``flow.emit``.
        timeout: bound (seconds) on each ``fetch``; ``TimeoutError`` propagates.
            Measured on the flow's clock when it has one.
        include_final: keep going after the ``done`` chunk and yield the first
            non-chunk payload too.

    Yields ``StreamChunk`` objects (unwrapped from their ``Message``) and ends at
    the first ``done`` chunk, or — with ``include_final`` — at the first
    non-chunk payload, which is yielded last. A non-chunk payload before any
    ``done`` chunk is yielded and ends the stream in both modes. Items are not
    filtered by trace id.
    """
    clock: Clock = getattr(flow, "clock", None) or SYSTEM_CLOCK
    await flow.emit(parent_msg, to=to)
    while True:
        if timeout is None:
            result = await flow.fetch()
        else:
            async with clock.timeout_at(clock.monotonic() + timeout):
                result = await flow.fetch()
        payload = result.payload if hasattr(result, "payload") else result
        if isinstance(payload, StreamChunk):
            yield payload
            if payload.done and not include_final:
                return
            continue
        yield payload
        return


def _default_adapter(event: Any) -> tuple[str, bool, dict[str, Any]]:
    return str(event), False, {}


async def emit_stream_events(
    source: AsyncIterable[Any],
    ctx: _ChunkEmitter,
    parent_msg: Message,
    *,
    adapter: EventAdapter | None = None,
    to: Any = None,
    final_meta: dict[str, Any] | None = None,
) -> None:
    """Forward a provider's async event stream into a flow as ``StreamChunk`` messages.

    Args:
        source: async iterable of provider events (e.g. LLM tokens).
        ctx: a node ``Context`` or a ``PenguiFlow`` (anything with ``emit_chunk``).
        parent_msg: the message the chunks belong to (trace, headers, meta).
        adapter: ``event -> (text, done, meta)``; defaults to ``(str(event), False, {})``.
        to: optional target(s), as for ``emit_chunk``.
        final_meta: ``meta`` of the closing chunk added when no event was ``done``.

    Each event becomes one ``emit_chunk`` call, in order, so sequence numbers
    follow the source order and backpressure reaches the source: the next event
    is not pulled until the previous chunk was accepted. If no event ended the
    stream, a final empty chunk with ``done=True`` closes it.
    """
    adapt = adapter if adapter is not None else _default_adapter
    finished = False
    async for event in source:
        text, done, meta = adapt(event)
        await ctx.emit_chunk(parent=parent_msg, text=text, done=done, meta=meta, to=to)
        finished = finished or done
    if not finished:
        await ctx.emit_chunk(parent=parent_msg, text="", done=True, meta=final_meta or {}, to=to)
