"""ReactPlanner model and tool calls as OpenTelemetry GenAI spans."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from pydantic import BaseModel
from spans import attr, children, one

from penguiflow.catalog import build_catalog
from penguiflow.node import Node
from penguiflow.planner import ReactPlanner, _telemetry
from penguiflow.registry import ModelRegistry


class Query(BaseModel):
    question: str


class Answer(BaseModel):
    answer: str


class Client:
    """Replays actions; reports token usage the way a custom client would."""

    model = "test-model"

    def __init__(self, replies: list[dict[str, Any]]) -> None:
        self.replies = replies

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        _telemetry.record_token_usage(len(messages) * 10, 7)
        return json.dumps(self.replies.pop(0))


async def lookup(args: Query, ctx: Any) -> Answer:
    if args.question == "boom":
        raise ValueError("tool failed")
    return Answer(answer=args.question.upper())


def planner(replies: list[dict[str, Any]]) -> ReactPlanner:
    registry = ModelRegistry()
    registry.register("lookup", Query, Answer)
    catalog = build_catalog([Node(lookup, name="lookup")], registry)
    return ReactPlanner(llm_client=Client(replies), catalog=catalog)


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch, provider: TracerProvider) -> None:
    # The planner uses the global provider; this test routes it to the fixture's.
    monkeypatch.setattr(_telemetry, "_tracer", lambda: provider.get_tracer("test"))


def step(node: str | None, **args: Any) -> dict[str, Any]:
    return {"thought": "t", "next_node": node, "args": args or None}


@pytest.mark.usefixtures("traced")
async def test_model_and_tool_calls_follow_the_genai_conventions(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    p = planner([step("lookup", question="q"), step(None, answer="Q")])
    with provider.get_tracer("t").start_as_current_span("request"):
        result = await p.run("q")
    assert result.payload == {"answer": "Q"}
    spans = exporter.get_finished_spans()
    request = one(spans, "request")
    assert [s.name for s in children(spans, request)] == [
        "chat test-model",
        "execute_tool lookup",
        "chat test-model",
    ]
    chat = children(spans, request)[0]
    assert attr(chat, "gen_ai.operation.name") == "chat"
    assert attr(chat, "gen_ai.request.model") == "test-model"
    assert attr(chat, "gen_ai.usage.input_tokens") == 20
    assert attr(chat, "gen_ai.usage.output_tokens") == 7
    tool = one(spans, "execute_tool lookup")
    assert attr(tool, "gen_ai.operation.name") == "execute_tool"
    assert attr(tool, "gen_ai.tool.name") == "lookup"


@pytest.mark.usefixtures("traced")
async def test_a_failing_model_call_is_recorded_on_its_span(
    exporter: InMemorySpanExporter,
) -> None:
    class Broken(Client):
        model = None  # type: ignore[assignment]

        async def complete(self, **kwargs: Any) -> str:
            raise ConnectionError("down")

    registry = ModelRegistry()
    registry.register("lookup", Query, Answer)
    p = ReactPlanner(
        llm_client=Broken([]), catalog=build_catalog([Node(lookup, name="lookup")], registry)
    )
    with pytest.raises(ConnectionError):
        await p.run("q")
    span = one(exporter.get_finished_spans(), "chat unknown")
    assert span.status.status_code is StatusCode.ERROR
    assert attr(span, "error.type") == "ConnectionError"
    assert [e.name for e in span.events] == ["exception"]


def test_usage_outside_a_span_is_ignored() -> None:
    _telemetry.record_token_usage(1, 2)  # no current span: nothing to do, no error


@pytest.mark.usefixtures("traced")
@pytest.mark.parametrize("as_object", [False, True], ids=["dict", "object"])
async def test_litellm_client_reports_its_token_usage(
    monkeypatch: pytest.MonkeyPatch, exporter: InMemorySpanExporter, as_object: bool
) -> None:
    import sys
    import types

    from penguiflow.planner._llm import LiteLLMJSONClient

    usage: Any = {"prompt_tokens": 11, "completion_tokens": 3}
    if as_object:
        usage = types.SimpleNamespace(**usage)

    async def acompletion(**params: Any) -> dict[str, Any]:
        return {"choices": [{"message": {"content": "{}"}}], "usage": usage}

    module = types.ModuleType("litellm")
    module.acompletion = acompletion  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "litellm", module)
    client = LiteLLMJSONClient("gpt-test", temperature=0.0, json_schema_mode=True)
    async with _telemetry.chat_span(client):
        assert await client.complete(messages=[{"role": "user", "content": "x"}]) == "{}"
    span = one(exporter.get_finished_spans(), "chat gpt-test")
    assert attr(span, "gen_ai.usage.input_tokens") == 11
    assert attr(span, "gen_ai.usage.output_tokens") == 3
