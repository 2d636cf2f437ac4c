"""``serve``: a flow exposed as one MCP tool, over stdio or streamable HTTP.

Built on the SDK's low-level ``Server`` (its ``MCPServer`` configures logging,
which a library must not do). One dispatcher task is the only consumer of
``flow.fetch_traced()`` and routes each delivery to the call that emitted its
trace; a streamed chunk becomes a progress notification, the first other item
is the call's result. A call cancelled by the client cancels its trace.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ValidationError

from penguiflow._logging import get_logger
from penguiflow.errors import FlowError, ToolArgumentsInvalid
from penguiflow.tools.mcp._schema import ArgumentsValidator
from penguiflow.types import Headers, Message, StreamChunk

if TYPE_CHECKING:
    from mcp.server.lowlevel import Server
    from mcp.types import CallToolRequestParams, CallToolResult

__all__ = ["serve"]

_log = get_logger("penguiflow.tools.mcp")

_TEXT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}


class _FetchFailed:
    """Put in every waiting inbox when ``flow.fetch_traced()`` itself failed."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Router:
    """Routes Rookery deliveries to the call waiting for their trace."""

    def __init__(self, flow: Any) -> None:
        self._flow = flow
        self._inboxes: dict[str, asyncio.Queue[Any]] = {}
        self._failure: _FetchFailed | None = None

    def open(self, trace_id: str) -> asyncio.Queue[Any]:
        inbox: asyncio.Queue[Any] = asyncio.Queue()
        if self._failure is not None:
            inbox.put_nowait(self._failure)
        self._inboxes[trace_id] = inbox
        return inbox

    def close(self, trace_id: str) -> None:
        self._inboxes.pop(trace_id, None)

    async def run(self) -> None:
        try:
            await self._route()
        except Exception as exc:
            # The run failed (e.g. its supervisor escalated): no answer will come, so
            # every waiting and later call gets an error instead of hanging.
            _log.error("mcp_serve_fetch_failed", error=repr(exc))
            self._failure = _FetchFailed(exc)
            for inbox in self._inboxes.values():
                inbox.put_nowait(self._failure)

    async def _route(self) -> None:
        while True:
            delivery = await self._flow.fetch_traced()
            inbox = self._inboxes.get(delivery.trace_id) if delivery.trace_id else None
            if inbox is None:
                # A late item of a cancelled or finished call: nobody waits for it.
                _log.warning("mcp_serve_unrouted_item", trace_id=delivery.trace_id)
                continue
            inbox.put_nowait(delivery.item)


def _chunk_of(item: Any) -> StreamChunk | None:
    if isinstance(item, StreamChunk):
        return item
    payload = getattr(item, "payload", None)
    return payload if isinstance(payload, StreamChunk) else None


def _input_schema(flow: Any, registry: Any, input_model: type[BaseModel] | None) -> Any:
    """The tool's input: ``input_model``, the registry's ingress model, else ``{text}``."""
    if input_model is not None:
        return input_model
    if registry is not None:
        for edge in flow.edges:
            # The ingress endpoint (OpenSea) is the edge source without a node function.
            if getattr(edge.source, "name", None) == "OpenSea" and not hasattr(edge.source, "func"):
                try:
                    model, _ = registry.models(edge.target.name)
                except KeyError:
                    continue
                return model
    return None


def _result(payload: Any) -> CallToolResult:
    from mcp.types import CallToolResult, TextContent

    if isinstance(payload, FlowError):
        return CallToolResult(content=[TextContent(type="text", text=str(payload))], is_error=True)
    if isinstance(payload, BaseModel):
        payload = payload.model_dump(mode="json")
    if isinstance(payload, str):
        return CallToolResult(content=[TextContent(type="text", text=payload)])
    text = json.dumps(payload, ensure_ascii=False, default=str)
    structured = dict(payload) if isinstance(payload, Mapping) else None
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structured_content=structured
    )


def _error(text: str) -> CallToolResult:
    from mcp.types import CallToolResult, TextContent

    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


def _build_server(
    flow: Any,
    router: _Router,
    *,
    name: str,
    description: str | None,
    model: type[BaseModel] | None,
    tenant: str,
) -> Server[Any]:
    import anyio
    from mcp.server.lowlevel import Server
    from mcp.types import ListToolsResult, Tool

    schema = model.model_json_schema() if model is not None else dict(_TEXT_SCHEMA)
    validator = ArgumentsValidator(schema, tool=name, server=name)
    tool = Tool(name=name, description=description or f"Run the {name} flow.", input_schema=schema)

    async def list_tools(ctx: Any, params: Any) -> ListToolsResult:
        return ListToolsResult(tools=[tool])

    async def call_tool(ctx: Any, params: CallToolRequestParams) -> CallToolResult:
        if params.name != name:
            return _error(f"unknown tool {params.name!r}")
        try:
            arguments = validator.validate(params.arguments or {})
            payload: Any = (
                model.model_validate(arguments) if model is not None else arguments["text"]
            )
        except (ToolArgumentsInvalid, ValidationError) as exc:
            return _error(str(exc))
        message = Message(payload=payload, headers=Headers(tenant=tenant))
        trace_id = message.trace_id
        inbox = router.open(trace_id)
        try:
            await flow.emit(message)
            while True:
                item = await inbox.get()
                if isinstance(item, _FetchFailed):
                    return _error(f"the flow behind {name!r} failed: {item.error}")
                chunk = _chunk_of(item)
                if chunk is None:
                    payload = item.payload if isinstance(item, Message) else item
                    return _result(payload)
                await ctx.session.report_progress(float(chunk.seq + 1), None, chunk.text)
        except BaseException:
            # anyio cancellation is level-triggered: shield the cancel of our trace.
            with anyio.CancelScope(shield=True):
                await flow.cancel(trace_id)
            raise
        finally:
            router.close(trace_id)

    return Server(
        name,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        get_tool_input_schema=lambda tool_name: schema if tool_name == name else None,
    )


async def serve(
    flow: Any,
    *,
    name: str,
    transport: Literal["stdio", "http"] = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    input_model: type[BaseModel] | None = None,
    registry: Any = None,
    description: str | None = None,
    tenant: str = "mcp",
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve ``flow`` as an MCP tool named ``name`` until cancelled (or stdin closes).

    ``serve`` runs the flow (``flow.run(registry=registry)``) and stops it on the
    way out. Each call emits one ``Message`` (``headers.tenant`` = ``tenant``)
    whose payload is the validated ``input_model`` instance, or the ``text``
    argument; the tool's result is the first non-chunk item the trace delivers
    (a ``FlowError`` becomes an ``isError`` result). ``StreamChunk`` items
    become progress notifications (``progress`` = ``seq + 1``, ``message`` = the
    text); a call the client cancels cancels its trace.

    Args:
        transport: ``"stdio"`` (this process's stdin/stdout) or ``"http"``
            (streamable HTTP at ``http://host:port/mcp``).
        port: ``0`` picks a free port; ``on_ready`` receives the URL.
        input_model: the input schema; default: the registry's model for the
            ingress node, else an object with one ``text`` string.
        on_ready: called once listening, with the URL (``"stdio"`` for stdio).

    .. versionadded:: 3.0
    """
    if transport not in ("stdio", "http"):
        raise ValueError(f"transport must be 'stdio' or 'http', not {transport!r}")
    model = _input_schema(flow, registry, input_model)
    router = _Router(flow)
    server = _build_server(
        flow, router, name=name, description=description, model=model, tenant=tenant
    )
    flow.run(registry=registry)
    dispatcher = asyncio.get_running_loop().create_task(
        router.run(), name=f"penguiflow.tools.mcp serve {name}"
    )
    try:
        if transport == "stdio":
            await _serve_stdio(server, on_ready)
        else:
            await _serve_http(server, host, port, on_ready)
    finally:
        dispatcher.cancel()
        await asyncio.wait({dispatcher})
        await flow.stop()


# pragma: no cover: it owns this process's stdin/stdout, so the tests run it only in a
# child process started by the SDK with a minimal environment (coverage cannot follow).
async def _serve_stdio(  # pragma: no cover
    server: Server[Any], on_ready: Callable[[str], None] | None
) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        if on_ready is not None:
            on_ready("stdio")
        await server.run(read_stream, write_stream, server.create_initialization_options())


async def _serve_http(
    server: Server[Any], host: str, port: int, on_ready: Callable[[str], None] | None
) -> None:
    import uvicorn

    app = server.streamable_http_app(host=host)
    # log_config=None: a library leaves logging configuration to the application.
    config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="on")
    uv = uvicorn.Server(config)
    # Bound and listening before on_ready: early clients wait in the backlog.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    bound = sock.getsockname()[1]
    running = asyncio.get_running_loop().create_task(uv.serve(sockets=[sock]))
    try:
        if on_ready is not None:
            on_ready(f"http://{host}:{bound}/mcp")
        await asyncio.wait({running})
        running.result()
    finally:
        uv.should_exit = True
        await asyncio.wait({running})
        sock.close()
