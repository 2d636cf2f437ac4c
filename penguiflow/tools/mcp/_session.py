"""The MCP session as a supervised actor, and the port callers reach it through.

One actor incarnation owns one connected ``mcp.Client``: it enters the client in
its own task (the SDK's anyio scopes must be entered and left in one task), lists
the tools, publishes the live session on the ``SessionPort`` and waits. Callers
use the published client from their own tasks; the SDK multiplexes concurrent
requests over one connection. A caller that sees the connection fail reports it
on the port; the incarnation then crashes on purpose, and its supervisor starts
a new one after the backoff delay. While no session is live, callers wait on the
port (bounded by their own timeout); once the supervisor gives up, they fail.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from penguiflow._logging import get_logger
from penguiflow.actors import Actor, ActorContext
from penguiflow.errors import PenguiFlowError, ToolUnavailable

if TYPE_CHECKING:
    from mcp import Client
    from mcp.types import Tool

__all__ = ["LiveSession", "SessionActor", "SessionLost", "SessionPort", "is_connection_error"]

_log = get_logger("penguiflow.tools.mcp")


@dataclass(frozen=True, slots=True)
class _Run:
    """The one message an incarnation sends itself: run the session.

    A crash redelivers the message being handled to the next incarnation; that
    one sends its own ``_Run``, so a stale one (older incarnation) is ignored.
    """

    incarnation: int


class SessionLost(PenguiFlowError):
    """Raised inside the session actor to crash it: the connection was lost.

    Never seen by callers (they get ``ToolUnavailable``); it makes the supervisor
    restart the session, and is the ``cause`` of ``Escalated`` when it gives up.
    """


@dataclass(eq=False)
class LiveSession:
    """One connected incarnation: its client, the tools it listed, how it ended."""

    client: Client
    tools: list[Tool]
    incarnation: int
    lost: asyncio.Event = field(default_factory=asyncio.Event)
    cause: BaseException | None = None


class SessionPort:
    """What the toolset and the session actor share (the actor gets nothing else).

    ``connect`` builds a fresh, unentered ``mcp.Client`` for each incarnation.
    """

    def __init__(self, connect: Callable[[], Client], *, server: str) -> None:
        self.connect = connect
        self.server = server
        self.closed = asyncio.Event()
        self._live: LiveSession | None = None
        self._failure: BaseException | None = None
        self._changed = asyncio.Event()

    @property
    def live(self) -> LiveSession | None:
        """The connected session now, if any."""
        return self._live

    def _wake(self) -> None:
        # Waiters hold the old event; a fresh one serves the next change.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def publish(self, live: LiveSession) -> None:
        """Called by an incarnation once connected and listed."""
        self._live = live
        self._wake()

    def retract(self, live: LiveSession) -> None:
        """Called by an incarnation as it ends: its session is no longer usable."""
        if self._live is live:
            self._live = None
            self._wake()

    def report_lost(self, live: LiveSession, cause: BaseException) -> None:
        """A caller saw ``live``'s connection fail: end that incarnation (idempotent)."""
        if live.cause is None:
            live.cause = cause
        live.lost.set()
        self.retract(live)

    def close(self) -> None:
        """The toolset is closing: end the live incarnation without a restart."""
        self.closed.set()
        live = self._live
        if live is not None:
            live.lost.set()

    def fail(self, cause: BaseException) -> None:
        """No session will come back (supervisor gave up, or the toolset closed)."""
        if self._failure is None:
            self._failure = cause
        self._live = None
        self._wake()

    def unavailable(self, tool: str | None = None) -> ToolUnavailable:
        """The error for a call that finds the port failed."""
        cause = self._failure
        if isinstance(cause, ToolUnavailable):
            message = str(cause)
        else:
            message = f"MCP server {self.server!r} is unavailable: restarts exhausted ({cause})"
        error = ToolUnavailable(message, tool=tool, server=self.server, retryable=False)
        error.__cause__ = cause
        return error

    async def wait_live(self, tool: str | None = None) -> LiveSession:
        """The live session, waiting while the supervisor restarts it.

        Raises:
            ToolUnavailable: the supervisor gave up or the toolset closed (not retryable).
        """
        while True:
            if self._failure is not None:
                raise self.unavailable(tool)
            if self._live is not None:
                return self._live
            await self._changed.wait()


async def _list_tools(client: Client) -> list[Tool]:
    tools: list[Tool] = []
    cursor: str | None = None
    # A bound on pages: a server whose cursor never ends cannot hang discovery.
    for _ in range(1000):
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if cursor is None:
            break
    return tools


class SessionActor(Actor):
    """One incarnation of the session: connect, list, publish, wait to be lost or closed.

    The whole session runs inside one ``receive`` (the SDK's scopes stay in the
    actor's task). Its child spec has ``shutdown=0``: stopping cancels that
    ``receive`` and the SDK's shielded teardown closes the connection and ends a
    stdio server process.
    """

    def __init__(self, port: SessionPort) -> None:
        self._port = port

    async def on_start(self, ctx: ActorContext) -> None:
        """Ask ourselves to run the session (``receive`` runs it)."""
        ctx.send_self(_Run(ctx.incarnation))

    async def receive(self, message: Any, ctx: ActorContext) -> Any:
        """Run the session until it is lost (crash: restart) or the toolset closes."""
        port = self._port
        stale = not isinstance(message, _Run) or message.incarnation != ctx.incarnation
        if stale or port.closed.is_set():
            return None
        async with AsyncExitStack() as stack:
            client = await stack.enter_async_context(port.connect())
            live = LiveSession(client, await _list_tools(client), ctx.incarnation)
            port.publish(live)
            if port.closed.is_set():
                live.lost.set()  # closed while we were connecting
            _log.info("mcp_session_connected", server=port.server, incarnation=ctx.incarnation)
            try:
                await live.lost.wait()
            finally:
                port.retract(live)
        if live.cause is not None:
            _log.warning(
                "mcp_session_lost",
                server=port.server,
                incarnation=ctx.incarnation,
                error=repr(live.cause),
            )
            raise SessionLost(f"MCP session to {port.server!r} lost") from live.cause
        return None


def is_connection_error(exc: BaseException) -> bool:
    """True for failures that mean the connection is gone (not a tool or protocol error)."""
    import anyio
    import httpx2
    from mcp import MCPError
    from mcp.types import CONNECTION_CLOSED

    if isinstance(exc, MCPError):
        return exc.code == CONNECTION_CLOSED
    return isinstance(
        exc,
        (
            anyio.ClosedResourceError,
            anyio.BrokenResourceError,
            anyio.EndOfStream,
            httpx2.TransportError,
            OSError,
        ),
    )
