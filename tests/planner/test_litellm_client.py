"""The LiteLLM adapter: litellm's own mock_response, never the network."""

from __future__ import annotations

import json
import sys
import types
from typing import Any

import pytest
from planner_support import default_catalog

from penguiflow.errors import LLMCallError, PlannerError
from penguiflow.planner import ReactPlanner
from penguiflow.planner._llm import LiteLLMJSONClient

FINISH = json.dumps({"thought": "done", "next_node": None, "args": {"answer": "mocked"}})
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def local_cost_map(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")


async def test_planner_runs_through_litellm_mock_response() -> None:
    planner = ReactPlanner(
        {"model": "gpt-4o-mini", "mock_response": FINISH}, catalog=default_catalog()
    )
    result = await planner.run("Q")
    assert result.reason == "answer_complete"
    assert result.payload == {"answer": "mocked"}


async def test_litellm_errors_propagate_unchanged() -> None:
    """spec/planner.md section 3: SDK exceptions propagate (programs catch litellm's types)."""
    import litellm

    client = LiteLLMJSONClient(
        {"model": "gpt-4o-mini", "mock_response": "litellm.RateLimitError"},
        temperature=0.0,
        json_schema_mode=True,
    )
    with pytest.raises(litellm.RateLimitError):
        await client.complete(messages=MESSAGES)


class FakeLiteLLM(types.ModuleType):
    """Stands in for the litellm module to record the exact parameters sent."""

    def __init__(self, content: Any = "{}") -> None:
        super().__init__("litellm")
        self.content = content
        self.params: list[dict[str, Any]] = []

    async def acompletion(self, **params: Any) -> dict[str, Any]:
        self.params.append(params)
        return {"choices": [{"message": {"content": self.content}}]}


@pytest.fixture
def fake_litellm(monkeypatch: pytest.MonkeyPatch) -> FakeLiteLLM:
    module = FakeLiteLLM()
    monkeypatch.setitem(sys.modules, "litellm", module)
    return module


async def test_model_name_and_temperature_are_sent(fake_litellm: FakeLiteLLM) -> None:
    client = LiteLLMJSONClient("m", temperature=0.3, json_schema_mode=True)
    fmt = {"type": "json_object"}
    assert await client.complete(messages=MESSAGES, response_format=fmt) == "{}"
    assert fake_litellm.params == [
        {"model": "m", "temperature": 0.3, "messages": MESSAGES, "response_format": fmt}
    ]


async def test_mapping_keeps_its_own_temperature(fake_litellm: FakeLiteLLM) -> None:
    client = LiteLLMJSONClient(
        {"model": "m", "temperature": 0.9, "api_key": "k"}, temperature=0.0, json_schema_mode=True
    )
    await client.complete(messages=MESSAGES)
    assert fake_litellm.params == [
        {"model": "m", "temperature": 0.9, "api_key": "k", "messages": MESSAGES}
    ]


async def test_response_format_is_dropped_without_json_schema_mode(
    fake_litellm: FakeLiteLLM,
) -> None:
    client = LiteLLMJSONClient("m", temperature=0.0, json_schema_mode=False)
    await client.complete(messages=MESSAGES, response_format={"type": "json_object"})
    assert "response_format" not in fake_litellm.params[0]


async def test_empty_content_is_an_error(fake_litellm: FakeLiteLLM) -> None:
    fake_litellm.content = None
    client = LiteLLMJSONClient({"api_key": "k"}, temperature=0.0, json_schema_mode=True)
    with pytest.raises(RuntimeError, match=r"^LiteLLM returned empty content$") as info:
        await client.complete(messages=MESSAGES)
    assert info.value.model is None  # type: ignore[attr-defined]
    assert isinstance(info.value, LLMCallError)
    assert isinstance(info.value, PlannerError)


async def test_missing_litellm_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)
    planner = ReactPlanner("gpt-4o-mini", catalog=default_catalog())  # constructing is fine
    with pytest.raises(RuntimeError, match="LiteLLM is not installed"):
        await planner.run("Q")
