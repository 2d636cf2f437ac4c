"""MCPToolset against a real MCP server (official SDK) run as a child process."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp_support import HttpServer, process_alive

from penguiflow.errors import (
    PenguiFlowError,
    ToolArgumentsInvalid,
    ToolCallError,
    ToolError,
    ToolNotFound,
    ToolTimeout,
    ToolUnavailable,
)
from penguiflow.supervision import RestartBackoff
from penguiflow.tools.mcp import MCPToolset

FAST = RestartBackoff(min_s=0.01, max_s=0.05, jitter=0.0)
SAFETY_S = 30


async def server_pid(toolset: MCPToolset) -> int:
    return int((await toolset.call("pid")).value["result"])


@pytest.fixture
async def toolset(arith_argv: list[str]) -> Any:
    async with asyncio.timeout(SAFETY_S):
        async with MCPToolset.stdio(arith_argv, timeout_s=20, backoff=FAST) as ts:
            yield ts


# -- discovery ---------------------------------------------------------------------


async def test_stdio_discovery_lists_every_tool_with_its_schema(toolset: MCPToolset) -> None:
    assert toolset.tool_names[:3] == ["add", "mul", "shout"]
    schema = toolset.tool("add").input_schema
    assert schema["required"] == ["a", "b"]
    assert schema["properties"]["a"]["type"] == "integer"


async def test_tools_filter_and_prefix_rename_the_exposed_tools(arith_argv: list[str]) -> None:
    async with asyncio.timeout(SAFETY_S):
        async with MCPToolset.stdio(arith_argv, tools=["add", "mul"], prefix="calc.") as ts:
            assert ts.tool_names == ["calc.add", "calc.mul"]
            assert (await ts.call("calc.add", {"a": 2, "b": 3})).value == {"result": 5}
            # The server's own name resolves too.
            assert (await ts.call("mul", {"a": 2, "b": 3})).value == {"result": 6}
            with pytest.raises(ToolNotFound):
                await ts.call("shout", {"text": "filtered out"})


async def test_a_filter_naming_an_unlisted_tool_fails_start(arith_argv: list[str]) -> None:
    ts = MCPToolset.stdio(arith_argv, tools=["add", "no_such_tool"])
    async with asyncio.timeout(SAFETY_S):
        with pytest.raises(ToolNotFound, match="no_such_tool"):
            await ts.start()
        with pytest.raises(ToolUnavailable):
            await ts.call("add", {"a": 1, "b": 1})


async def test_a_toolset_that_is_not_started_says_so(arith_argv: list[str]) -> None:
    with pytest.raises(ToolNotFound, match="not started"):
        await MCPToolset.stdio(arith_argv).call("add", {"a": 1, "b": 1})


async def test_a_toolset_starts_only_once(toolset: MCPToolset) -> None:
    with pytest.raises(ToolError, match="already started"):
        await toolset.start()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"timeout_s": 0}, "timeout_s", id="timeout"),
        pytest.param({"max_concurrency": 0}, "max_concurrency", id="concurrency"),
    ],
)
def test_bad_options_are_rejected(arith_argv: list[str], kwargs: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MCPToolset.stdio(arith_argv, **kwargs)


def test_stdio_needs_an_executable() -> None:
    with pytest.raises(ValueError, match="argv"):
        MCPToolset.stdio([])


# -- calls -------------------------------------------------------------------------


async def test_structured_content_is_the_value(toolset: MCPToolset) -> None:
    result = await toolset.call("add", {"a": 1, "b": 2})
    assert result.value == {"result": 3}
    assert result.text == "3"


async def test_text_is_the_value_when_the_tool_gives_no_structured_content(
    toolset: MCPToolset,
) -> None:
    result = await toolset.call("shout", {"text": "hi"})
    assert (result.structured, result.value) == (None, "HI")


async def test_arguments_breaking_the_schema_raise_before_anything_is_sent(
    toolset: MCPToolset,
) -> None:
    with pytest.raises(ToolArgumentsInvalid) as caught:
        await toolset.call("add", {"a": "one"})
    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, PenguiFlowError)
    assert (error.tool, error.server) == ("add", toolset.name)
    assert {e["path"] for e in error.errors} == {"", "a"}  # b missing, a not an integer
    assert "'b' is a required property" in str(error)


async def test_arguments_must_be_an_object(toolset: MCPToolset) -> None:
    with pytest.raises(ToolArgumentsInvalid, match="must be an object"):
        await toolset.call("add", ["a", "b"])  # type: ignore[arg-type]


async def test_an_is_error_result_raises_tool_call_error_with_the_text(
    toolset: MCPToolset,
) -> None:
    with pytest.raises(ToolCallError) as caught:
        await toolset.call("refuse", {"reason": "no"})
    assert caught.value.content.endswith("refused: no")
    # The session is unharmed.
    assert (await toolset.call("add", {"a": 1, "b": 1})).value == {"result": 2}


async def test_a_call_past_timeout_s_raises_tool_timeout(arith_argv: list[str]) -> None:
    async with asyncio.timeout(SAFETY_S):
        async with MCPToolset.stdio(arith_argv, timeout_s=0.2) as ts:
            with pytest.raises(ToolTimeout) as caught:
                await ts.call("hang")
            assert isinstance(caught.value, TimeoutError)
            assert (await ts.call("add", {"a": 1, "b": 1})).value == {"result": 2}


async def test_an_unknown_tool_raises_tool_not_found(toolset: MCPToolset) -> None:
    with pytest.raises(ToolNotFound) as caught:
        await toolset.call("nope")
    assert isinstance(caught.value, LookupError)


# -- concurrency -------------------------------------------------------------------


async def test_max_concurrency_bounds_the_calls_in_flight(http_server: HttpServer) -> None:
    async with asyncio.timeout(SAFETY_S):
        async with (
            MCPToolset.http(http_server.url, max_concurrency=2) as bounded,
            MCPToolset.http(http_server.url) as control,
        ):
            holds = [asyncio.create_task(bounded.call("hold")) for _ in range(3)]
            # Two holds reach the server; the third waits for a slot on our side.
            while (await control.call("holding")).value["result"] < 2:
                pass
            while bounded.statistics().calls_queued < 1:
                await asyncio.sleep(0)
            stats = bounded.statistics()
            assert (stats.calls_in_flight, stats.calls_queued) == (2, 1)
            await control.call("release")
            peaks = [(await hold).value["result"] for hold in holds]
            assert max(peaks) == 2


# -- supervision -------------------------------------------------------------------


async def test_a_killed_server_fails_the_call_in_flight_and_the_session_restarts(
    toolset: MCPToolset,
) -> None:
    first = await server_pid(toolset)
    hanging = asyncio.create_task(toolset.call("hang"))
    while toolset.statistics().calls_in_flight < 1:
        await asyncio.sleep(0)
    os.kill(first, signal.SIGKILL)
    with pytest.raises(ToolUnavailable) as caught:
        await hanging
    assert caught.value.retryable is True
    assert "lost" in str(caught.value)
    # The next call waits for the restarted session, on a new process.
    second = await server_pid(toolset)
    assert second != first
    assert toolset.statistics().incarnation == 2
    assert not process_alive(first)


@pytest.mark.slow  # starts several server processes
async def test_calls_made_while_restarting_wait_for_the_new_session(
    arith_argv: list[str], tmp_path: Path
) -> None:
    slow = RestartBackoff(min_s=0.3, max_s=0.3, jitter=0.0)
    async with asyncio.timeout(SAFETY_S):
        async with MCPToolset.stdio(arith_argv, backoff=slow, timeout_s=20) as ts:
            with pytest.raises(ToolUnavailable):
                await ts.call("die_once", {"marker": str(tmp_path / "m")})
            assert not ts.statistics().connected  # backing off
            waiting = [asyncio.create_task(ts.call("add", {"a": i, "b": 0})) for i in range(3)]
            assert [(await w).value["result"] for w in waiting] == [0, 1, 2]


async def test_waiting_for_a_restart_counts_against_timeout_s(
    arith_argv: list[str], tmp_path: Path
) -> None:
    slow = RestartBackoff(min_s=5.0, max_s=5.0, jitter=0.0)
    async with asyncio.timeout(SAFETY_S):
        async with MCPToolset.stdio(arith_argv, backoff=slow, timeout_s=0.2) as ts:
            with pytest.raises(ToolUnavailable):
                await ts.call("die_once", {"marker": str(tmp_path / "m")})
            with pytest.raises(ToolTimeout):
                await ts.call("add", {"a": 1, "b": 1})


@pytest.mark.slow  # starts several server processes
async def test_restart_intensity_exceeded_fails_calls_for_good(
    arith_argv: list[str], tmp_path: Path
) -> None:
    env = {"ARITH_LAUNCHES": str(tmp_path / "launches"), "ARITH_MAX_LAUNCHES": "1"}
    ts = MCPToolset.stdio(arith_argv, env=env, backoff=FAST, intensity=2, period=60)
    async with asyncio.timeout(SAFETY_S):
        async with ts:
            with pytest.raises(ToolUnavailable) as lost:
                await ts.call("die_once", {"marker": str(tmp_path / "m")})
            assert lost.value.retryable
            # Every relaunch exits at once; past two restarts the toolset gives up.
            with pytest.raises(ToolUnavailable) as gone:
                await ts.call("add", {"a": 1, "b": 1})
            assert gone.value.retryable is False
            assert "restarts exhausted" in str(gone.value)
            assert gone.value.__cause__ is not None
    # The first launch, then two restarts (each exits); the third crash exceeds intensity=2.
    assert int((tmp_path / "launches").read_text()) == 3


async def test_a_server_that_cannot_start_fails_start(tmp_path: Path) -> None:
    script = tmp_path / "broken.py"
    script.write_text("import sys; sys.exit(2)\n")
    ts = MCPToolset.stdio([sys.executable, str(script)], backoff=FAST, intensity=1)
    async with asyncio.timeout(SAFETY_S):
        with pytest.raises(ToolUnavailable) as caught:
            await ts.start()
    assert caught.value.retryable is False


async def test_start_waits_at_most_timeout_s_for_the_first_session(tmp_path: Path) -> None:
    script = tmp_path / "silent.py"
    # Reads stdin forever and never answers the handshake.
    script.write_text("import sys\nfor _ in sys.stdin:\n    pass\n")
    ts = MCPToolset.stdio([sys.executable, str(script)], connect_timeout_s=0.3)
    async with asyncio.timeout(SAFETY_S):
        with pytest.raises(ToolUnavailable, match="not connected within"):
            await ts.start()


# -- shutdown ----------------------------------------------------------------------


async def test_closing_ends_the_server_process_and_leaks_no_task(arith_argv: list[str]) -> None:
    before = asyncio.all_tasks()
    async with asyncio.timeout(SAFETY_S):
        async with MCPToolset.stdio(arith_argv) as ts:
            pid = await server_pid(ts)
            assert process_alive(pid)
    assert not process_alive(pid)
    assert asyncio.all_tasks() == before
    with pytest.raises(ToolUnavailable) as caught:
        await ts.call("add", {"a": 1, "b": 1})
    assert caught.value.retryable is False
    await ts.close()  # idempotent


async def test_closing_after_restarts_leaves_no_process(
    toolset: MCPToolset, tmp_path: Path
) -> None:
    first = await server_pid(toolset)
    with pytest.raises(ToolUnavailable):
        await toolset.call("die_once", {"marker": str(tmp_path / "m")})
    second = await server_pid(toolset)
    await toolset.close()
    assert not process_alive(first)
    assert not process_alive(second)


def test_importing_penguiflow_does_not_import_the_mcp_sdk() -> None:
    code = (
        "import sys, penguiflow, penguiflow.tools, penguiflow.errors;"
        "from penguiflow import ReactPlanner, PenguiFlow;"
        "assert 'mcp' not in sys.modules, 'mcp imported';"
        "import penguiflow.tools.mcp;"
        "assert 'mcp' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- HTTP --------------------------------------------------------------------------


async def test_http_discovery_call_and_bearer_token(http_server: HttpServer) -> None:
    async with asyncio.timeout(SAFETY_S):
        async with MCPToolset.http(
            http_server.url, headers={"X-Trace": "1"}, bearer_token="s3cret"
        ) as ts:
            assert "add" in ts.tool_names
            assert (await ts.call("add", {"a": 20, "b": 22})).value == {"result": 42}
            header = (await ts.call("authorization")).value["result"]
            assert header == "Bearer s3cret"


@pytest.mark.slow  # starts several server processes
async def test_a_dropped_http_connection_is_restarted(http_server: HttpServer) -> None:
    async with asyncio.timeout(SAFETY_S):
        async with MCPToolset.http(http_server.url, backoff=FAST, intensity=100) as ts:
            await http_server.kill()
            with pytest.raises(ToolUnavailable) as caught:
                await ts.call("add", {"a": 1, "b": 1})
            assert caught.value.retryable
            await http_server.start()  # same port
            assert (await ts.call("add", {"a": 1, "b": 1})).value == {"result": 2}
            assert (ts.statistics().incarnation or 0) >= 2
