"""MCP tools in PenguiFlow: a planner and a flow calling a local MCP server, offline.

Run from the repository root: ``python -m examples.mcp_tools.flow`` (needs
``pip install "penguiflow[mcp]"``). The example starts its own MCP server
(``server.py``, written with the official SDK) as a child process over stdio.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from penguiflow import Headers, Message, NodePolicy, create
from penguiflow.errors import ToolArgumentsInvalid
from penguiflow.planner import ReactPlanner
from penguiflow.tools.mcp import MCPToolset

SERVER = Path(__file__).with_name("server.py")


class ScriptedLLM:
    """A stand-in model replying with scripted actions (a ``JSONLLMClient``)."""

    def __init__(self, actions: Sequence[Mapping[str, Any]]) -> None:
        self._actions = list(actions)

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        print("  model sees:", messages[-1]["content"][:70])
        return json.dumps(self._actions.pop(0))


async def main() -> None:
    toolset = MCPToolset.stdio([sys.executable, str(SERVER)], prefix="colony.", timeout_s=10)
    async with toolset:
        print("tools:", toolset.tool_names)

        # 1. The planner: one NodeSpec per MCP tool, schemas shown to the model as-is.
        llm = ScriptedLLM(
            [
                {"thought": "count", "next_node": "colony.count", "args": {"species": "yeti"}},
                {"thought": "retry", "next_node": "colony.count", "args": {"species": "emperor"}},
                {
                    "thought": "feed",
                    "next_node": "colony.feed",
                    "args": {"penguins": 12, "fish_each": 3},
                },
                {"thought": "done", "next_node": None, "args": {"fish": 36}},
            ]
        )
        planner = ReactPlanner(llm_client=llm, catalog=toolset.node_specs())
        result = await planner.run("How many fish do the emperors need?")
        print("reason:", result.reason, "answer:", result.payload)
        for step in result.metadata["steps"]:
            outcome = step["observation"] if step["error"] is None else "error (the model replans)"
            print(f"  {step['action']['next_node']} -> {outcome}")

        # 2. A flow: one MCP tool as a node; the payload is the tool's arguments.
        feed = toolset.node("feed", policy=NodePolicy(max_retries=2, backoff_base=0.05))
        flow = create(feed.to())
        flow.run()
        try:
            await flow.emit(
                Message(payload={"penguins": 30, "fish_each": 2}, headers=Headers(tenant="zoo"))
            )
            print("flow result:", (await flow.fetch()).payload)
        finally:
            await flow.stop()

        # 3. Arguments are checked against the tool's JSON schema before sending.
        try:
            await toolset.call("colony.feed", {"penguins": "many"})
        except ToolArgumentsInvalid as exc:
            print("rejected:", exc)
    print("server stopped:", not toolset.statistics().connected)


if __name__ == "__main__":
    asyncio.run(main())
