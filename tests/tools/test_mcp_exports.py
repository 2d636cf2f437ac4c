"""The public names of penguiflow.tools.mcp and the tool errors."""

from __future__ import annotations

import penguiflow.errors as errors
import penguiflow.tools
import penguiflow.tools.mcp as mcp_tools


def test_the_mcp_package_exports_exactly_these_names() -> None:
    assert mcp_tools.__all__ == ["MCPToolset", "ToolResult", "ToolsetStatistics", "serve"]
    assert penguiflow.tools.__all__ == []


def test_the_tool_errors_form_one_branch_of_the_hierarchy() -> None:
    assert issubclass(errors.ToolError, errors.PenguiFlowError)
    branch = {
        errors.ToolNotFound: LookupError,
        errors.ToolArgumentsInvalid: ValueError,
        errors.ToolCallError: errors.ToolError,
        errors.ToolTimeout: TimeoutError,
        errors.ToolUnavailable: errors.ToolError,
    }
    for error, extra_base in branch.items():
        assert issubclass(error, errors.ToolError)
        assert issubclass(error, extra_base)
        assert error.__name__ in errors.__all__


def test_tool_errors_carry_their_context() -> None:
    error = errors.ToolUnavailable("down", tool="t", server="s", retryable=False)
    assert (error.tool, error.server, error.retryable) == ("t", "s", False)
    invalid = errors.ToolArgumentsInvalid("bad", errors=[{"path": "a", "message": "m"}])
    assert invalid.errors == [{"path": "a", "message": "m"}]
    assert errors.ToolCallError("x", content="why").content == "why"
