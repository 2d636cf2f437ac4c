"""A tiny MCP server (official SDK) for the MCP tests: stdio by default, ``--http`` for HTTP.

With ``--http [PORT]`` it binds 127.0.0.1 (port 0: any free port), prints
``PORT <n>`` on stdout once listening, and serves streamable HTTP at ``/mcp``.
``ARITH_LAUNCHES`` (a file path) counts launches; with ``ARITH_MAX_LAUNCHES`` set,
a launch past that count exits at once (a server that cannot come back).
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

app = MCPServer("arith", log_level="WARNING")
_held = {"active": 0, "peak": 0}
_release = asyncio.Event()


@app.tool(annotations=ToolAnnotations(read_only_hint=True))
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@app.tool()
def mul(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@app.tool(structured_output=False)
def shout(text: str) -> str:
    """Upper-case a text (no output schema: the result is text)."""
    return text.upper()


@app.tool()
def refuse(reason: str) -> str:
    """Always fails with ``reason`` (an ``isError`` result)."""
    raise ToolError(f"refused: {reason}")


@app.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@app.tool()
def die_once(marker: str) -> str:
    """Exit the process the first time (creating ``marker``); answer afterwards."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died")
        os._exit(3)
    return "survived"


@app.tool()
async def hang() -> str:
    """Never answers."""
    await asyncio.Event().wait()
    return "unreachable"


@app.tool()
async def hold() -> int:
    """Wait until ``release`` is called; returns the peak number of concurrent holds."""
    _held["active"] += 1
    _held["peak"] = max(_held["peak"], _held["active"])
    try:
        await _release.wait()
    finally:
        _held["active"] -= 1
    return _held["peak"]


@app.tool()
def holding() -> int:
    """How many ``hold`` calls are waiting now."""
    return _held["active"]


@app.tool()
def release() -> int:
    """Let every ``hold`` call finish."""
    _release.set()
    return _held["active"]


@app.tool()
def authorization(ctx: Context) -> str:
    """The Authorization header of this HTTP request ('' on stdio)."""
    headers = ctx.headers or {}
    return headers.get("authorization", "")


def _count_launch() -> None:
    counter = os.environ.get("ARITH_LAUNCHES")
    if not counter:
        return
    path = Path(counter)
    launches = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(launches))
    limit = os.environ.get("ARITH_MAX_LAUNCHES")
    if limit is not None and launches > int(limit):
        sys.exit(1)


async def _serve_http(port: int) -> None:
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(64)
    sock.setblocking(False)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app.streamable_http_app(), log_level="warning")
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    _count_launch()
    if "--http" in sys.argv:
        rest = sys.argv[sys.argv.index("--http") + 1 :]
        asyncio.run(_serve_http(int(rest[0]) if rest else 0))
    else:
        app.run()
