"""Conformance: spec/planner.md §3-§5, §7-§9 — LLM calls, repair, the run loop, budgets, hints.

A scripted ``JSONLLMClient`` plays the model; every exact text is written out here
from the spec.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from penguiflow import ModelRegistry, Node, NodePolicy, build_catalog
from penguiflow.planner import PlannerFinish, ReactPlanner, Trajectory
from penguiflow.planner.react import PlannerAction, TrajectorySummary

SYSTEM_HEAD = "You are PenguiFlow ReactPlanner, a JSON-only planner."


class Query(BaseModel):
    text: str


class Answer(BaseModel):
    answer: str


class Strict(BaseModel):
    count: int


class ScriptedClient:
    """A JSONLLMClient: answers from a script, records every call (keyword-only)."""

    def __init__(self, *responses: Any) -> None:
        self.responses = [r if isinstance(r, str) else json.dumps(r) for r in responses]
        self.calls: list[list[Mapping[str, str]]] = []
        self.formats: list[Mapping[str, Any] | None] = []

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        assert isinstance(messages, list)
        self.calls.append(messages)  # kept as given: the planner must not reuse it
        self.formats.append(response_format)
        if not self.responses:
            raise AssertionError("script exhausted")
        return self.responses.pop(0)


def call(node: str, **args: Any) -> dict[str, Any]:
    return {"thought": f"call {node}", "next_node": node, "args": args}


def finish(args: Any = None, thought: str = "done") -> dict[str, Any]:
    return {"thought": thought, "next_node": None, "args": args}


def action_json(action: Mapping[str, Any]) -> str:
    """The assistant message content for an action (all five keys, sorted)."""
    full = {"thought": None, "next_node": None, "args": None, "plan": None, "join": None}
    full.update(action)
    return json.dumps(full, ensure_ascii=False, sort_keys=True)


class Tools:
    """Tool functions recording what they received."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Any, Any]] = []
        self.fail_with: BaseException | None = None

    async def echo(self, args: Query, ctx: Any) -> Answer:
        self.seen.append(("echo", args, ctx))
        return Answer(answer=args.text)

    async def other(self, args: Query, ctx: Any) -> Answer:
        self.seen.append(("other", args, ctx))
        return Answer(answer="other:" + args.text)

    async def third(self, args: Query, ctx: Any) -> Answer:
        self.seen.append(("third", args, ctx))
        return Answer(answer="third")

    async def boom(self, args: Query, ctx: Any) -> Answer:
        self.seen.append(("boom", args, ctx))
        assert self.fail_with is not None
        raise self.fail_with

    async def rawdict(self, args: Query, ctx: Any) -> Any:
        self.seen.append(("rawdict", args, ctx))
        return {"answer": "from-dict"}

    async def badout(self, args: Query, ctx: Any) -> Any:
        self.seen.append(("badout", args, ctx))
        return {"wrong": 1}

    async def strict(self, args: Strict, ctx: Any) -> Answer:
        self.seen.append(("strict", args, ctx))
        return Answer(answer=str(args.count))


@pytest.fixture
def tools() -> Tools:
    return Tools()


def make_planner(tools: Tools, client: ScriptedClient, **kwargs: Any) -> ReactPlanner:
    registry = ModelRegistry()
    nodes = []
    for name in ("echo", "other", "third", "boom", "rawdict", "badout", "strict"):
        args_model = Strict if name == "strict" else Query
        registry.register(name, args_model, Answer)
        policy = NodePolicy(validate="both", timeout_s=0.0001, max_retries=3)
        nodes.append(Node(getattr(tools, name), name=name, policy=policy))
    return ReactPlanner(llm_client=client, catalog=build_catalog(nodes, registry), **kwargs)


async def run(planner: ReactPlanner, query: str = "q", **kwargs: Any) -> Any:
    async with asyncio.timeout(5):
        return await planner.run(query, **kwargs)


def last_user(client: ScriptedClient, index: int) -> dict[str, Any]:
    message = client.calls[index][-1]
    assert message["role"] == "user"
    decoded: dict[str, Any] = json.loads(message["content"])
    return decoded


NO_CONSTRAINTS = {
    "deadline_at": None,
    "deadline_remaining_s": None,
    "hop_budget": None,
    "hops_used": 0,
    "deadline_triggered": False,
    "hop_exhausted": False,
}

CATALOG_NAMES = "badout, boom, echo, other, rawdict, strict, third"


# -- §3 the LLM client protocol ------------------------------------------------------


async def test_first_call_messages_are_system_then_user_prompt(tools: Tools) -> None:
    client = ScriptedClient(finish({"a": 1}))
    planner = make_planner(tools, client)
    await run(planner, "question", context_meta={"tenant": "acme"})
    (messages,) = client.calls
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"].startswith(SYSTEM_HEAD + "\n")
    assert messages[1] == {
        "role": "user",
        "content": '{"context": {"tenant": "acme"}, "query": "question"}',
    }
    assert all(set(m) == {"role", "content"} for m in messages)


async def test_user_prompt_without_context_meta(tools: Tools) -> None:
    client = ScriptedClient(finish({"a": 1}))
    await run(make_planner(tools, client), "question")
    assert client.calls[0][1]["content"] == '{"query": "question"}'


async def test_json_schema_mode_passes_planner_action_response_format(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), finish({"a": 1}))
    await run(make_planner(tools, client))
    expected = {
        "type": "json_schema",
        "json_schema": {"name": "planner_action", "schema": PlannerAction.model_json_schema()},
    }
    assert client.formats == [expected, expected]


async def test_json_schema_mode_off_passes_none(tools: Tools) -> None:
    client = ScriptedClient(finish({"a": 1}))
    await run(make_planner(tools, client, json_schema_mode=False))
    assert client.formats == [None]


async def test_each_call_gets_a_fresh_messages_list(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), finish({"a": 1}))
    await run(make_planner(tools, client))
    first, second = client.calls
    assert first is not second
    assert len(first) == 2
    assert len(second) == 4


async def test_history_messages_per_step(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="héllo"), call("nope"), finish({"a": 1}))
    await run(make_planner(tools, client))
    third = client.calls[2]
    assert [m["role"] for m in third] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
        "user",
    ]
    assert third[2]["content"] == action_json(call("echo", text="héllo"))
    assert "héllo" in third[2]["content"]  # ensure_ascii=False
    assert third[3]["content"] == '{"observation": {"answer": "héllo"}}'
    assert third[4]["content"] == action_json(call("nope"))
    assert third[5]["content"] == json.dumps(
        {"error": f"tool 'nope' is not in the catalog. Choose one of: {CATALOG_NAMES}."}
    )


async def test_client_exception_propagates_out_of_run(tools: Tools) -> None:
    class Failing(ScriptedClient):
        async def complete(self, **kwargs: Any) -> str:
            raise ConnectionError("model down")

    with pytest.raises(ConnectionError, match="model down"):
        await run(make_planner(tools, Failing()))


# -- §4 action parsing and repair ---------------------------------------------------------


async def test_step_returns_the_parsed_action(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"))
    planner = make_planner(tools, client)
    async with asyncio.timeout(5):
        action = await planner.step(Trajectory(query="q"))
    assert action == PlannerAction(thought="call echo", next_node="echo", args={"text": "a"})


def _errors_of(raw: str) -> str:
    try:
        PlannerAction.model_validate_json(raw)
    except ValidationError as exc:
        return json.dumps(exc.errors(), ensure_ascii=False)
    raise AssertionError("valid")


def _repair(raw: str) -> dict[str, str]:
    return {
        "role": "system",
        "content": "Previous response was invalid JSON or schema mismatch: "
        f"{_errors_of(raw)}. Reply with corrected JSON only.",
    }


async def test_repair_message_carries_only_the_latest_error(tools: Tools) -> None:
    client = ScriptedClient("{}", "not json", finish({"a": 1}))
    result = await run(make_planner(tools, client))
    assert result.payload == {"a": 1}
    base = client.calls[0]
    assert client.calls[1] == [*base, _repair("{}")]
    assert client.calls[2] == [*base, _repair("not json")]


async def test_repair_exhaustion_raises_runtime_error(tools: Tools) -> None:
    client = ScriptedClient("{}", "{}")
    planner = make_planner(tools, client, repair_attempts=2)
    with pytest.raises(RuntimeError) as info:
        await run(planner)
    assert str(info.value) == "Planner failed to produce valid JSON after repair attempts"
    assert len(client.calls) == 2


async def test_repair_attempts_counts_llm_calls_per_step(tools: Tools) -> None:
    client = ScriptedClient('{"next_node": null}')
    with pytest.raises(RuntimeError):
        await run(make_planner(tools, client, repair_attempts=1))
    assert len(client.calls) == 1


async def test_repair_applies_per_step(tools: Tools) -> None:
    client = ScriptedClient("[]", call("echo", text="a"), "{}", finish({"a": 1}))
    result = await run(make_planner(tools, client, repair_attempts=2))
    assert result.reason == "answer_complete"
    assert result.metadata["step_count"] == 1


# -- §5 the run loop -------------------------------------------------------------------


async def test_finish_metadata_shape(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), finish({"final": True}, thought="all done"))
    result = await run(make_planner(tools, client))
    assert isinstance(result, PlannerFinish)
    assert result.reason == "answer_complete"
    assert result.payload == {"final": True}
    assert result.metadata == {
        "reason": "answer_complete",
        "thought": "all done",
        "steps": [
            {
                "action": {
                    "thought": "call echo",
                    "next_node": "echo",
                    "args": {"text": "a"},
                    "plan": None,
                    "join": None,
                },
                "observation": {"answer": "a"},
                "error": None,
                "failure": None,
            }
        ],
        "step_count": 1,
        "constraints": NO_CONSTRAINTS,
    }
    assert list(result.metadata) == ["reason", "thought", "steps", "step_count", "constraints"]


@pytest.mark.parametrize(
    "final_args", [pytest.param(None, id="null"), pytest.param({}, id="empty")]
)
async def test_finish_without_args_falls_back_to_last_observation(
    tools: Tools, final_args: Any
) -> None:
    client = ScriptedClient(call("echo", text="a"), finish(final_args))
    result = await run(make_planner(tools, client))
    assert result.payload == {"answer": "a"}


async def test_finish_without_args_or_observation_is_none(tools: Tools) -> None:
    result = await run(make_planner(tools, ScriptedClient(finish())))
    assert result.reason == "answer_complete"
    assert result.payload is None
    assert result.metadata["step_count"] == 0


async def test_unknown_tool_step_is_recorded_without_observation(tools: Tools) -> None:
    client = ScriptedClient(call("ghost"), finish())
    result = await run(make_planner(tools, client))
    (step,) = result.metadata["steps"]
    assert step["error"] == f"tool 'ghost' is not in the catalog. Choose one of: {CATALOG_NAMES}."
    assert step["observation"] is None
    assert step["failure"] is None
    assert result.payload is None
    assert tools.seen == []


async def test_invalid_args_error_text_and_no_tool_call(tools: Tools) -> None:
    client = ScriptedClient(call("strict", count="many"), finish())
    result = await run(make_planner(tools, client, hop_budget=5))
    try:
        Strict.model_validate({"count": "many"})
    except ValidationError as exc:
        errors = json.dumps(exc.errors(), ensure_ascii=False)
    expected = f"args for tool 'strict' did not validate: {errors}. Return corrected JSON."
    assert result.metadata["steps"][0]["error"] == expected
    assert last_user(client, 1) == {"error": expected}
    assert result.metadata["constraints"]["hops_used"] == 0
    assert tools.seen == []


async def test_missing_args_validate_as_empty_object(tools: Tools) -> None:
    client = ScriptedClient(
        {"thought": "t", "next_node": "echo"}, {"thought": "t", "next_node": "echo", "args": {}}
    )
    result = await run(make_planner(tools, client, max_iters=2))
    errors = [step["error"] for step in result.metadata["steps"]]
    assert all(e.startswith("args for tool 'echo' did not validate: [") for e in errors)
    assert '"loc": ["text"]' in errors[0]


async def test_tool_receives_args_model_instance_and_raw_function_is_called(
    tools: Tools,
) -> None:
    client = ScriptedClient(call("strict", count="3"), finish())
    result = await run(make_planner(tools, client))
    ((name, args, _ctx),) = tools.seen
    assert name == "strict"
    assert isinstance(args, Strict)
    assert args.count == 3
    assert result.payload == {"answer": "3"}


async def test_tool_exception_is_fed_back_with_failure_payload(tools: Tools) -> None:
    tools.fail_with = ValueError("bad input")
    client = ScriptedClient(call("boom", text="x"), finish())
    result = await run(make_planner(tools, client, hop_budget=4))
    step = result.metadata["steps"][0]
    assert step["error"] == "tool 'boom' raised ValueError: bad input"
    assert step["failure"] == {
        "node": "boom",
        "args": {"text": "x"},
        "error_code": "ValueError",
        "message": "bad input",
    }
    assert step["observation"] is None
    assert last_user(client, 1) == {"error": step["error"], "failure": step["failure"]}
    assert client.calls[1][-1]["content"] == json.dumps(
        {"error": step["error"], "failure": step["failure"]}, sort_keys=True
    )
    # NodePolicy retries/timeouts do not apply: one call, a hop counted.
    assert len(tools.seen) == 1
    assert result.metadata["constraints"]["hops_used"] == 1
    assert result.payload is None


async def test_tool_failure_resets_last_observation(tools: Tools) -> None:
    tools.fail_with = RuntimeError("x")
    client = ScriptedClient(call("echo", text="a"), call("boom", text="b"), finish())
    result = await run(make_planner(tools, client))
    assert result.payload is None


class Suggested(Exception):
    def __init__(self, message: str, suggestion: Any = None, remedy: Any = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion
        self.remedy = remedy


@pytest.mark.parametrize(
    ("exc", "suggestion"),
    [
        pytest.param(Suggested("m", suggestion="use other"), "use other", id="suggestion"),
        pytest.param(Suggested("m", remedy=42), "42", id="remedy-str"),
        pytest.param(Suggested("m", suggestion="", remedy="fix"), "fix", id="empty-suggestion"),
        pytest.param(Suggested("m", suggestion="s", remedy="r"), "s", id="suggestion-wins"),
        pytest.param(Suggested("m"), None, id="none"),
    ],
)
async def test_failure_suggestion(tools: Tools, exc: Suggested, suggestion: str | None) -> None:
    tools.fail_with = exc
    client = ScriptedClient(call("boom", text="x"), finish())
    result = await run(make_planner(tools, client))
    failure = result.metadata["steps"][0]["failure"]
    assert failure["error_code"] == "Suggested"
    if suggestion is None:
        assert "suggestion" not in failure
    else:
        assert failure["suggestion"] == suggestion
    assert list(failure)[:4] == ["node", "args", "error_code", "message"]


async def test_output_validation_error_counts_a_hop(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), call("badout", text="x"), finish())
    result = await run(make_planner(tools, client, hop_budget=9))
    try:
        Answer.model_validate({"wrong": 1})
    except ValidationError as exc:
        errors = json.dumps(exc.errors(), ensure_ascii=False)
    step = result.metadata["steps"][1]
    assert step["error"] == (
        f"tool 'badout' returned data that did not validate: {errors}. "
        "Ensure the tool output matches the declared schema."
    )
    assert step["failure"] is None
    assert result.metadata["constraints"]["hops_used"] == 2
    assert result.payload is None  # the last observation was reset


async def test_tool_output_is_validated_into_the_out_model(tools: Tools) -> None:
    client = ScriptedClient(call("rawdict", text="a"), finish())
    result = await run(make_planner(tools, client))
    assert result.payload == {"answer": "from-dict"}
    assert last_user(client, 1) == {"observation": {"answer": "from-dict"}}


async def test_tool_ctx_has_meta_copy_and_pause_only(tools: Tools) -> None:
    meta = {"tenant": "acme"}
    client = ScriptedClient(call("echo", text="a"), call("other", text="b"), finish())
    await run(make_planner(tools, client), context_meta=meta)
    (_, _, ctx1), (_, _, ctx2) = tools.seen
    assert ctx1.meta == {"tenant": "acme"}
    assert type(ctx1.meta) is dict
    assert ctx1.meta is not meta
    ctx1.meta["x"] = 1
    assert meta == {"tenant": "acme"}
    assert ctx2.meta == {"tenant": "acme"}
    assert callable(ctx1.pause)
    for missing in ("emit", "fetch", "emit_chunk", "runtime"):
        assert not hasattr(ctx1, missing)


async def test_tool_ctx_meta_is_empty_dict_without_context(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), finish())
    await run(make_planner(tools, client))
    assert tools.seen[0][2].meta == {}


async def test_step_count_counts_error_steps(tools: Tools) -> None:
    client = ScriptedClient(call("ghost"), call("echo", text="a"), call("strict"), finish())
    result = await run(make_planner(tools, client))
    assert result.metadata["step_count"] == 3
    assert len(result.metadata["steps"]) == 3


async def test_iteration_limit_is_no_path_with_last_observation(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), call("other", text="b"))
    result = await run(make_planner(tools, client, max_iters=2))
    assert result.reason == "no_path"
    assert result.metadata["thought"] == "iteration limit reached"
    assert result.metadata["reason"] == "no_path"
    assert result.payload == {"answer": "other:b"}
    assert len(client.calls) == 2


async def test_zero_max_iters_finishes_without_calling_the_model(tools: Tools) -> None:
    client = ScriptedClient()
    result = await run(make_planner(tools, client, max_iters=0))
    assert result.reason == "no_path"
    assert result.payload is None
    assert client.calls == []


async def test_error_steps_count_toward_max_iters(tools: Tools) -> None:
    client = ScriptedClient(call("ghost"), call("ghost"))
    result = await run(make_planner(tools, client, max_iters=2))
    assert result.reason == "no_path"
    assert result.payload is None


# -- §7 hop budget and deadline ------------------------------------------------------


async def test_hops_are_not_counted_without_a_budget(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), call("echo", text="b"), finish())
    result = await run(make_planner(tools, client))
    assert result.metadata["constraints"]["hops_used"] == 0


async def test_hop_budget_rejects_calls_after_exhaustion(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), call("other", text="b"), finish())
    result = await run(make_planner(tools, client, hop_budget=1))
    assert result.reason == "answer_complete"
    error = result.metadata["steps"][1]["error"]
    assert error == (
        "Hop budget exhausted; you have used all available tool calls. Finish with the best "
        "answer so far or reply with no_path. (limit=1)"
    )
    assert [name for name, _, _ in tools.seen] == ["echo"]
    assert result.metadata["constraints"] == {
        **NO_CONSTRAINTS,
        "hop_budget": 1,
        "hops_used": 1,
        "hop_exhausted": True,
    }
    # the rejected step did not reset the last observation
    assert result.payload == {"answer": "a"}


async def test_zero_hop_budget_is_exhausted_from_the_start(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"))
    result = await run(make_planner(tools, client, hop_budget=0, max_iters=1))
    assert result.reason == "budget_exhausted"
    assert result.metadata["thought"] == (
        "Hop budget exhausted; you have used all available tool calls. Finish with the best "
        "answer so far or reply with no_path. (limit=0)"
    )
    assert result.metadata["constraints"]["hop_exhausted"] is True
    assert tools.seen == []


async def test_max_iters_with_exhausted_hops_is_budget_exhausted(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), call("echo", text="b"))
    result = await run(make_planner(tools, client, hop_budget=1, max_iters=2))
    assert result.reason == "budget_exhausted"
    assert result.payload == {"answer": "a"}
    assert result.metadata["reason"] == "budget_exhausted"


async def test_hop_budget_check_precedes_unknown_tool_and_hints(tools: Tools) -> None:
    client = ScriptedClient(call("ghost"), finish())
    result = await run(
        make_planner(tools, client, hop_budget=0, planning_hints={"disallow_nodes": ["ghost"]})
    )
    assert "Hop budget exhausted" in result.metadata["steps"][0]["error"]


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_deadline_finishes_budget_exhausted_with_last_observation(tools: Tools) -> None:
    clock = FakeTime()

    async def advancing(args: Query, ctx: Any) -> Answer:
        clock.now += 10.0
        return Answer(answer="late")

    registry = ModelRegistry()
    registry.register("advancing", Query, Answer)
    client = ScriptedClient(call("advancing", text="a"))
    planner = ReactPlanner(
        llm_client=client,
        catalog=build_catalog([Node(advancing, name="advancing")], registry),
        deadline_s=5.0,
        time_source=clock,
    )
    result = await run(planner)
    assert result.reason == "budget_exhausted"
    assert result.metadata["thought"] == (
        "Deadline reached. Provide the best available conclusion or return no_path."
    )
    assert result.payload == {"answer": "late"}
    assert len(client.calls) == 1
    assert result.metadata["constraints"] == {
        "deadline_at": 105.0,
        "deadline_remaining_s": 0.0,
        "hop_budget": None,
        "hops_used": 0,
        "deadline_triggered": True,
        "hop_exhausted": False,
    }


async def test_deadline_remaining_in_snapshot(tools: Tools) -> None:
    clock = FakeTime()
    client = ScriptedClient(finish({"a": 1}))
    result = await run(make_planner(tools, client, deadline_s=30.0, time_source=clock))
    assert result.metadata["constraints"]["deadline_at"] == 130.0
    assert result.metadata["constraints"]["deadline_remaining_s"] == 30.0
    assert result.metadata["constraints"]["deadline_triggered"] is False


async def test_deadline_already_past_skips_the_model(tools: Tools) -> None:
    client = ScriptedClient()
    result = await run(make_planner(tools, client, deadline_s=0.0, time_source=FakeTime()))
    assert result.reason == "budget_exhausted"
    assert result.payload is None
    assert client.calls == []


# -- §8 planning hints -------------------------------------------------------------------


async def test_disallowed_node_is_rejected(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), finish())
    result = await run(make_planner(tools, client, planning_hints={"disallow_nodes": ["echo"]}))
    assert result.metadata["steps"][0]["error"] == (
        "tool 'echo' is not permitted by constraints. Choose an allowed tool or revise the plan."
    )
    assert tools.seen == []


async def test_ordering_hint_rejects_once_then_allows(tools: Tools) -> None:
    client = ScriptedClient(
        call("other", text="x"), call("other", text="x"), call("echo", text="y"), finish()
    )
    hints = {"ordering_hints": ["echo", "other"]}
    result = await run(make_planner(tools, client, planning_hints=hints))
    steps = result.metadata["steps"]
    assert steps[0]["error"] == (
        "Ordering hint reminder: follow the preferred sequence [echo, other]. Proposed: other. "
        "Revise the plan."
    )
    assert steps[1]["error"] is None
    assert steps[1]["observation"] == {"answer": "other:x"}
    assert steps[2]["error"] is None


async def test_ordering_warning_resets_after_expected_tool(tools: Tools) -> None:
    client = ScriptedClient(
        call("third", text="x"),  # warned
        call("echo", text="x"),  # expected: completed [echo], warning reset
        call("third", text="x"),  # warned again (expected other)
        call("third", text="x"),  # allowed
        finish(),
    )
    hints = {"ordering_hints": ["echo", "other", "third"]}
    result = await run(make_planner(tools, client, planning_hints=hints))
    errors = [bool(step["error"]) for step in result.metadata["steps"]]
    assert errors == [True, False, True, False]


async def test_tools_outside_the_ordering_are_never_blocked(tools: Tools) -> None:
    client = ScriptedClient(call("third", text="x"), finish())
    result = await run(make_planner(tools, client, planning_hints={"ordering_hints": ["echo"]}))
    assert result.metadata["steps"][0]["error"] is None


async def test_disallow_checked_before_ordering(tools: Tools) -> None:
    client = ScriptedClient(call("other", text="x"), finish())
    hints = {"ordering_hints": ["echo", "other"], "disallow_nodes": ["other"]}
    result = await run(make_planner(tools, client, planning_hints=hints))
    assert "not permitted" in result.metadata["steps"][0]["error"]


async def test_hint_rejection_counts_no_hop(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), finish())
    hints = {"disallow_nodes": ["echo"]}
    result = await run(make_planner(tools, client, planning_hints=hints, hop_budget=3))
    assert result.metadata["constraints"]["hops_used"] == 0


# -- §9 token budget and summaries ---------------------------------------------------


async def test_under_budget_sends_full_history(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), finish())
    await run(make_planner(tools, client, token_budget=10**6))
    assert len(client.calls[1]) == 4


async def test_over_budget_sends_rule_based_summary_and_last_step(tools: Tools) -> None:
    client = ScriptedClient(call("ghost"), call("echo", text="a"), finish())
    await run(make_planner(tools, client, token_budget=10))
    third = client.calls[2]
    assert [m["role"] for m in third] == ["system", "user", "system", "assistant", "user"]
    summary = {
        "facts": {"last_observation": {"answer": "a"}},
        "goals": ["q"],
        "last_output_digest": '{"answer": "a"}',
        "note": "rule_based",
        "pending": ["retry ghost"],
    }
    assert third[2]["content"] == "Trajectory summary: " + json.dumps(summary, sort_keys=True)
    assert third[3]["content"] == action_json(call("echo", text="a"))
    assert third[4]["content"] == '{"observation": {"answer": "a"}}'


async def test_over_budget_first_call_has_summary_and_no_steps(tools: Tools) -> None:
    client = ScriptedClient(finish())
    await run(make_planner(tools, client, token_budget=1))
    first = client.calls[0]
    assert [m["role"] for m in first] == ["system", "user", "system"]
    assert first[2]["content"] == (
        'Trajectory summary: {"facts": {}, "goals": ["q"], "last_output_digest": null, '
        '"note": "rule_based", "pending": []}'
    )


class Summarizer:
    def __init__(self, reply: str | BaseException) -> None:
        self.reply = reply
        self.calls: list[tuple[list[Mapping[str, str]], Any]] = []

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        self.calls.append((list(messages), response_format))
        if isinstance(self.reply, BaseException):
            raise self.reply
        return self.reply


async def test_summarizer_is_called_when_rule_based_summary_is_too_long(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), finish())
    planner = make_planner(tools, client, token_budget=10)
    summarizer = Summarizer('{"goals": ["g"], "facts": {"k": "v"}}')
    planner._summarizer_client = summarizer  # type: ignore[assignment]
    await run(planner)
    history = [
        {
            "action": {
                "args": {"text": "a"},
                "join": None,
                "next_node": "echo",
                "plan": None,
                "thought": "call echo",
            },
            "error": None,
            "failure": None,
            "observation": {"answer": "a"},
        }
    ]
    base = {
        "goals": ["q"],
        "facts": {"last_observation": {"answer": "a"}},
        "pending": [],
        "last_output_digest": '{"answer": "a"}',
        "note": "rule_based",
    }
    first_summary_call = summarizer.calls[-1]
    assert first_summary_call[0] == [
        {
            "role": "system",
            "content": "You are a summariser producing compact JSON state. Respond with valid "
            "JSON matching the TrajectorySummary schema.",
        },
        {
            "role": "user",
            "content": json.dumps(
                {"query": "q", "history": history, "current_summary": base},
                ensure_ascii=False,
                sort_keys=True,
            ),
        },
    ]
    assert first_summary_call[1] == {
        "type": "json_schema",
        "json_schema": {
            "name": "trajectory_summary",
            "schema": TrajectorySummary.model_json_schema(),
        },
    }
    assert client.calls[1][2]["content"] == (
        'Trajectory summary: {"facts": {"k": "v"}, "goals": ["g"], "last_output_digest": null, '
        '"note": "llm", "pending": []}'
    )


async def test_summarizer_note_is_kept_when_given(tools: Tools) -> None:
    client = ScriptedClient(finish())
    planner = make_planner(tools, client, token_budget=5)
    planner._summarizer_client = Summarizer('{"note": "mine"}')  # type: ignore[assignment]
    await run(planner)
    assert '"note": "mine"' in client.calls[0][2]["content"]


@pytest.mark.parametrize(
    "reply",
    [
        pytest.param("not json", id="invalid-json"),
        pytest.param(RuntimeError("down"), id="raises"),
    ],
)
async def test_summarizer_failure_falls_back_to_rule_based(
    tools: Tools, reply: str | BaseException
) -> None:
    client = ScriptedClient(finish())
    planner = make_planner(tools, client, token_budget=5)
    planner._summarizer_client = Summarizer(reply)  # type: ignore[assignment]
    await run(planner)
    assert client.calls[0][2]["content"] == (
        'Trajectory summary: {"facts": {}, "goals": ["q"], "last_output_digest": null, '
        '"note": "rule_based_fallback", "pending": []}'
    )


async def test_summarizer_not_called_when_rule_based_summary_fits(tools: Tools) -> None:
    client = ScriptedClient(call("echo", text="a"), finish())
    # Full history is longer than the budget; the rule-based summary alone fits.
    planner = make_planner(tools, client, token_budget=300)
    summarizer = Summarizer('{"note": "mine"}')
    planner._summarizer_client = summarizer  # type: ignore[assignment]
    await run(planner)
    assert summarizer.calls == []
    assert '"note": "rule_based"' in client.calls[1][2]["content"]


# -- tools run as if awaited by the run ------------------------------------------------

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
SET_BY_TOOL: contextvars.ContextVar[str] = contextvars.ContextVar("set_by_tool", default="unset")


def single_tool_planner(func: Any, client: ScriptedClient, **kwargs: Any) -> ReactPlanner:
    registry = ModelRegistry()
    registry.register("t", Query, Answer)
    return ReactPlanner(
        llm_client=client, catalog=build_catalog([Node(func, name="t")], registry), **kwargs
    )


async def test_tool_sees_the_callers_context_variables() -> None:
    async def reads(args: Query, ctx: Any) -> Answer:
        return Answer(answer=REQUEST_ID.get())

    token = REQUEST_ID.set("req-42")
    try:
        result = await run(
            single_tool_planner(reads, ScriptedClient(call("t", text="x"), finish()))
        )
    finally:
        REQUEST_ID.reset(token)
    assert result.payload == {"answer": "req-42"}


async def test_context_variables_set_by_a_sequential_tool_reach_the_caller() -> None:
    async def writes(args: Query, ctx: Any) -> Answer:
        SET_BY_TOOL.set(args.text)
        return Answer(answer="ok")

    async def isolated() -> str:
        await run(single_tool_planner(writes, ScriptedClient(call("t", text="v1"), finish())))
        return SET_BY_TOOL.get()

    assert await asyncio.create_task(isolated()) == "v1"


async def test_cancelling_the_run_cancels_the_running_tool() -> None:
    entered = asyncio.Event()
    cancelled = asyncio.Event()

    async def blocks(args: Query, ctx: Any) -> Answer:
        entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        raise AssertionError("unreachable")

    planner = single_tool_planner(blocks, ScriptedClient(call("t", text="x")))
    task = asyncio.create_task(planner.run("q"))
    async with asyncio.timeout(5):
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await cancelled.wait()


async def test_concurrent_runs_of_one_planner_are_independent() -> None:
    gate = asyncio.Event()
    arrived: list[str] = []

    async def waits(args: Query, ctx: Any) -> Answer:
        arrived.append(args.text)
        if len(arrived) == 2:
            gate.set()
        await gate.wait()
        return Answer(answer=args.text + ":" + ctx.meta["who"])

    class Router(ScriptedClient):
        async def complete(self, **kwargs: Any) -> str:
            messages = kwargs["messages"]
            who = json.loads(messages[1]["content"])["context"]["who"]
            if len(messages) == 2:
                return json.dumps(call("t", text=who))
            return json.dumps(finish())

    planner = single_tool_planner(waits, Router())
    async with asyncio.timeout(5):
        one, two = await asyncio.gather(
            planner.run("q", context_meta={"who": "one"}),
            planner.run("q", context_meta={"who": "two"}),
        )
    assert one.payload == {"answer": "one:one"}
    assert two.payload == {"answer": "two:two"}


async def test_a_tool_may_run_a_nested_planner() -> None:
    async def inner_tool(args: Query, ctx: Any) -> Answer:
        return Answer(answer="inner:" + args.text)

    inner = single_tool_planner(inner_tool, ScriptedClient(call("t", text="deep"), finish()))

    async def outer_tool(args: Query, ctx: Any) -> Answer:
        result = await inner.run("inner query")
        return Answer(answer=result.payload["answer"])

    outer = single_tool_planner(outer_tool, ScriptedClient(call("t", text="x"), finish()))
    result = await run(outer)
    assert result.payload == {"answer": "inner:deep"}


async def test_wait_for_timeout_around_run_cancels_cleanly() -> None:
    started = asyncio.Event()

    async def slow(args: Query, ctx: Any) -> Answer:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    planner = single_tool_planner(slow, ScriptedClient(call("t", text="x")))
    task = asyncio.ensure_future(asyncio.wait_for(planner.run("q"), timeout=30))
    async with asyncio.timeout(5):
        await started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
