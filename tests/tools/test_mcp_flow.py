"""MCP tools as flow nodes: payload in, result out, failures under NodePolicy."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from mcp_support import process_alive

from penguiflow import FlowError, Headers, Message, NodePolicy, create
from penguiflow.errors import ToolArgumentsInvalid, ToolCallError, ToolUnavailable
from penguiflow.supervision import RestartBackoff
from penguiflow.testkit import EventRecorder
from penguiflow.tools.mcp import MCPToolset

SAFETY_S = 30
FAST = RestartBackoff(min_s=0.01, max_s=0.05, jitter=0.0)


def message(payload: Any) -> Message:
    return Message(payload=payload, headers=Headers(tenant="t"))


@pytest.fixture
async def toolset(arith_argv: list[str]) -> Any:
    async with asyncio.timeout(SAFETY_S):
        async with MCPToolset.stdio(arith_argv, timeout_s=20, backoff=FAST) as ts:
            yield ts


async def run_one(flow: Any, msg: Message) -> Any:
    flow.run()
    try:
        async with asyncio.timeout(SAFETY_S):
            await flow.emit(msg)
            return await flow.fetch()
    finally:
        await flow.stop()


async def test_a_tool_node_returns_the_message_with_the_result_as_payload(
    toolset: MCPToolset,
) -> None:
    add = toolset.node("add")
    sent = message({"a": 40, "b": 2})
    out = await run_one(create(add.to()), sent)
    assert out.payload == {"result": 42}
    assert out.trace_id == sent.trace_id
    assert add.name == "add"


async def test_a_node_of_a_text_tool_passes_the_text_on(toolset: MCPToolset) -> None:
    out = await run_one(create(toolset.node("shout").to()), message({"text": "krill"}))
    assert out.payload == "KRILL"


async def test_two_tool_nodes_chain_through_a_flow(toolset: MCPToolset) -> None:
    add, shout = toolset.node("add"), toolset.node("shout")

    # add's result is {"result": n}; shout wants {"text": ...}: an adapter node between.
    from penguiflow import Node

    async def to_text(msg: Message, ctx: Any) -> Message:
        return msg.model_copy(update={"payload": {"text": f"sum {msg.payload['result']}"}})

    adapter = Node(to_text, name="to_text")
    flow = create(add.to(adapter), adapter.to(shout), shout.to())
    out = await run_one(flow, message({"a": 1, "b": 2}))
    assert out.payload == "SUM 3"


async def test_a_server_killed_mid_call_is_retried_by_the_node_policy(
    toolset: MCPToolset, tmp_path: Path
) -> None:
    recorder = EventRecorder()
    node = toolset.node("die_once", policy=NodePolicy(max_retries=2, backoff_base=0.01))
    flow = create(node.to(), middlewares=[recorder])
    out = await run_one(flow, message({"marker": str(tmp_path / "m")}))
    assert out.payload == {"result": "survived"}
    assert len(recorder.of_type("node_retry")) == 1  # the lost connection, then success
    assert recorder.of_type("node_failed") == []
    assert toolset.statistics().incarnation == 2


@pytest.mark.parametrize(
    ("tool", "payload", "error"),
    [
        pytest.param("refuse", {"reason": "no"}, ToolCallError, id="is-error"),
        pytest.param("add", {"a": "x", "b": 1}, ToolArgumentsInvalid, id="bad-arguments"),
    ],
)
async def test_a_failed_call_emits_node_failed_and_a_flow_error(
    toolset: MCPToolset, tool: str, payload: dict[str, Any], error: type[Exception]
) -> None:
    recorder = EventRecorder()
    flow = create(toolset.node(tool).to(), middlewares=[recorder], emit_errors_to_rookery=True)
    out = await run_one(flow, message(payload))
    assert isinstance(out, FlowError)
    assert isinstance(out.unwrap(), error)
    assert len(recorder.of_type("node_failed")) == 1


async def test_stopping_the_flow_closes_the_session_and_ends_the_process(
    arith_argv: list[str],
) -> None:
    ts = MCPToolset.stdio(arith_argv, prefix="calc.")
    node = ts.node("pid")  # built before the toolset starts: looked up per call
    assert node.name == "calc.pid"
    flow = create(node.to())
    flow.run()
    try:
        async with asyncio.timeout(SAFETY_S):
            await ts.start(supervisor=flow.supervisor)
            await flow.emit(message({}))
            pid = int((await flow.fetch()).payload["result"])
            assert process_alive(pid)
    finally:
        await flow.stop()
    assert not process_alive(pid)
    with pytest.raises(ToolUnavailable) as caught:
        await ts.call("pid")
    assert caught.value.retryable is False
    await ts.close()
