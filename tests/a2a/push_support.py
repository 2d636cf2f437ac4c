"""A local webhook receiver for the push-notification tests (aiohttp on 127.0.0.1).

It records every POST (headers and JSON body), can be told to answer the
next N requests with an error status, to hold requests until released, or
to be down (its port refuses connections).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass(frozen=True)
class Received:
    """One POST the receiver saw (also the refused ones)."""

    headers: dict[str, str]
    body: Any
    status: int


class Receiver:
    """Records webhook POSTs on ``url``; ``await wait_for(n)`` for the n-th accepted one."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.fail_statuses: list[int] = []
        self.hold: asyncio.Event | None = None
        self.in_flight = 0
        self.max_in_flight = 0
        self.arrived = asyncio.Event()
        self._changed = asyncio.Condition()
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        app.router.add_post("/moved", self._moved)
        self._server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return str(self._server.make_url("/hook"))

    @property
    def port(self) -> int:
        assert self._server.port is not None
        return self._server.port

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if r.status == 200]

    def bodies(self) -> list[Any]:
        return [r.body for r in self.accepted]

    def fail_next(self, count: int, status: int = 503) -> None:
        self.fail_statuses.extend([status] * count)

    async def start(self) -> None:
        await self._server.start_server()

    async def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        await self._server.close()

    async def wait_for(self, count: int, *, timeout: float = 5.0) -> list[Received]:
        """Wait until ``count`` POSTs were accepted; return them."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.accepted) >= count)
        return self.accepted

    async def _hook(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.arrived.set()
        try:
            if self.hold is not None:
                await self.hold.wait()
            body = await request.json()
            status = self.fail_statuses.pop(0) if self.fail_statuses else 200
            self.requests.append(Received(dict(request.headers), body, status))
            async with self._changed:
                self._changed.notify_all()
            return web.json_response({}, status=status)
        finally:
            self.in_flight -= 1

    async def _moved(self, request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(location="/hook")


def free_port() -> int:
    """A port on 127.0.0.1 nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
