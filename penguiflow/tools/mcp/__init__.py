"""MCP (Model Context Protocol): MCP servers' tools in PenguiFlow, and flows as MCP servers.

``MCPToolset`` connects to a server (stdio or streamable HTTP) and offers its tools
as catalog ``NodeSpec`` records for ``ReactPlanner`` and as flow ``Node`` objects;
``serve`` exposes a flow as one MCP tool. Needs the official SDK:
``pip install "penguiflow[mcp]"``.

.. versionadded:: 3.0
"""

from __future__ import annotations

try:
    import mcp as _mcp  # noqa: F401  (fail here, with the fix, rather than mid-call)
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'penguiflow.tools.mcp needs the MCP SDK: pip install "penguiflow[mcp]"'
    ) from exc

from penguiflow.tools.mcp._serve import serve
from penguiflow.tools.mcp._toolset import MCPToolset, ToolResult, ToolsetStatistics

__all__ = ["MCPToolset", "ToolResult", "ToolsetStatistics", "serve"]
