"""A flow served over MCP (``serve``) and called by the SDK's own client."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp_support import process_alive

from penguiflow import Message, Node, create
from penguiflow.testkit import EventRecorder
from penguiflow.tools.mcp import MCPToolset, serve

SAFETY_S = 30
SERVER = Path(__file__).with_name("mcp_flow_server.py")


@asynccontextmanager
async def stdio_flow(kind: str) -> AsyncIterator[Client]:
    params = StdioServerParameters(command=sys.executable, args=[str(SERVER), kind, "stdio"])
    async with Client(params) as client:
        yield client


@asynccontextmanager
async def http_flow(kind: str) -> AsyncIterator[Client]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(SERVER), kind, "http", stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stderr is not None
        line = (await proc.stderr.readline()).decode()
        assert line.startswith("READY http://127.0.0.1:"), line
        async with Client(line.split()[1]) as client:
            yield client
    finally:
        proc.kill()
        await proc.wait()


TRANSPORTS = [pytest.param(stdio_flow, id="stdio"), pytest.param(http_flow, id="http")]


@pytest.mark.parametrize("connect", TRANSPORTS)
async def test_the_flow_is_one_tool_with_a_text_input_by_default(connect: Any) -> None:
    async with asyncio.timeout(SAFETY_S), connect("shout") as client:
        (tool,) = (await client.list_tools()).tools
        assert tool.name == "shout"
        assert tool.input_schema["properties"] == {"text": {"type": "string"}}
        result = await client.call_tool("shout", {"text": "krill and fish"})
    assert not result.is_error
    assert result.content[0].text == "KRILL AND FISH"  # type: ignore[union-attr]


@pytest.mark.parametrize("connect", TRANSPORTS)
async def test_streamed_chunks_arrive_as_progress_notifications(connect: Any) -> None:
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async with asyncio.timeout(SAFETY_S), connect("shout") as client:
        await client.call_tool("shout", {"text": "a b c"}, progress_callback=on_progress)
    assert progress == [(1.0, "a"), (2.0, "b"), (3.0, "c")]


@pytest.mark.parametrize("connect", TRANSPORTS)
async def test_an_input_model_gives_the_schema_and_a_structured_result(connect: Any) -> None:
    async with asyncio.timeout(SAFETY_S), connect("model") as client:
        (tool,) = (await client.list_tools()).tools
        assert tool.input_schema["required"] == ["item"]
        result = await client.call_tool("model", {"item": "krill", "count": 2})
    assert result.structured_content == {"ordered": ["krill", "krill"]}


async def test_the_registry_model_of_the_ingress_node_is_the_default_schema() -> None:
    async with asyncio.timeout(SAFETY_S), stdio_flow("registry") as client:
        (tool,) = (await client.list_tools()).tools
        assert tool.input_schema["title"] == "Order"
        result = await client.call_tool("registry", {"item": "fish"})
    assert result.structured_content == {"ordered": ["fish"]}


async def test_arguments_breaking_the_schema_are_an_is_error_result() -> None:
    async with asyncio.timeout(SAFETY_S), stdio_flow("model") as client:
        result = await client.call_tool("model", {"count": "many"})
    assert result.is_error
    assert "'item' is a required property" in result.content[0].text  # type: ignore[union-attr]


async def test_a_failing_flow_answers_with_an_is_error_result() -> None:
    async with asyncio.timeout(SAFETY_S), stdio_flow("fail") as client:
        result = await client.call_tool("fail", {"text": "x"})
    assert result.is_error
    assert "cannot handle 'x'" in result.content[0].text  # type: ignore[union-attr]


async def test_a_served_flow_is_usable_as_an_mcp_toolset() -> None:
    argv = [sys.executable, str(SERVER), "shout", "stdio"]
    async with asyncio.timeout(SAFETY_S), MCPToolset.stdio(argv, prefix="remote.") as ts:
        assert ts.tool_names == ["remote.shout"]
        assert (await ts.call("remote.shout", {"text": "hi"})).value == "HI"


# -- in-process: what the flow sees --------------------------------------------------


async def test_a_call_cancelled_by_the_client_cancels_the_trace() -> None:
    started = asyncio.Event()
    seen: list[str] = []

    async def wait_forever(msg: Message, ctx: Any) -> Message:
        seen.append(msg.trace_id)
        started.set()
        await asyncio.Event().wait()
        return msg

    recorder = EventRecorder()
    flow = create(Node(wait_forever, name="wait").to(), middlewares=[recorder])
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve(flow, name="wait", transport="http", port=0, on_ready=ready.set_result)
    )
    try:
        async with asyncio.timeout(SAFETY_S):
            async with Client(await ready) as client:
                call = asyncio.create_task(client.call_tool("wait", {"text": "x"}))
                await started.wait()
                call.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await call
                events = await recorder.wait_for("trace_cancel_finish", trace_id=seen[0])
                assert events
    finally:
        server.cancel()
        await asyncio.wait({server})
    assert server.cancelled()


async def test_serve_stops_the_flow_it_runs() -> None:
    async def echo(msg: Message, ctx: Any) -> Message:
        return msg

    flow = create(Node(echo, name="echo").to())
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve(flow, name="echo", transport="http", port=0, on_ready=ready.set_result)
    )
    async with asyncio.timeout(SAFETY_S):
        async with Client(await ready) as client:
            result = await client.call_tool("echo", {"text": "same"})
            assert result.content[0].text == "same"  # type: ignore[union-attr]
        assert flow.supervisor is not None
        server.cancel()
        await asyncio.wait({server})
    assert flow.supervisor is None  # stopped


async def test_serve_rejects_an_unknown_transport() -> None:
    flow = create(Node(lambda_node, name="n").to())
    with pytest.raises(ValueError, match="transport"):
        await serve(flow, name="n", transport="ws")  # type: ignore[arg-type]


async def lambda_node(msg: Message, ctx: Any) -> Message:
    return msg


def test_process_alive_sees_this_process() -> None:
    import os

    assert process_alive(os.getpid())


# -- in-process over HTTP: the same flows, measured by coverage ------------------------


@asynccontextmanager
async def served(kind: str) -> AsyncIterator[Client]:
    from mcp_flow_server import build

    flow, options = build(kind)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve(flow, name=kind, transport="http", port=0, on_ready=ready.set_result, **options)
    )
    try:
        async with Client(await ready) as client:
            yield client
    finally:
        server.cancel()
        await asyncio.wait({server})


async def test_in_process_registry_schema_and_structured_result() -> None:
    async with asyncio.timeout(SAFETY_S), served("registry") as client:
        (tool,) = (await client.list_tools()).tools
        assert tool.input_schema["title"] == "Order"
        result = await client.call_tool("registry", {"item": "fish", "count": 2})
    assert result.structured_content == {"ordered": ["fish", "fish"]}
    assert result.content[0].text == '{"ordered": ["fish", "fish"]}'  # type: ignore[union-attr]


async def test_in_process_bad_arguments_and_unknown_tool_are_is_error_results() -> None:
    async with asyncio.timeout(SAFETY_S), served("model") as client:
        bad = await client.call_tool("model", {"item": 3})
        unknown = await client.call_tool("other", {})
    assert bad.is_error
    assert "is not of type 'string'" in bad.content[0].text  # type: ignore[union-attr]
    assert unknown.is_error
    assert "unknown tool 'other'" in unknown.content[0].text  # type: ignore[union-attr]


async def test_in_process_a_flow_error_is_an_is_error_result() -> None:
    async with asyncio.timeout(SAFETY_S), served("fail") as client:
        result = await client.call_tool("fail", {"text": "x"})
    assert result.is_error
    assert "NODE_EXCEPTION" in result.content[0].text  # type: ignore[union-attr]


async def test_in_process_bare_chunks_and_payloads_are_routed_by_trace() -> None:
    progress: list[str | None] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with asyncio.timeout(SAFETY_S), served("bare") as client:
        calls = [
            client.call_tool("bare", {"text": f"t{i}"}, progress_callback=on_progress)
            for i in range(3)
        ]
        results = await asyncio.gather(*calls)
    assert sorted(r.content[0].text for r in results) == ["T0", "T1", "T2"]  # type: ignore[union-attr]
    assert progress == ["bare", "bare", "bare"]


class BrokenFlow:
    """A flow whose Rookery fails, as a run whose supervisor escalated does."""

    edges: tuple[Any, ...] = ()

    def __init__(self) -> None:
        self.stopped = False
        self.emitted = asyncio.Event()

    def run(self, *, registry: Any = None) -> None:
        pass

    async def emit(self, msg: Any) -> None:
        self.emitted.set()

    async def fetch_traced(self) -> Any:
        await self.emitted.wait()
        raise RuntimeError("run failed")

    async def cancel(self, trace_id: str) -> bool:
        return False

    async def stop(self) -> None:
        self.stopped = True


async def test_a_failed_flow_answers_every_call_with_an_error_instead_of_hanging() -> None:
    flow = BrokenFlow()
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    server = asyncio.create_task(
        serve(flow, name="broken", transport="http", port=0, on_ready=ready.set_result)
    )
    try:
        async with asyncio.timeout(SAFETY_S), Client(await ready) as client:
            first = await client.call_tool("broken", {"text": "a"})
            later = await client.call_tool("broken", {"text": "b"})
    finally:
        server.cancel()
        await asyncio.wait({server})
    for result in (first, later):
        assert result.is_error
        assert "failed: run failed" in result.content[0].text  # type: ignore[union-attr]
    assert flow.stopped
