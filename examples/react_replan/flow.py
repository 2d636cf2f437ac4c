"""ReactPlanner replanning: a crashing tool's structured failure steers the model.

The primary search raises with a ``suggestion``; the planner records a failure
payload (node, args, error_code, message, suggestion) and shows it to the model,
which switches to the fallback tool. A hop budget bounds how many tools may run.

Run from the repository root: ``python -m examples.react_replan.flow``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from penguiflow import ModelRegistry, Node, tool
from penguiflow.planner import ReactPlanner


class Search(BaseModel):
    query: str


class Results(BaseModel):
    items: list[str]


class SearchUnavailable(Exception):
    suggestion = "use cached_search"


@tool(desc="Live search (may be down)", side_effects="external")
async def live_search(args: Search, ctx: Any) -> Results:
    raise SearchUnavailable("search backend timed out")


@tool(desc="Search yesterday's cached index", side_effects="read")
async def cached_search(args: Search, ctx: Any) -> Results:
    return Results(items=[f"cached result for {args.query!r}"])


class ReactiveLLM:
    """A stand-in model that reads the last observation and reacts (a ``JSONLLMClient``)."""

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        last = json.loads(messages[-1]["content"])
        if "query" in last:  # the first step: try the live search
            action = {"thought": "search live", "next_node": "live_search", "args": last}
        elif "failure" in last:  # a tool failed: follow its suggestion
            failure = last["failure"]
            print(f"  failure seen: {failure['error_code']}: {failure['message']}")
            fallback = failure["suggestion"].removeprefix("use ")
            action = {"thought": "replan", "next_node": fallback, "args": failure["args"]}
        else:
            action = {"thought": "done", "next_node": None}
        return json.dumps(action)


def build_planner() -> ReactPlanner:
    registry = ModelRegistry()
    registry.register("live_search", Search, Results)
    registry.register("cached_search", Search, Results)
    nodes = [Node(live_search, name="live_search"), Node(cached_search, name="cached_search")]
    return ReactPlanner(llm_client=ReactiveLLM(), nodes=nodes, registry=registry, hop_budget=3)


async def main() -> None:
    result = await build_planner().run("penguins")
    print(f"reason: {result.reason}")
    print(f"answer: {result.payload}")
    for step in result.metadata["steps"]:
        outcome = "error" if step["error"] else "ok"
        print(f"step:   {step['action']['next_node']} -> {outcome}")
    print(f"hops:   {result.metadata['constraints']['hops_used']} of 3")


if __name__ == "__main__":
    asyncio.run(main())
