"""Tools from the ecosystem: external tool servers as planner tools and flow nodes.

Each integration is a subpackage loaded on first use (``penguiflow.tools.mcp``
needs the ``mcp`` extra); importing ``penguiflow`` or this package loads none.
"""

from __future__ import annotations

__all__: list[str] = []
