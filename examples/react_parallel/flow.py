"""ReactPlanner parallel plan: two branches fan out concurrently, then a join merges them.

Run from the repository root: ``python -m examples.react_parallel.flow``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from penguiflow import ModelRegistry, Node, tool
from penguiflow.planner import ReactPlanner


class ShardQuery(BaseModel):
    shard: str


class ShardHits(BaseModel):
    shard: str
    hits: int


class MergeArgs(BaseModel):
    # Filled in by the planner because the model declares them (see docs/planner.md).
    expect: int
    results: list[dict[str, Any]]


class Report(BaseModel):
    total_hits: int
    shards: int


@tool(desc="Count matching records in one shard", side_effects="read")
async def search_shard(args: ShardQuery, ctx: Any) -> ShardHits:
    await asyncio.sleep(0)  # both branches are in flight at this point
    return ShardHits(shard=args.shard, hits={"eu": 12, "us": 30}.get(args.shard, 0))


@tool(desc="Merge shard counts into one report")
async def merge_counts(args: MergeArgs, ctx: Any) -> Report:
    print(f"  join meta keys: {sorted(k for k in ctx.meta if k.startswith('parallel_'))}")
    return Report(total_hits=sum(r["hits"] for r in args.results), shards=args.expect)


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
        return json.dumps(self._actions.pop(0))


def build_planner() -> ReactPlanner:
    registry = ModelRegistry()
    registry.register("search_shard", ShardQuery, ShardHits)
    registry.register("merge_counts", MergeArgs, Report)
    nodes = [Node(search_shard, name="search_shard"), Node(merge_counts, name="merge_counts")]
    llm = ScriptedLLM(
        [
            {
                "thought": "search both shards at once",
                "plan": [
                    {"node": "search_shard", "args": {"shard": "eu"}},
                    {"node": "search_shard", "args": {"shard": "us"}},
                ],
                "join": {"node": "merge_counts"},
            },
            {"thought": "report", "next_node": None},
        ]
    )
    return ReactPlanner(llm_client=llm, nodes=nodes, registry=registry, max_concurrent_tools=4)


async def main() -> None:
    result = await build_planner().run("How many records match?")
    observation = result.payload
    for branch in observation["branches"]:
        print(f"branch {branch['args']['shard']}: {branch['observation']}")
    print(f"stats:  {observation['stats']}")
    print(f"join:   {observation['join']['observation']}")


if __name__ == "__main__":
    asyncio.run(main())
