"""A tiny MCP server (official SDK) the example starts as a child process over stdio."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

app = MCPServer("colony", log_level="WARNING")

_COUNTS = {"emperor": 12, "adelie": 30}


@app.tool()
def count(species: str) -> int:
    """How many penguins of ``species`` live in the colony."""
    if species not in _COUNTS:
        raise ToolError(f"unknown species {species!r}; known: {sorted(_COUNTS)}")
    return _COUNTS[species]


@app.tool()
def feed(penguins: int, fish_each: int) -> int:
    """Fish needed to feed ``penguins`` penguins ``fish_each`` fish each."""
    return penguins * fish_each


if __name__ == "__main__":
    app.run()
