"""aiohttp plumbing shared by the routes: bounded JSON bodies and SSE responses.

Imported only by the app factory (it needs aiohttp).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from typing import Any

from aiohttp import web

from penguiflow._time import SYSTEM_CLOCK, Clock

from ._body import DEFAULT_MAX_DEPTH, BodyError, decode_json

__all__ = [
    "BODY_TIMEOUT_KEY",
    "SSEWriter",
    "close_if_timed_out",
    "read_json",
    "stream_subscription",
]

#: ``(timeout_s or None, clock)`` for ``read_json``, set on the app by ``create_a2a_app``.
BODY_TIMEOUT_KEY = web.AppKey("penguiflow_a2a.body_timeout", tuple)
# Marks a request whose body did not arrive in time (see close_if_timed_out).
_TIMED_OUT = web.RequestKey("penguiflow_a2a.body_timed_out", bool)


def _is_json(content_type: str) -> bool:
    return content_type.endswith(("/json", "+json")) or content_type == "application/json-rpc"


async def read_json(request: web.Request, *, limit: int, max_depth: int = DEFAULT_MAX_DEPTH) -> Any:
    """Read at most ``limit`` bytes of body and decode them with ``decode_json``.

    Every route reads its body here, so every route refuses the same things
    the same way, before any work starts.

    The whole body must arrive within the app's body timeout
    (``BODY_TIMEOUT_KEY``, read on the app's clock): a client trickling bytes,
    or one whose broken chunking aiohttp never reports to the handler, does
    not hold the handler open.

    Raises:
        BodyError: oversized body, a non-JSON content type, a body cut short,
            one not received in time (``"timeout"``), or one ``decode_json``
            refuses.
    """
    if request.content_length is not None and request.content_length > limit:
        raise BodyError("too_large", f"request body exceeds {limit} bytes")
    # As FastAPI did in 2.2.5: no Content-Type means JSON; otherwise a JSON type.
    if "Content-Type" in request.headers and not _is_json(request.content_type):
        raise BodyError("content_type", f"unsupported content type {request.content_type!r}")
    timeout_s, clock = request.config_dict.get(BODY_TIMEOUT_KEY, (None, SYSTEM_CLOCK))
    raw = bytearray()
    try:
        async with _deadline(clock, timeout_s):
            # Read in pieces so a chunked body without Content-Length is bounded too.
            async for piece in request.content.iter_chunked(64 * 1024):
                raw += piece
                if len(raw) > limit:
                    raise BodyError("too_large", f"request body exceeds {limit} bytes")
    except TimeoutError:
        request[_TIMED_OUT] = True
        raise BodyError("timeout", f"request body not received within {timeout_s:g} s") from None
    except (web.RequestPayloadError, ConnectionError) as exc:
        # The client broke the chunked framing, or closed the connection
        # before the body was complete (nobody may read that answer): never a
        # 500, and no work starts.
        raise BodyError("malformed", "request body is incomplete") from exc
    return decode_json(bytes(raw), max_depth=max_depth)


def _deadline(clock: Clock, timeout_s: float | None) -> asyncio.Timeout:
    if timeout_s is None:
        return asyncio.timeout(None)
    return clock.timeout_at(clock.monotonic() + timeout_s)


async def close_if_timed_out(request: web.Request, response: web.StreamResponse) -> None:
    """Send ``response`` now and close the connection if the body timed out.

    The rest of such a body may never come, so aiohttp's lingering read of it
    (up to ten seconds) would keep the connection: the reply goes out with
    ``Connection: close`` and the transport closes once it is flushed.
    """
    if not request.get(_TIMED_OUT) or response.prepared:
        return
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()


class SSEWriter:
    """Write server-sent events to one client until it leaves.

    Args:
        request: the aiohttp request being answered.
        heartbeat_s: while no event is ready for this long, send an SSE
            comment; a write on a closed connection is how a client that left
            is noticed when the server cannot cancel the handler. ``None``:
            never.
    """

    def __init__(self, request: web.Request, *, heartbeat_s: float | None) -> None:
        self._request = request
        self._heartbeat_s = heartbeat_s
        self.response = web.StreamResponse(status=200)

    async def open(self, headers: dict[str, str]) -> None:
        """Send the status line and headers."""
        self.response.headers.update(headers)
        await self.response.prepare(self._request)

    async def write(self, frame: bytes) -> bool:
        """Send one frame; ``False`` when the client is gone."""
        try:
            await self.response.write(frame)
        except (ConnectionError, RuntimeError):
            # aiohttp raises ConnectionResetError (or RuntimeError on a closed
            # payload writer) once the peer disconnected.
            return False
        return True

    async def pump(self, source: AsyncIterator[bytes]) -> bool:
        """Write every frame of ``source``; ``False`` if the client left first.

        The caller closes ``source`` afterwards (that is what releases its work).
        """
        iterator = aiter(source)
        if self._heartbeat_s is None:
            async for frame in iterator:
                if not await self.write(frame):
                    return False
            return True
        pending: asyncio.Future[bytes] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(iterator))
                done, _ = await asyncio.wait({pending}, timeout=self._heartbeat_s)
                if not done:
                    # Nothing to say yet: a comment line probes the connection.
                    if not await self.write(b": ping\n\n"):
                        return False
                    continue
                finished, pending = pending, None
                try:
                    frame = finished.result()
                except StopAsyncIteration:
                    return True
                if not await self.write(frame):
                    return False
        finally:
            if pending is not None:
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending

    async def finish(self) -> None:
        """End the response (best effort: the client may be gone)."""
        try:
            await self.response.write_eof()
        except (ConnectionError, RuntimeError):
            return


async def stream_subscription(
    request: web.Request,
    queue: asyncio.Queue[Any],
    *,
    first: bytes,
    frame: Callable[[Any], bytes],
    unsubscribe: Callable[[], None],
    heartbeat_s: float | None,
) -> web.StreamResponse:
    """Serve one task subscription as SSE: ``first``, then ``frame(event)`` until ``None``.

    Shared by the JSON-RPC and REST bindings. The task keeps running without this
    client (it can resubscribe); only the subscription goes away when the stream ends.
    """

    async def frames() -> AsyncGenerator[bytes, None]:
        yield first
        while (event := await queue.get()) is not None:
            yield frame(event)

    writer = SSEWriter(request, heartbeat_s=heartbeat_s)
    source = frames()
    try:
        await writer.open({"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await writer.pump(source)
    finally:
        unsubscribe()
        await source.aclose()
    await writer.finish()
    return writer.response
