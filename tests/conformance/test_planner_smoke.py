"""Conformance smoke: spec/planner.md §1-§5 basics a 2.2.5 program relies on (README example)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from penguiflow import (
    ModelRegistry,
    Node,
    NodeSpec,
    PlannerFinish,
    ReactPlanner,
    build_catalog,
    tool,
)


class Query(BaseModel):
    text: str


class Documents(BaseModel):
    results: list[str]


@tool(desc="Search documentation", tags=["utility", "utility"], side_effects="read")
async def search_docs(args: Query, ctx: Any) -> Documents:
    return Documents(results=[args.text.upper()])


async def undecorated(args: Query, ctx: Any) -> Documents:
    """Docstring description."""
    return Documents(results=[])


def registry() -> ModelRegistry:
    reg = ModelRegistry()
    reg.register("search_docs", Query, Documents)
    reg.register("undecorated", Query, Documents)
    return reg


class ScriptedClient:
    """A JSONLLMClient returning scripted responses and recording the calls."""

    def __init__(self, responses: list[Any]) -> None:
        self.responses = [r if isinstance(r, str) else json.dumps(r) for r in responses]
        self.calls: list[list[Mapping[str, str]]] = []

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        self.calls.append(list(messages))
        return self.responses.pop(0)


def test_tool_decorator_metadata() -> None:
    meta = search_docs.__penguiflow_tool__  # type: ignore[attr-defined]
    assert meta["desc"] == "Search documentation"
    assert meta["tags"] == ("utility",)
    assert meta["side_effects"] == "read"
    assert meta["extra"] == {}
    assert set(meta) == {
        "desc",
        "side_effects",
        "tags",
        "auth_scopes",
        "cost_hint",
        "latency_hint_ms",
        "safety_notes",
        "extra",
    }


def test_node_spec_fields() -> None:
    assert [f.name for f in dataclasses.fields(NodeSpec)] == [
        "node",
        "name",
        "desc",
        "args_model",
        "out_model",
        "side_effects",
        "tags",
        "auth_scopes",
        "cost_hint",
        "latency_hint_ms",
        "safety_notes",
        "extra",
    ]


def test_build_catalog() -> None:
    nodes = [Node(search_docs, name="search_docs"), Node(undecorated, name="undecorated")]
    specs = build_catalog(nodes, registry())
    assert [s.name for s in specs] == ["search_docs", "undecorated"]
    assert specs[0].desc == "Search documentation"
    assert specs[1].desc == "Docstring description."
    assert specs[1].side_effects == "pure"
    record = specs[0].to_tool_record()
    assert record["args_schema"]["title"] == "Query"
    assert record["tags"] == ["utility"]
    json.dumps(record)
    with pytest.raises(KeyError):
        build_catalog([Node(undecorated, name="ghost")], registry())


def test_planner_construction_errors() -> None:
    with pytest.raises(ValueError) as first:
        ReactPlanner(llm="gpt-4")
    assert str(first.value) == "Either catalog or (nodes and registry) must be provided"
    with pytest.raises(ValueError) as second:
        ReactPlanner(nodes=[Node(search_docs, name="search_docs")], registry=registry())
    assert str(second.value) == "llm or llm_client must be provided"


async def test_planner_calls_a_tool_then_finishes() -> None:
    client = ScriptedClient(
        [
            {"thought": "search", "next_node": "search_docs", "args": {"text": "routing"}},
            {"thought": "done", "next_node": None, "args": None},
        ]
    )
    planner = ReactPlanner(
        llm_client=client,
        catalog=build_catalog([Node(search_docs, name="search_docs")], registry()),
    )
    result = await planner.run("Explain PenguiFlow routing")
    assert isinstance(result, PlannerFinish)
    assert result.reason == "answer_complete"
    assert result.payload == {"results": ["ROUTING"]}
    assert result.metadata["step_count"] == 1
    assert result.metadata["thought"] == "done"
    first_call = client.calls[0]
    assert first_call[0]["role"] == "system"
    assert first_call[1]["role"] == "user"
    second_call = client.calls[1]
    assert second_call[2] == {
        "role": "assistant",
        "content": json.dumps(
            {
                "args": {"text": "routing"},
                "join": None,
                "next_node": "search_docs",
                "plan": None,
                "thought": "search",
            },
            sort_keys=True,
        ),
    }


async def test_planner_reports_unknown_tool_to_the_llm() -> None:
    client = ScriptedClient(
        [
            {"thought": "x", "next_node": "nope", "args": {}},
            {"thought": "done", "next_node": None, "args": {"answer": 1}},
        ]
    )
    planner = ReactPlanner(
        llm_client=client,
        catalog=build_catalog([Node(search_docs, name="search_docs")], registry()),
    )
    result = await planner.run("q")
    assert result.payload == {"answer": 1}
    last = client.calls[1][-1]
    assert last["role"] == "user"
    observation = json.loads(last["content"])
    assert observation["error"] == (
        "tool 'nope' is not in the catalog. Choose one of: search_docs."
    )


async def test_planner_gives_up_after_repair_attempts() -> None:
    client = ScriptedClient(["{}", "not json", "{}"])
    planner = ReactPlanner(
        llm_client=client,
        catalog=build_catalog([Node(search_docs, name="search_docs")], registry()),
        repair_attempts=3,
    )
    with pytest.raises(RuntimeError) as info:
        await planner.run("q")
    assert str(info.value) == "Planner failed to produce valid JSON after repair attempts"
    assert len(client.calls) == 3
    assert client.calls[1][-1]["role"] == "system"


async def test_planner_iteration_limit() -> None:
    client = ScriptedClient(
        [{"thought": "again", "next_node": "search_docs", "args": {"text": "a"}}] * 2
    )
    planner = ReactPlanner(
        llm_client=client,
        catalog=build_catalog([Node(search_docs, name="search_docs")], registry()),
        max_iters=2,
    )
    result = await planner.run("q")
    assert result.reason == "no_path"
    assert result.metadata["thought"] == "iteration limit reached"
    assert result.payload == {"results": ["A"]}
