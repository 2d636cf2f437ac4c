"""ReactPlanner calling MCP tools (a scripted model; the tools are a real MCP server)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pydantic import ValidationError

from penguiflow.errors import ToolArgumentsInvalid
from penguiflow.planner import ReactPlanner
from penguiflow.tools.mcp import MCPToolset

SAFETY_S = 30


class ScriptedLLM:
    """Replies with the next scripted action and records every prompt."""

    def __init__(self, actions: Sequence[Mapping[str, Any]]) -> None:
        self.actions = list(actions)
        self.prompts: list[list[dict[str, str]]] = []

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        self.prompts.append([dict(m) for m in messages])
        return json.dumps(self.actions.pop(0))


def call(node: str, **args: Any) -> dict[str, Any]:
    return {"thought": f"use {node}", "next_node": node, "args": args}


def finish(**answer: Any) -> dict[str, Any]:
    return {"thought": "done", "next_node": None, "args": answer}


@pytest.fixture
async def toolset(arith_argv: list[str]) -> Any:
    async with asyncio.timeout(SAFETY_S):
        async with MCPToolset.stdio(
            arith_argv, tools=["add", "mul", "refuse"], prefix="calc.", timeout_s=20
        ) as ts:
            yield ts


async def test_a_planner_run_calls_two_mcp_tools(toolset: MCPToolset) -> None:
    llm = ScriptedLLM([call("calc.add", a=2, b=3), call("calc.mul", a=5, b=7), finish(answer=35)])
    planner = ReactPlanner(llm_client=llm, catalog=toolset.node_specs())
    async with asyncio.timeout(SAFETY_S):
        result = await planner.run("(2 + 3) * 7?")
    assert result.reason == "answer_complete"
    steps = result.metadata["steps"]
    assert [s["observation"] for s in steps] == [{"result": 5}, {"result": 35}]


async def test_the_prompt_shows_each_tool_with_its_mcp_schema(toolset: MCPToolset) -> None:
    llm = ScriptedLLM([finish(answer="none needed")])
    await ReactPlanner(llm_client=llm, catalog=toolset.node_specs()).run("hi")
    system = llm.prompts[0][0]["content"]
    assert "calc.add" in system
    assert "Add two integers." in system
    assert toolset.tool("add").input_schema["title"] in system  # the server's own schema


async def test_arguments_breaking_the_schema_go_through_the_repair_path(
    toolset: MCPToolset,
) -> None:
    llm = ScriptedLLM([call("calc.add", a="two"), call("calc.add", a=2, b=2), finish(answer=4)])
    planner = ReactPlanner(llm_client=llm, catalog=toolset.node_specs())
    async with asyncio.timeout(SAFETY_S):
        result = await planner.run("2 + 2?")
    steps = result.metadata["steps"]
    assert steps[0]["observation"] is None
    assert "'two' is not of type 'integer'" in steps[0]["error"]
    assert steps[1]["observation"] == {"result": 4}
    # The model saw the schema error before its second try.
    assert "'two' is not of type 'integer'" in json.dumps(llm.prompts[1])


async def test_an_is_error_result_is_a_failed_step_the_run_survives(
    toolset: MCPToolset,
) -> None:
    llm = ScriptedLLM([call("calc.refuse", reason="policy"), finish(answer="gave up")])
    planner = ReactPlanner(llm_client=llm, catalog=toolset.node_specs())
    async with asyncio.timeout(SAFETY_S):
        result = await planner.run("try")
    assert result.reason == "answer_complete"
    step = result.metadata["steps"][0]
    assert "refused: policy" in step["error"]
    assert step["failure"]["error_code"] == "ToolCallError"


async def test_the_args_model_validates_with_the_json_schema(toolset: MCPToolset) -> None:
    spec = next(s for s in toolset.node_specs() if s.name == "calc.add")
    assert spec.args_model.model_validate({"a": 1, "b": 2}).model_dump() == {"a": 1, "b": 2}
    with pytest.raises(ValidationError) as caught:
        spec.args_model.model_validate({"a": 1})
    assert "'b' is a required property" in str(caught.value)
    assert spec.to_tool_record()["args_schema"] == toolset.tool("add").input_schema
    assert spec.to_tool_record()["out_schema"] == toolset.tool("add").output_schema
    assert spec.side_effects == "read"  # the server's readOnlyHint
    assert spec.extra == {"mcp_server": toolset.name, "mcp_tool": "add"}
    assert isinstance(ToolArgumentsInvalid("x"), ValueError)


async def test_a_tool_without_output_schema_answers_the_planner_with_text(
    arith_argv: list[str],
) -> None:
    async with asyncio.timeout(SAFETY_S):
        async with MCPToolset.stdio(arith_argv, tools=["shout"]) as ts:
            (spec,) = ts.node_specs()
            assert spec.out_model.model_json_schema()["required"] == ["text"]
            llm = ScriptedLLM([call("shout", text="hey"), finish(answer="ok")])
            result = await ReactPlanner(llm_client=llm, catalog=[spec]).run("shout")
    assert result.metadata["steps"][0]["observation"] == {"text": "HEY"}
