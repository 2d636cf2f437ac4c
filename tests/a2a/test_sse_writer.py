"""SSEWriter: frames, heartbeats while idle, and noticing a client that left."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from penguiflow_a2a._http import SSEWriter


class RecordingWriter(SSEWriter):
    """Records frames instead of writing to a socket; can play a departed client."""

    def __init__(self, *, heartbeat_s: float | None, gone_after: int | None = None) -> None:
        super().__init__(None, heartbeat_s=heartbeat_s)  # type: ignore[arg-type]
        self.frames: list[bytes] = []
        self.pinged = asyncio.Event()
        self._gone_after = gone_after

    async def write(self, frame: bytes) -> bool:
        if self._gone_after is not None and len(self.frames) >= self._gone_after:
            return False
        self.frames.append(frame)
        if frame.startswith(b":"):
            self.pinged.set()
        return True


async def frames(*items: bytes, wait_for: asyncio.Event | None = None) -> AsyncIterator[bytes]:
    for index, item in enumerate(items):
        if index == 1 and wait_for is not None:
            await wait_for.wait()
        yield item


async def pump(writer: SSEWriter, source: AsyncIterator[bytes]) -> bool:
    async with asyncio.timeout(5):
        return await writer.pump(source)


async def test_pump_writes_every_frame_without_heartbeat() -> None:
    writer = RecordingWriter(heartbeat_s=None)
    assert await pump(writer, frames(b"a", b"b"))
    assert writer.frames == [b"a", b"b"]


async def test_pump_sends_a_comment_while_the_source_is_idle() -> None:
    writer = RecordingWriter(heartbeat_s=0.001)
    # The second frame comes only after a heartbeat was written.
    assert await pump(writer, frames(b"a", b"b", wait_for=writer.pinged))
    assert writer.frames[0] == b"a"
    assert b": ping\n\n" in writer.frames
    assert writer.frames[-1] == b"b"


async def test_pump_stops_when_the_client_is_gone() -> None:
    writer = RecordingWriter(heartbeat_s=None, gone_after=1)
    assert not await pump(writer, frames(b"a", b"b"))
    writer = RecordingWriter(heartbeat_s=0.001, gone_after=1)
    assert not await pump(writer, frames(b"a", b"b"))


async def test_pump_stops_when_a_heartbeat_finds_the_client_gone() -> None:
    never = asyncio.Event()
    writer = RecordingWriter(heartbeat_s=0.001, gone_after=1)
    closed = asyncio.Event()

    async def source() -> AsyncIterator[bytes]:
        try:
            yield b"a"
            await never.wait()
            yield b"b"
        finally:
            closed.set()

    assert not await pump(writer, source())
    async with asyncio.timeout(5):
        await closed.wait()  # the pending read was cancelled
    assert writer.frames == [b"a"]


async def test_write_reports_a_closed_connection_as_false() -> None:
    class Broken:
        async def write(self, frame: bytes) -> Any:
            raise ConnectionResetError

        async def write_eof(self) -> Any:
            raise ConnectionResetError

    writer = SSEWriter(None, heartbeat_s=None)  # type: ignore[arg-type]
    writer.response = Broken()  # type: ignore[assignment]
    assert not await writer.write(b"x")
    await writer.finish()  # best effort: no error
