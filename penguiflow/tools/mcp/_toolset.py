"""``MCPToolset``: the tools of one MCP server, for the planner and for flows.

The connection is a supervised actor (``_session.py``); this module holds the
user-facing half: construction per transport, discovery, argument validation,
the per-call timeout and concurrency bound, and turning results into values.

It stays one module past ~400 lines: one class and its per-transport
constructors; the connection already lives apart.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from penguiflow._logging import get_logger
from penguiflow._time import SYSTEM_CLOCK, Clock
from penguiflow.errors import (
    Escalated,
    ToolCallError,
    ToolError,
    ToolNotFound,
    ToolTimeout,
    ToolUnavailable,
)
from penguiflow.supervision import ChildSpec, RestartBackoff, Supervisor
from penguiflow.tools.mcp._schema import ArgumentsValidator, args_model, result_model
from penguiflow.tools.mcp._session import (
    LiveSession,
    SessionActor,
    SessionPort,
    is_connection_error,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from mcp import Client
    from mcp.types import CallToolResult, Tool

    from penguiflow.catalog import NodeSpec
    from penguiflow.node import Node, NodePolicy

__all__ = ["MCPToolset", "ToolResult", "ToolsetStatistics"]

_log = get_logger("penguiflow.tools.mcp")
_serial = itertools.count(1)

# The MCP SDK's HTTP defaults: a server may hold a response stream open for long.
_HTTP_TIMEOUT_S = 30.0
_HTTP_READ_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What a successful tool call returned.

    ``value`` is what nodes pass on: ``structured`` when the tool gave structured
    content, else ``text`` (every text block joined by newlines).

    .. versionadded:: 3.0
    """

    tool: str
    text: str
    structured: dict[str, Any] | None
    raw: CallToolResult

    @property
    def value(self) -> Any:
        """``structured`` if present, else ``text``."""
        return self.structured if self.structured is not None else self.text


@dataclass(frozen=True, slots=True)
class _Tool:
    """A discovered tool: its server name, exposed name and compiled validator."""

    remote: str
    name: str
    spec: Tool
    validator: ArgumentsValidator


def _text_of(result: CallToolResult) -> str:
    from mcp.types import TextContent

    return "\n".join(block.text for block in result.content if isinstance(block, TextContent))


class MCPToolset:
    """The tools of one MCP server, as catalog entries and as flow nodes.

    Build one with ``MCPToolset.stdio(argv)`` or ``MCPToolset.http(url)``, then
    ``async with toolset:`` (or ``await toolset.start()``) connects and lists the
    tools. The session runs as a supervised actor: when the server process dies
    or the connection drops, calls in flight fail with a retryable
    ``ToolUnavailable``, the supervisor reconnects after a backoff delay, and
    later calls use the new session. Closing ends the session and a stdio
    server's process.

    Keyword options (both constructors):
        tools: names to expose (default: every tool the server lists).
        timeout_s: bound on one call, waiting for a (re)connection included;
            past it the call raises ``ToolTimeout``. ``None``: no bound.
        max_concurrency: calls in flight to this server at once (``None``: unbounded).
        prefix: prepended to every exposed tool name (``"fs."`` gives ``fs.read``),
            to keep several servers' tools apart in one catalog or flow.
        connect_timeout_s: bound on ``start()`` waiting for the first session.
        name: the server's name in logs and errors (default: derived from the target).
        backoff: delay between reconnection attempts.
        intensity, period: more than ``intensity`` reconnections within ``period``
            seconds make the toolset give up; every call then raises a
            non-retryable ``ToolUnavailable``.
        clock: time source for timeouts and backoff (the testkit's ``FakeClock`` in tests).

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        connect: Callable[[], Client],
        *,
        name: str,
        tools: Sequence[str] | None = None,
        timeout_s: float | None = None,
        max_concurrency: int | None = None,
        prefix: str = "",
        connect_timeout_s: float | None = 30.0,
        backoff: RestartBackoff | None = None,
        intensity: int = 3,
        period: float = 30.0,
        clock: Clock | None = None,
    ) -> None:
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError("timeout_s must be > 0 or None")
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1 or None")
        self.name = name
        self.prefix = prefix
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.max_concurrency = max_concurrency
        self._filter = None if tools is None else frozenset(tools)
        self._backoff = backoff if backoff is not None else RestartBackoff(min_s=0.1, max_s=5.0)
        self._intensity = intensity
        self._period = period
        self._clock = clock
        self._port = SessionPort(connect, server=name)
        self._limit = asyncio.Semaphore(max_concurrency) if max_concurrency else None
        self._tools: dict[str, _Tool] = {}
        self._queued = 0  # calls waiting for a concurrency slot
        self._in_flight = 0  # calls holding a slot (waiting for a session or an answer)
        self._supervisor: Supervisor | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._closed = False

    # -- construction -------------------------------------------------------------

    @classmethod
    def stdio(
        cls,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        **options: Any,
    ) -> MCPToolset:
        """A toolset over a server started as a child process speaking MCP on stdio.

        ``argv[0]`` is the executable; ``env`` adds variables to the SDK's safe
        default environment (``PATH``, ``HOME``, ...). A new process is started for
        every (re)connection and ended when the session ends.
        """
        if not argv:
            raise ValueError("argv must name the server executable")
        from mcp import Client, StdioServerParameters

        params = StdioServerParameters(
            command=argv[0], args=list(argv[1:]), env=dict(env) if env is not None else None
        )
        options.setdefault("name", str(argv[-1]))

        def connect() -> Client:
            return Client(params)

        return cls(connect, **options)

    @classmethod
    def http(
        cls,
        url: str,
        headers: Mapping[str, str] | None = None,
        bearer_token: str | None = None,
        **options: Any,
    ) -> MCPToolset:
        """A toolset over a server at ``url`` speaking streamable HTTP.

        ``bearer_token`` adds ``Authorization: Bearer <token>`` to ``headers``.
        """
        from mcp import Client

        sent = dict(headers or {})
        if bearer_token is not None:
            sent["Authorization"] = f"Bearer {bearer_token}"
        options.setdefault("name", url)

        def connect() -> Client:
            return Client(_http_transport(url, sent))

        return cls(connect, **options)

    # -- lifecycle ----------------------------------------------------------------

    async def __aenter__(self) -> MCPToolset:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self, *, supervisor: Supervisor | None = None) -> None:
        """Connect and list the tools; returns once the first session is live.

        With ``supervisor`` (such as a running flow's ``flow.supervisor``) the
        toolset's own supervisor becomes its child, so stopping that supervisor
        (``await flow.stop()``) also closes the session and ends the server process.

        Raises:
            ToolUnavailable: the server could not be reached within the restart
                limit (or ``connect_timeout_s``).
            ToolNotFound: ``tools=`` names a tool the server does not list.
            ToolError: the toolset was already started (or closed).

        The tool list is read once, from the first session; a reconnection keeps it.
        """
        if self._supervisor is not None or self._closed:
            raise ToolError(
                f"toolset {self.name!r} was already started or closed", server=self.name
            )
        port = self._port
        own = Supervisor(
            "one_for_one",
            self._intensity,
            self._period,
            name=f"mcp {self.name}",
            clock=self._clock,
            # The SDK's stdio teardown may take a few seconds (stdin close, SIGTERM, SIGKILL).
            kill_grace=10.0,
        )
        self._supervisor = own
        session = ChildSpec(
            id="session",
            start=lambda: SessionActor(port),
            shutdown=0,  # cancel the running session at once; the SDK teardown is shielded
            backoff=self._backoff,
        )
        if supervisor is not None:
            await supervisor.start_child(
                ChildSpec(
                    id=f"mcp-{self.name}-{next(_serial)}",
                    start=lambda: own,
                    restart="temporary",
                    shutdown=None,
                )
            )
        await own.start_child(session)
        self._watcher = asyncio.get_running_loop().create_task(
            self._watch(own), name=f"penguiflow.tools.mcp watcher {self.name}"
        )
        try:
            deadline = None
            if self.connect_timeout_s is not None:
                deadline = self.clock.monotonic() + self.connect_timeout_s
            live = await self._wait_live(None, deadline, self.connect_timeout_s)
            self._index(live)
        except BaseException:
            await self.close()
            raise

    async def _watch(self, supervisor: Supervisor) -> None:
        """Hear the supervisor end: give up (restarts exhausted) or closed."""
        try:
            await supervisor.wait()
        except Escalated as exc:
            _log.error("mcp_session_gave_up", server=self.name, error=repr(exc.cause))
            self._port.fail(exc.cause or exc)
            return
        self._port.fail(self._closed_error())

    async def close(self) -> None:
        """End the session (and a stdio server's process); idempotent."""
        self._closed = True
        self._port.close()
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            await supervisor.stop()
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await asyncio.wait({watcher})
        self._port.fail(self._closed_error())

    def _closed_error(self) -> ToolUnavailable:
        return ToolUnavailable(
            f"MCP toolset {self.name!r} is closed", server=self.name, retryable=False
        )

    # -- discovery ----------------------------------------------------------------

    def _index(self, live: LiveSession) -> None:
        listed = {tool.name: tool for tool in live.tools}
        if self._filter is not None:
            missing = sorted(self._filter - listed.keys())
            if missing:
                raise ToolNotFound(
                    f"MCP server {self.name!r} lists no tool {', '.join(missing)}",
                    tool=missing[0],
                    server=self.name,
                )
        tools: dict[str, _Tool] = {}
        for remote, spec in listed.items():
            if self._filter is not None and remote not in self._filter:
                continue
            name = self.prefix + remote
            validator = ArgumentsValidator(spec.input_schema, tool=name, server=self.name)
            tools[name] = _Tool(remote, name, spec, validator)
        self._tools = tools

    @property
    def tool_names(self) -> list[str]:
        """The exposed (prefixed) names of the tools, in the server's order."""
        return list(self._tools)

    def tool(self, name: str) -> Tool:
        """The ``mcp.types.Tool`` listed for ``name`` (prefixed or not).

        Raises:
            ToolNotFound: no such tool.
        """
        return self._find(name).spec

    def _find(self, name: str) -> _Tool:
        if self._closed:
            raise self._closed_error()
        found = self._tools.get(name) or self._tools.get(self.prefix + name)
        if found is None:
            if self._supervisor is None:
                raise ToolNotFound(
                    f"toolset {self.name!r} is not started: use 'async with toolset:'",
                    tool=name,
                    server=self.name,
                )
            raise ToolNotFound(
                f"MCP server {self.name!r} has no tool {name!r}", tool=name, server=self.name
            )
        return found

    def node_specs(self) -> list[NodeSpec]:
        """One catalog ``NodeSpec`` per tool, for ``ReactPlanner(catalog=...)``.

        ``args_model`` validates with the tool's JSON schema and shows it to the
        model verbatim; ``out_model`` has the tool's output schema (or
        ``{"text": ...}``). A call the tool answers with ``isError`` raises
        ``ToolCallError``, which the planner records as a failed step the model
        reads and can recover from.
        """
        from penguiflow.catalog import NodeSpec
        from penguiflow.node import Node

        specs: list[NodeSpec] = []
        for tool in self._tools.values():
            specs.append(
                NodeSpec(
                    node=Node(self._planner_func(tool.name), name=tool.name),
                    name=tool.name,
                    desc=tool.spec.description or tool.spec.title or tool.name,
                    args_model=args_model(tool.validator, tool.name),
                    out_model=result_model(tool.spec.output_schema, tool.name),
                    side_effects=_side_effects(tool.spec),
                    tags=("mcp",),
                    extra={"mcp_server": self.name, "mcp_tool": tool.remote},
                )
            )
        return specs

    def _planner_func(self, name: str) -> Callable[[Any, Any], Any]:
        async def call_tool(args: Any, ctx: Any) -> Any:
            result = await self.call(name, _as_arguments(args))
            return result.structured if result.structured is not None else {"text": result.text}

        call_tool.__name__ = name
        return call_tool

    def node(self, tool_name: str, *, policy: NodePolicy | None = None) -> Node:
        """A flow ``Node`` calling ``tool_name``: payload in, the tool's result out.

        The node takes a ``Message`` whose payload is the arguments (a dict, or a
        pydantic model dumped to one) and returns the message with ``payload``
        set to the result's ``value`` (structured content, else text). Every
        failure raises, so ``policy`` retries apply and ``node_failed`` is
        emitted: ``ToolArgumentsInvalid``, ``ToolCallError`` (``isError``),
        ``ToolTimeout`` and ``ToolUnavailable``. ``policy`` defaults to
        ``NodePolicy(validate="none")``: the tool's schema is checked here.

        The tool is looked up at call time, so nodes can be built before the
        toolset starts (to start it under the running flow's supervisor); the
        node's name is the exposed (prefixed) tool name.
        """
        from penguiflow.node import Node, NodePolicy

        name = tool_name if tool_name.startswith(self.prefix) else self.prefix + tool_name

        async def call_tool(message: Any, ctx: Any) -> Any:
            payload = getattr(message, "payload", message)
            result = await self.call(name, _as_arguments(payload))
            if hasattr(message, "model_copy") and hasattr(message, "payload"):
                return message.model_copy(update={"payload": result.value})
            return result.value

        call_tool.__name__ = name
        return Node(call_tool, name=name, policy=policy or NodePolicy(validate="none"))

    # -- calls --------------------------------------------------------------------

    def _deadline(self) -> float | None:
        if self.timeout_s is None:
            return None
        return self.clock.monotonic() + self.timeout_s

    @property
    def clock(self) -> Clock:
        """The clock bounding calls (the system clock unless one was given)."""
        return self._clock or SYSTEM_CLOCK

    async def _wait_live(
        self, tool: str | None, deadline: float | None, seconds: float | None
    ) -> LiveSession:
        if deadline is None:
            return await self._port.wait_live(tool)
        scope = self.clock.timeout_at(deadline)
        try:
            async with scope:
                return await self._port.wait_live(tool)
        except TimeoutError as exc:
            if not scope.expired():
                raise
            raise ToolUnavailable(
                f"MCP server {self.name!r} not connected within {seconds}s",
                tool=tool,
                server=self.name,
            ) from exc

    async def call(self, name: str, arguments: Mapping[str, Any] | None = None) -> ToolResult:
        """Call one tool and return its result.

        Arguments are validated first; the call then waits (within ``timeout_s``)
        for a free concurrency slot and a live session.

        Raises:
            ToolNotFound: no such tool.
            ToolArgumentsInvalid: arguments break the tool's input schema (not sent).
            ToolCallError: the tool answered with ``isError``.
            ToolTimeout: no answer within ``timeout_s``.
            ToolUnavailable: the connection was lost (``retryable``) or the toolset
                gave up or closed (not retryable).
            ToolError: the server rejected the request (an MCP protocol error).
        """
        tool = self._find(name)
        checked = tool.validator.validate(arguments if arguments is not None else {})
        deadline = self._deadline()
        if deadline is None:
            return await self._call(tool, checked)
        scope = self.clock.timeout_at(deadline)
        try:
            async with scope:
                return await self._call(tool, checked)
        except TimeoutError as exc:
            if not scope.expired():
                raise
            raise ToolTimeout(
                f"tool {tool.name!r} did not answer within {self.timeout_s}s",
                tool=tool.name,
                server=self.name,
            ) from exc

    async def _call(self, tool: _Tool, arguments: dict[str, Any]) -> ToolResult:
        if self._limit is not None:
            self._queued += 1
            try:
                await self._limit.acquire()
            finally:
                self._queued -= 1
        self._in_flight += 1
        try:
            return await self._send(tool, arguments)
        finally:
            self._in_flight -= 1
            if self._limit is not None:
                self._limit.release()

    async def _send(self, tool: _Tool, arguments: dict[str, Any]) -> ToolResult:
        from mcp import MCPError

        live = await self._port.wait_live(tool.name)
        try:
            result = await live.client.call_tool(tool.remote, arguments)
        except Exception as exc:
            if is_connection_error(exc):
                self._port.report_lost(live, exc)
                raise ToolUnavailable(
                    f"connection to MCP server {self.name!r} lost during {tool.name!r}: {exc}",
                    tool=tool.name,
                    server=self.name,
                ) from exc
            if isinstance(exc, MCPError):
                raise ToolError(
                    f"MCP server {self.name!r} rejected {tool.name!r}: {exc}",
                    tool=tool.name,
                    server=self.name,
                ) from exc
            raise
        text = _text_of(result)
        if result.is_error:
            raise ToolCallError(
                f"tool {tool.name!r} failed: {text}", tool=tool.name, server=self.name, content=text
            )
        structured = result.structured_content
        return ToolResult(tool=tool.name, text=text, structured=structured, raw=result)

    def statistics(self) -> ToolsetStatistics:
        """A snapshot: connection, session incarnation, tools, calls queued and in flight."""
        live = self._port.live
        return ToolsetStatistics(
            connected=live is not None,
            incarnation=live.incarnation if live is not None else None,
            tools=len(self._tools),
            calls_in_flight=self._in_flight,
            calls_queued=self._queued,
        )


@dataclass(frozen=True, slots=True)
class ToolsetStatistics:
    """``MCPToolset.statistics()``.

    .. versionadded:: 3.0
    """

    connected: bool
    incarnation: int | None
    tools: int
    calls_in_flight: int
    calls_queued: int


def _as_arguments(payload: Any) -> Any:
    if isinstance(payload, BaseModel):
        return payload.model_dump(mode="json")
    return payload


def _side_effects(tool: Tool) -> Any:
    hints = tool.annotations
    if hints is None:
        return "external"
    if hints.read_only_hint:
        return "read"
    return "external"


@asynccontextmanager
async def _http_transport(url: str, headers: dict[str, str]) -> AsyncIterator[Any]:
    """Streamable HTTP with our headers; the httpx client lives as long as the session."""
    import httpx2
    from mcp.client.streamable_http import streamable_http_client

    timeout = httpx2.Timeout(_HTTP_TIMEOUT_S, read=_HTTP_READ_TIMEOUT_S)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams
