"""Conformance: spec/planner.md §2 "LiteLLM adapter" — what a planner built with ``llm=`` sends.

A stand-in ``litellm`` module is put in ``sys.modules`` (as a user's test would
monkeypatch it); the network is never touched.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import types
from typing import Any

import pytest
from pydantic import BaseModel

from penguiflow import ModelRegistry, Node, build_catalog
from penguiflow.planner import ReactPlanner
from penguiflow.planner.react import PlannerAction, TrajectorySummary

FINISH = json.dumps({"thought": "done", "next_node": None, "args": {"answer": "ok"}})


class Query(BaseModel):
    text: str


async def echo(args: Query, ctx: Any) -> Query:
    return args


def catalog() -> Any:
    registry = ModelRegistry()
    registry.register("echo", Query, Query)
    return build_catalog([Node(echo, name="echo")], registry)


class Provider429(Exception):
    """What an SDK raises for a rate limit; programs catch it by type."""


class FakeLiteLLM(types.ModuleType):
    def __init__(self, *contents: Any) -> None:
        super().__init__("litellm")
        self.contents = list(contents)
        self.params: list[dict[str, Any]] = []

    async def acompletion(self, **params: Any) -> Any:
        self.params.append(params)
        content = self.contents.pop(0)
        if isinstance(content, BaseException):
            raise content
        return {"choices": [{"message": {"content": content}}]}


@pytest.fixture(autouse=True)
def _local_cost_map(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def install(monkeypatch: pytest.MonkeyPatch, *contents: Any) -> FakeLiteLLM:
    module = FakeLiteLLM(*contents)
    monkeypatch.setitem(sys.modules, "litellm", module)
    return module


async def run(planner: ReactPlanner) -> Any:
    async with asyncio.timeout(5):
        return await planner.run("q")


PLANNER_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "planner_action", "schema": PlannerAction.model_json_schema()},
}


async def test_model_name_params(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install(monkeypatch, FINISH)
    planner = ReactPlanner("gpt-test", catalog=catalog(), temperature=0.3)
    result = await run(planner)
    assert result.payload == {"answer": "ok"}
    (params,) = fake.params
    assert set(params) == {"model", "temperature", "messages", "response_format"}
    assert params["model"] == "gpt-test"
    assert params["temperature"] == 0.3
    assert [m["role"] for m in params["messages"]] == ["system", "user"]
    assert params["response_format"] == PLANNER_FORMAT


async def test_mapping_params_keep_their_temperature(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = install(monkeypatch, FINISH)
    llm = {"model": "m", "api_key": "k", "temperature": 0.9}
    await run(ReactPlanner(llm, catalog=catalog(), temperature=0.1))
    (params,) = fake.params
    assert params["model"] == "m"
    assert params["api_key"] == "k"
    assert params["temperature"] == 0.9
    assert llm == {"model": "m", "api_key": "k", "temperature": 0.9}


async def test_no_response_format_without_json_schema_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = install(monkeypatch, FINISH)
    await run(ReactPlanner("m", catalog=catalog(), json_schema_mode=False))
    assert "response_format" not in fake.params[0]
    assert fake.params[0]["temperature"] == 0.0


async def test_empty_content_is_a_runtime_error(monkeypatch: pytest.MonkeyPatch) -> None:
    install(monkeypatch, None)
    with pytest.raises(RuntimeError) as info:
        await run(ReactPlanner("m", catalog=catalog()))
    assert str(info.value) == "LiteLLM returned empty content"


async def test_sdk_exceptions_propagate_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    """spec §3: exceptions propagate out of run; programs catch the SDK's types."""
    error = Provider429("slow down")
    install(monkeypatch, error)
    with pytest.raises(Provider429) as info:
        await run(ReactPlanner("m", catalog=catalog()))
    assert info.value is error


async def test_missing_litellm_is_reported_at_call_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)  # import litellm -> ImportError
    planner = ReactPlanner("m", catalog=catalog())  # construction never imports it
    with pytest.raises(RuntimeError) as info:
        await run(planner)
    assert str(info.value) == (
        "LiteLLM is not installed. Install penguiflow[planner] or provide a custom llm_client."
    )


async def test_summarizer_llm_always_uses_json_schema(monkeypatch: pytest.MonkeyPatch) -> None:
    summary = json.dumps({"goals": ["g"]})
    fake = install(monkeypatch, summary)

    class Client:
        def __init__(self) -> None:
            self.calls: list[Any] = []

        async def complete(self, *, messages: Any, response_format: Any = None) -> str:
            self.calls.append(messages)
            return FINISH

    client = Client()
    planner = ReactPlanner(
        llm_client=client,
        catalog=catalog(),
        summarizer_llm="summary-model",
        token_budget=1,
        json_schema_mode=False,
    )
    await run(planner)
    (params,) = fake.params
    assert params["model"] == "summary-model"
    assert params["response_format"] == {
        "type": "json_schema",
        "json_schema": {
            "name": "trajectory_summary",
            "schema": TrajectorySummary.model_json_schema(),
        },
    }
    assert client.calls[0][2]["content"].startswith(
        'Trajectory summary: {"facts": {}, "goals": ["g"]'
    )


def test_import_and_construction_do_not_import_litellm() -> None:
    code = (
        "import sys\n"
        "from penguiflow import ReactPlanner\n"
        "import penguiflow.planner, penguiflow.planner.react, penguiflow.planner.prompts\n"
        "ReactPlanner('gpt-4', catalog=[], summarizer_llm='gpt-4')\n"
        "print('litellm' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
