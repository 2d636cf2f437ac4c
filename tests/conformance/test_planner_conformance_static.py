"""Conformance: spec/planner.md §1, §2, §11, §12 — catalog, constructor, models, prompt texts.

Black-box: only names a PenguiFlow 2.2.5 program imports are used, and every expected
string is written out from the spec, never computed with the code under test.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import pytest
from pydantic import BaseModel, ValidationError

from penguiflow import ModelRegistry, Node, NodePolicy, NodeSpec, build_catalog, tool
from penguiflow.planner import prompts
from penguiflow.planner.react import (
    ParallelCall,
    ParallelJoin,
    PlannerAction,
    PlannerFinish,
    PlannerPause,
    ReactPlanner,
    Trajectory,
    TrajectoryStep,
    TrajectorySummary,
)


class Query(BaseModel):
    text: str


class Answer(BaseModel):
    answer: str


class NullClient:
    """A JSONLLMClient that is never called by these tests."""

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        raise AssertionError("not called")


async def plain(args: Query, ctx: Any) -> Answer:
    """Plain docstring.

    Second paragraph.
    """
    return Answer(answer=args.text)


async def nodoc(args: Query, ctx: Any) -> Answer:
    return Answer(answer=args.text)


def reg(*names: str) -> ModelRegistry:
    registry = ModelRegistry()
    for name in names:
        registry.register(name, Query, Answer)
    return registry


# -- §1 tool() ------------------------------------------------------------------------


def test_tool_returns_the_same_function_object() -> None:
    async def fn(args: Query, ctx: Any) -> Answer:
        return Answer(answer="x")

    assert tool()(fn) is fn
    assert inspect.iscoroutinefunction(fn)


def test_tool_signature_defaults() -> None:
    params = inspect.signature(tool).parameters
    assert {name: p.default for name, p in params.items()} == {
        "desc": None,
        "side_effects": "pure",
        "tags": None,
        "auth_scopes": None,
        "cost_hint": None,
        "latency_hint_ms": None,
        "safety_notes": None,
        "extra": None,
    }
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())


def test_tool_default_metadata_dict() -> None:
    async def fn(args: Query, ctx: Any) -> Answer:
        return Answer(answer="x")

    tool()(fn)
    assert fn.__penguiflow_tool__ == {  # type: ignore[attr-defined]
        "desc": None,
        "side_effects": "pure",
        "tags": (),
        "auth_scopes": (),
        "cost_hint": None,
        "latency_hint_ms": None,
        "safety_notes": None,
        "extra": {},
    }


def test_tool_dedupes_tags_and_scopes_into_tuples_and_copies_extra() -> None:
    extra = {"k": 1}

    @tool(
        desc="d",
        side_effects="write",
        tags=["b", "a", "b", "a"],
        auth_scopes=["s", "s", "t"],
        cost_hint="low",
        latency_hint_ms=5,
        safety_notes="careful",
        extra=extra,
    )
    async def fn(args: Query, ctx: Any) -> Answer:
        return Answer(answer="x")

    meta = fn.__penguiflow_tool__  # type: ignore[attr-defined]
    assert meta["tags"] == ("b", "a")
    assert meta["auth_scopes"] == ("s", "t")
    assert meta["extra"] == {"k": 1}
    assert type(meta["extra"]) is dict
    extra["k"] = 2
    assert meta["extra"] == {"k": 1}
    assert (meta["side_effects"], meta["cost_hint"], meta["latency_hint_ms"]) == ("write", "low", 5)
    assert meta["safety_notes"] == "careful"


def test_side_effects_values_are_not_validated() -> None:
    @tool(side_effects="anything")  # type: ignore[arg-type]
    async def fn(args: Query, ctx: Any) -> Answer:
        return Answer(answer="x")

    assert fn.__penguiflow_tool__["side_effects"] == "anything"  # type: ignore[attr-defined]


# -- §1 NodeSpec ------------------------------------------------------------------------


def test_nodespec_is_a_frozen_slotted_dataclass_with_defaults() -> None:
    fields = dataclasses.fields(NodeSpec)
    defaults = {
        f.name: (f.default if f.default is not dataclasses.MISSING else f.default_factory())  # type: ignore[misc]
        for f in fields
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }
    assert defaults == {
        "side_effects": "pure",
        "tags": (),
        "auth_scopes": (),
        "cost_hint": None,
        "latency_hint_ms": None,
        "safety_notes": None,
        "extra": {},
    }
    spec = NodeSpec(
        node=Node(plain, name="plain"), name="plain", desc="d", args_model=Query, out_model=Answer
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = "other"  # type: ignore[misc]
    assert not hasattr(spec, "__dict__")


def test_to_tool_record_shape_is_json_ready() -> None:
    spec = NodeSpec(
        node=Node(plain, name="plain"),
        name="plain",
        desc="d",
        args_model=Query,
        out_model=Answer,
        tags=("a",),
        auth_scopes=("s",),
        extra={"x": 1},
    )
    record = spec.to_tool_record()
    assert record == {
        "name": "plain",
        "desc": "d",
        "side_effects": "pure",
        "tags": ["a"],
        "auth_scopes": ["s"],
        "cost_hint": None,
        "latency_hint_ms": None,
        "safety_notes": None,
        "args_schema": Query.model_json_schema(),
        "out_schema": Answer.model_json_schema(),
        "extra": {"x": 1},
    }
    assert record["args_schema"]["title"] == "Query"
    assert record["out_schema"]["title"] == "Answer"
    assert isinstance(record["tags"], list)
    json.dumps(record)


# -- §1 build_catalog ---------------------------------------------------------------------


def test_build_catalog_keeps_order_and_names() -> None:
    specs = build_catalog(
        [Node(nodoc, name="second"), Node(plain, name="first")], reg("first", "second")
    )
    assert [s.name for s in specs] == ["second", "first"]
    assert all(isinstance(s, NodeSpec) for s in specs)
    assert specs[0].args_model is Query
    assert specs[0].out_model is Answer


def test_build_catalog_name_defaults_to_function_name() -> None:
    specs = build_catalog([Node(plain)], reg("plain"))
    assert specs[0].name == "plain"


def test_build_catalog_spec_keeps_the_node_object() -> None:
    node = Node(plain, name="plain", policy=NodePolicy(validate="none"))
    assert build_catalog([node], reg("plain"))[0].node is node


def test_build_catalog_unregistered_node_raises_keyerror() -> None:
    with pytest.raises(KeyError):
        build_catalog([Node(plain, name="ghost")], reg("plain"))


def test_build_catalog_desc_precedence() -> None:
    @tool(desc="")
    async def empty_desc(args: Query, ctx: Any) -> Answer:
        """From docstring."""
        return Answer(answer="x")

    @tool(desc="Decorated")
    async def decorated(args: Query, ctx: Any) -> Answer:
        """Ignored docstring."""
        return Answer(answer="x")

    specs = build_catalog(
        [
            Node(decorated, name="decorated"),
            Node(empty_desc, name="empty_desc"),
            Node(plain, name="plain"),
            Node(nodoc, name="nodoc"),
        ],
        reg("decorated", "empty_desc", "plain", "nodoc"),
    )
    assert [s.desc for s in specs] == [
        "Decorated",
        "From docstring.",
        "Plain docstring.\n\nSecond paragraph.",
        "nodoc",
    ]


def test_build_catalog_undecorated_defaults() -> None:
    (spec,) = build_catalog([Node(plain, name="plain")], reg("plain"))
    assert spec.side_effects == "pure"
    assert tuple(spec.tags) == ()
    assert tuple(spec.auth_scopes) == ()
    assert dict(spec.extra) == {}
    assert (spec.cost_hint, spec.latency_hint_ms, spec.safety_notes) == (None, None, None)


def test_build_catalog_copies_decorator_metadata() -> None:
    @tool(
        desc="D",
        side_effects="external",
        tags=["t", "t"],
        auth_scopes=["a"],
        cost_hint="high",
        latency_hint_ms=100,
        safety_notes="n",
        extra={"e": True},
    )
    async def rich(args: Query, ctx: Any) -> Answer:
        return Answer(answer="x")

    (spec,) = build_catalog([Node(rich, name="rich")], reg("rich"))
    record = spec.to_tool_record()
    assert {k: record[k] for k in record if k not in ("args_schema", "out_schema")} == {
        "name": "rich",
        "desc": "D",
        "side_effects": "external",
        "tags": ["t"],
        "auth_scopes": ["a"],
        "cost_hint": "high",
        "latency_hint_ms": 100,
        "safety_notes": "n",
        "extra": {"e": True},
    }


# -- §2 constructor -----------------------------------------------------------------------


def test_react_planner_signature_defaults() -> None:
    params = inspect.signature(ReactPlanner).parameters
    expected = {
        "llm": None,
        "nodes": None,
        "catalog": None,
        "registry": None,
        "llm_client": None,
        "max_iters": 8,
        "temperature": 0.0,
        "json_schema_mode": True,
        "system_prompt_extra": None,
        "token_budget": None,
        "pause_enabled": True,
        "state_store": None,
        "summarizer_llm": None,
        "planning_hints": None,
        "repair_attempts": 3,
        "deadline_s": None,
        "hop_budget": None,
        "time_source": None,
    }
    assert {name: params[name].default for name in expected} == expected
    names = list(params)
    assert names[: len(expected)] == list(expected)
    assert params["llm"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert all(params[n].kind is inspect.Parameter.KEYWORD_ONLY for n in names[1:])


@pytest.mark.parametrize(
    ("kwargs", "text"),
    [
        pytest.param({}, "Either catalog or (nodes and registry) must be provided", id="nothing"),
        pytest.param(
            {"llm": "gpt-4"}, "Either catalog or (nodes and registry) must be provided", id="llm"
        ),
        pytest.param(
            {"nodes": [Node(plain, name="plain")]},
            "Either catalog or (nodes and registry) must be provided",
            id="nodes-without-registry",
        ),
        pytest.param(
            {"registry": reg("plain")},
            "Either catalog or (nodes and registry) must be provided",
            id="registry-without-nodes",
        ),
        pytest.param({"catalog": []}, "llm or llm_client must be provided", id="no-llm"),
        pytest.param(
            {"nodes": [Node(plain, name="plain")], "registry": reg("plain")},
            "llm or llm_client must be provided",
            id="nodes-no-llm",
        ),
    ],
)
def test_constructor_validation_errors(kwargs: dict[str, Any], text: str) -> None:
    with pytest.raises(ValueError) as info:
        ReactPlanner(**kwargs)
    assert str(info.value) == text


def test_constructor_with_llm_name_does_not_need_litellm_and_has_no_summarizer() -> None:
    planner = ReactPlanner("some-model", catalog=[])
    assert planner._summarizer_client is None


def test_summarizer_client_is_assignable_compat_surface() -> None:
    planner = ReactPlanner(llm_client=NullClient(), catalog=[], summarizer_llm="m")
    assert planner._summarizer_client is not None
    replacement = NullClient()
    planner._summarizer_client = replacement  # type: ignore[assignment]
    assert planner._summarizer_client is replacement


def test_catalog_takes_precedence_over_nodes() -> None:
    catalog = build_catalog([Node(plain, name="plain")], reg("plain"))
    # An unregistered node would raise KeyError if nodes were used.
    ReactPlanner(
        llm_client=NullClient(),
        catalog=catalog,
        nodes=[Node(nodoc, name="ghost")],
        registry=reg("plain"),
    )


# -- §11 models ------------------------------------------------------------------------


def test_planner_action_fields_and_defaults() -> None:
    action = PlannerAction(thought="t")
    assert action.model_dump() == {
        "thought": "t",
        "next_node": None,
        "args": None,
        "plan": None,
        "join": None,
    }
    assert list(PlannerAction.model_fields) == ["thought", "next_node", "args", "plan", "join"]


def test_planner_action_requires_thought_so_empty_object_is_invalid() -> None:
    with pytest.raises(ValidationError):
        PlannerAction.model_validate_json("{}")


def test_planner_action_ignores_unknown_keys_and_parses_plans() -> None:
    action = PlannerAction.model_validate_json(
        json.dumps(
            {
                "thought": "fan out",
                "plan": [{"node": "a", "args": {"x": 1}}, {"node": "b", "extra": 1}],
                "join": {"node": "merge"},
                "surprise": True,
            }
        )
    )
    assert action.plan == [ParallelCall(node="a", args={"x": 1}), ParallelCall(node="b")]
    assert action.plan[1].args == {}
    assert action.join == ParallelJoin(node="merge", args={})
    assert not hasattr(action, "surprise")


def test_parallel_call_and_join_defaults() -> None:
    assert ParallelCall(node="a").model_dump() == {"node": "a", "args": {}}
    assert ParallelJoin(node="j").model_dump() == {"node": "j", "args": {}}
    first, second = ParallelCall(node="a"), ParallelCall(node="b")
    first.args["k"] = 1
    assert second.args == {}


def test_planner_pause_model() -> None:
    for reason in ("approval_required", "await_input", "external_event", "constraints_conflict"):
        pause = PlannerPause(reason=reason, resume_token="tok")  # type: ignore[arg-type]
        assert pause.payload == {}
    with pytest.raises(ValidationError):
        PlannerPause(reason="other", resume_token="tok")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        PlannerPause(reason="await_input")  # type: ignore[call-arg]


def test_planner_finish_model() -> None:
    finish = PlannerFinish(reason="no_path")
    assert (finish.payload, finish.metadata) == (None, {})
    for reason in ("answer_complete", "no_path", "budget_exhausted"):
        PlannerFinish(reason=reason)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        PlannerFinish(reason="done")  # type: ignore[arg-type]


def test_trajectory_summary_defaults_and_compact() -> None:
    summary = TrajectorySummary()
    assert summary.model_dump() == {
        "goals": [],
        "facts": {},
        "pending": [],
        "last_output_digest": None,
        "note": None,
    }
    assert summary.compact() == {
        "goals": [],
        "facts": {},
        "pending": [],
        "last_output_digest": None,
    }
    noted = TrajectorySummary(goals=["g"], note="llm")
    assert noted.compact() == {
        "goals": ["g"],
        "facts": {},
        "pending": [],
        "last_output_digest": None,
        "note": "llm",
    }


def test_trajectory_step_defaults_and_dump() -> None:
    step = TrajectoryStep(PlannerAction(thought="t", next_node="a", args={"text": "q"}))
    assert (step.observation, step.error, step.failure) == (None, None, None)
    assert step.dump() == {
        "action": {
            "thought": "t",
            "next_node": "a",
            "args": {"text": "q"},
            "plan": None,
            "join": None,
        },
        "observation": None,
        "error": None,
        "failure": None,
    }
    model_step = TrajectoryStep(
        PlannerAction(thought="t"), observation=Answer(answer="x"), error="e", failure={"k": 1}
    )
    dumped = model_step.dump()
    assert dumped["observation"] == {"answer": "x"}
    assert dumped["failure"] == {"k": 1}
    assert dumped["error"] == "e"
    assert TrajectoryStep(PlannerAction(thought="t"), observation=[1, "a"]).dump()[
        "observation"
    ] == [1, "a"]


def test_trajectory_step_is_slotted_dataclass() -> None:
    assert [f.name for f in dataclasses.fields(TrajectoryStep)] == [
        "action",
        "observation",
        "error",
        "failure",
    ]
    assert not hasattr(TrajectoryStep(PlannerAction(thought="t")), "__dict__")


def test_trajectory_defaults() -> None:
    assert [f.name for f in dataclasses.fields(Trajectory)] == [
        "query",
        "context_meta",
        "steps",
        "summary",
        "hint_state",
        "resume_user_input",
    ]
    trajectory = Trajectory(query="q")
    assert trajectory.context_meta is None
    assert trajectory.steps == []
    assert trajectory.hint_state == {}
    assert trajectory.summary is None
    assert trajectory.resume_user_input is None
    assert Trajectory(query="other").steps is not trajectory.steps
    assert not hasattr(trajectory, "__dict__")


def _trajectory() -> Trajectory:
    trajectory = Trajectory(query="q", context_meta={"tenant": "acme"})
    trajectory.steps.append(
        TrajectoryStep(
            PlannerAction(thought="a", next_node="plain", args={"text": "x"}),
            observation=Answer(answer="x"),
        )
    )
    trajectory.steps.append(
        TrajectoryStep(
            PlannerAction(thought="b", next_node="plain", args={}),
            error="bad",
            failure={"node": "plain"},
        )
    )
    trajectory.hint_state["ordering_state"] = {"completed": ["plain"], "warned": False}
    trajectory.resume_user_input = "yes"
    return trajectory


def test_trajectory_to_history_and_serialise() -> None:
    trajectory = _trajectory()
    history = trajectory.to_history()
    assert history == [step.dump() for step in trajectory.steps]
    data = trajectory.serialise()
    assert data == {
        "query": "q",
        "context_meta": {"tenant": "acme"},
        "steps": history,
        "summary": None,
        "hint_state": {"ordering_state": {"completed": ["plain"], "warned": False}},
        "resume_user_input": "yes",
    }
    json.dumps(data)
    assert Trajectory(query="z").serialise()["context_meta"] == {}


def test_trajectory_serialise_includes_summary_dump() -> None:
    trajectory = Trajectory(query="q", summary=TrajectorySummary(goals=["q"], note="n"))
    assert trajectory.serialise()["summary"] == {
        "goals": ["q"],
        "facts": {},
        "pending": [],
        "last_output_digest": None,
        "note": "n",
    }


def test_trajectory_from_serialised_round_trip() -> None:
    data = _trajectory().serialise()
    data["summary"] = {"goals": ["q"], "note": "rule_based"}
    restored = Trajectory.from_serialised(json.loads(json.dumps(data)))
    assert restored.query == "q"
    assert dict(restored.context_meta or {}) == {"tenant": "acme"}
    assert isinstance(restored.steps[0].action, PlannerAction)
    assert restored.steps[0].action.next_node == "plain"
    assert restored.steps[0].observation == {"answer": "x"}
    assert restored.steps[1].error == "bad"
    assert dict(restored.steps[1].failure or {}) == {"node": "plain"}
    assert isinstance(restored.summary, TrajectorySummary)
    assert restored.summary.note == "rule_based"
    assert restored.hint_state == {"ordering_state": {"completed": ["plain"], "warned": False}}
    assert restored.resume_user_input == "yes"


def test_trajectory_from_serialised_requires_query() -> None:
    with pytest.raises(KeyError):
        Trajectory.from_serialised({"steps": []})


def test_trajectory_compress_rule_based() -> None:
    trajectory = _trajectory()
    summary = trajectory.compress()
    assert trajectory.summary is summary
    assert summary.goals == ["q"]
    assert summary.note == "rule_based"
    # The last step has an error and no observation.
    assert summary.facts == {"last_error": "bad"}
    assert summary.pending == ["retry plain"]
    assert summary.last_output_digest is None


def test_trajectory_compress_observation_digest_and_finish_pending() -> None:
    trajectory = Trajectory(query="q")
    trajectory.steps.append(TrajectoryStep(PlannerAction(thought="x"), error="oops"))
    trajectory.steps.append(
        TrajectoryStep(
            PlannerAction(thought="y", next_node="plain"), observation=Answer(answer="é")
        )
    )
    summary = trajectory.compress()
    assert summary.pending == ["retry finish"]
    assert summary.facts == {"last_observation": {"answer": "é"}}
    assert summary.last_output_digest == '{"answer": "é"}'


@pytest.mark.parametrize(
    ("size", "truncated"),
    [pytest.param(120, False, id="120-kept"), pytest.param(121, True, id="121-truncated")],
)
def test_trajectory_compress_digest_truncation(size: int, truncated: bool) -> None:
    text = "a" * (size - 2)  # json.dumps adds two quotes
    trajectory = Trajectory(query="q")
    trajectory.steps.append(TrajectoryStep(PlannerAction(thought="x"), observation=text))
    digest = trajectory.compress().last_output_digest
    full = json.dumps(text)
    assert len(full) == size
    assert digest == (full[:117] + "..." if truncated else full)


# -- §12 prompts ---------------------------------------------------------------------------


def test_render_summary_and_resume_input() -> None:
    assert prompts.render_summary({"b": 1, "a": "é"}) == 'Trajectory summary: {"a": "é", "b": 1}'
    assert prompts.render_resume_user_input("go ahead") == "Resume input: go ahead"


def test_render_planning_hints_all_lines_in_order() -> None:
    text = prompts.render_planning_hints(
        {
            "budget": {"tokens": 5},
            "preferred_nodes": ["x"],
            "disallow_nodes": ["d"],
            "parallel_groups": [["a", "b"]],
            "preferred_order": ["triage"],
            "constraints": "max_parallel=2",
        }
    )
    assert text == (
        "Respect the following constraints: max_parallel=2\n"
        "Preferred order (if feasible): ['triage']\n"
        "Allowed parallel groups: [['a', 'b']]\n"
        "Disallowed tools: ['d']\n"
        "Preferred tools: ['x']\n"
        "Budget hints: {'tokens': 5}"
    )


def test_render_planning_hints_empty_and_falsy() -> None:
    assert prompts.render_planning_hints({}) == ""
    assert prompts.render_planning_hints({"constraints": "", "preferred_order": []}) == ""


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        pytest.param(
            lambda: prompts.render_disallowed_node("x"),
            "tool 'x' is not permitted by constraints. Choose an allowed tool or revise the plan.",
            id="disallowed",
        ),
        pytest.param(
            lambda: prompts.render_ordering_hint_violation(["a", "b"], "b"),
            "Ordering hint reminder: follow the preferred sequence [a, b]. Proposed: b. "
            "Revise the plan.",
            id="ordering",
        ),
        pytest.param(
            lambda: prompts.render_parallel_limit(3),
            "Parallel action exceeds max_parallel=3. Reduce parallel fan-out.",
            id="parallel-limit",
        ),
        pytest.param(
            lambda: prompts.render_sequential_only("s"),
            "tool 's' must run sequentially. Do not include it in a parallel plan.",
            id="sequential-only",
        ),
        pytest.param(
            lambda: prompts.render_parallel_setup_error(["e1", "e2"]),
            "Parallel plan invalid: e1; e2. Revise the plan and retry.",
            id="setup-error",
        ),
        pytest.param(
            prompts.render_empty_parallel_plan,
            "Parallel plan must include at least one branch in 'plan'.",
            id="empty-plan",
        ),
        pytest.param(
            lambda: prompts.render_parallel_with_next_node("n"),
            "Parallel plan cannot set next_node='n'. Use 'join' to continue or finish the run "
            "explicitly.",
            id="plan-with-next-node",
        ),
        pytest.param(
            lambda: prompts.render_parallel_unknown_failure("u"),
            "tool 'u' failed during parallel execution. Investigate the tool and adjust the plan.",
            id="unknown-failure",
        ),
        pytest.param(
            lambda: prompts.render_hop_budget_violation(2),
            "Hop budget exhausted; you have used all available tool calls. Finish with the best "
            "answer so far or reply with no_path. (limit=2)",
            id="hop-budget",
        ),
        pytest.param(
            prompts.render_deadline_exhausted,
            "Deadline reached. Provide the best available conclusion or return no_path.",
            id="deadline",
        ),
        pytest.param(
            lambda: prompts.render_validation_error("n", "[]"),
            "args for tool 'n' did not validate: []. Return corrected JSON.",
            id="validation",
        ),
        pytest.param(
            lambda: prompts.render_output_validation_error("n", "[]"),
            "tool 'n' returned data that did not validate: []. Ensure the tool output matches "
            "the declared schema.",
            id="output-validation",
        ),
        pytest.param(
            lambda: prompts.render_invalid_node("z", ["b", "a", "c"]),
            "tool 'z' is not in the catalog. Choose one of: a, b, c.",
            id="invalid-node",
        ),
        pytest.param(
            lambda: prompts.render_repair_message("E"),
            "Previous response was invalid JSON or schema mismatch: E. Reply with corrected JSON "
            "only.",
            id="repair",
        ),
    ],
)
def test_prompt_texts(call: Any, expected: str) -> None:
    assert call() == expected


def test_build_summarizer_messages() -> None:
    messages = prompts.build_summarizer_messages("q", ({"step": 1},), {"goals": ["q"]})
    assert messages == [
        {
            "role": "system",
            "content": "You are a summariser producing compact JSON state. Respond with valid "
            "JSON matching the TrajectorySummary schema.",
        },
        {
            "role": "user",
            "content": '{"current_summary": {"goals": ["q"]}, "history": [{"step": 1}], '
            '"query": "q"}',
        },
    ]


def test_build_user_prompt() -> None:
    assert prompts.build_user_prompt("question", {"tenant": "acme"}) == (
        '{"context": {"tenant": "acme"}, "query": "question"}'
    )
    assert prompts.build_user_prompt("question") == '{"query": "question"}'
    assert prompts.build_user_prompt("q", {}) == '{"query": "q"}'
    assert prompts.build_user_prompt("ü") == '{"query": "ü"}'


def test_render_observation_variants() -> None:
    render = prompts.render_observation
    assert render(observation=None, error=None) == '{"observation": null}'
    assert render(observation={"b": 1, "a": 2}, error=None) == ('{"observation": {"a": 2, "b": 1}}')
    assert render(observation=None, error="e", failure={"node": "n"}) == (
        '{"error": "e", "failure": {"node": "n"}}'
    )
    assert render(observation=None, error="", failure={}) == '{"observation": null}'
    assert render(observation=0, error="e") == '{"error": "e", "observation": 0}'


_ARGS_SCHEMA = {"properties": {"text": {"title": "Text", "type": "string"}}, "title": "Query"}


def test_render_tool_required_lines_only() -> None:
    record = {
        "name": "t",
        "desc": "D",
        "side_effects": "pure",
        "args_schema": {"b": 1, "a": 2},
        "out_schema": {},
        "tags": [],
        "auth_scopes": [],
        "cost_hint": None,
        "latency_hint_ms": None,
        "safety_notes": None,
        "extra": {},
    }
    assert prompts.render_tool(record) == (
        "- name: t\n"
        "  desc: D\n"
        "  side_effects: pure\n"
        '  args_schema: {"a": 2, "b": 1}\n'
        "  out_schema: {}"
    )
    minimal = {k: record[k] for k in ("name", "desc", "side_effects", "args_schema", "out_schema")}
    assert prompts.render_tool(minimal) == prompts.render_tool(record)


def test_render_tool_all_optional_lines() -> None:
    record = {
        "name": "t",
        "desc": "D",
        "side_effects": "read",
        "args_schema": {},
        "out_schema": {"x": "é"},
        "tags": ["a", "b"],
        "auth_scopes": ["s1", "s2"],
        "cost_hint": "cheap",
        "latency_hint_ms": 0,
        "safety_notes": "safe",
        "extra": {"z": 1, "y": [1]},
    }
    assert prompts.render_tool(record) == (
        "- name: t\n"
        "  desc: D\n"
        "  side_effects: read\n"
        "  args_schema: {}\n"
        '  out_schema: {"x": "é"}\n'
        "  tags: a, b\n"
        "  auth_scopes: s1, s2\n"
        "  cost_hint: cheap\n"
        "  latency_hint_ms: 0\n"
        "  safety_notes: safe\n"
        '  extra: {"y": [1], "z": 1}'
    )


_RULES = (
    "You are PenguiFlow ReactPlanner, a JSON-only planner.\n"
    "Follow these rules strictly:\n"
    "1. Respond with valid JSON matching the PlannerAction schema.\n"
    "2. Use the provided tools when necessary; never invent new tool names.\n"
    "3. Keep 'thought' concise and factual.\n"
    "4. When the task is complete, set 'next_node' to null and include the final payload in "
    "'args'.\n"
    "5. Do not emit plain text outside JSON.\n"
    "\n"
    "Available tools:\n"
)


def test_build_system_prompt_empty_catalog() -> None:
    assert prompts.build_system_prompt([]) == _RULES + "(none)"


def test_build_system_prompt_with_tools_extra_and_hints() -> None:
    records = [
        {"name": "a", "desc": "A", "side_effects": "pure", "args_schema": {}, "out_schema": {}},
        {"name": "b", "desc": "B", "side_effects": "read", "args_schema": {}, "out_schema": {}},
    ]
    text = prompts.build_system_prompt(
        records, extra="Be brief.", planning_hints={"disallow_nodes": ["b"]}
    )
    assert text == (
        _RULES
        + "- name: a\n  desc: A\n  side_effects: pure\n  args_schema: {}\n  out_schema: {}\n"
        + "- name: b\n  desc: B\n  side_effects: read\n  args_schema: {}\n  out_schema: {}\n"
        + "\nAdditional guidance:\nBe brief.\n"
        + "\nDisallowed tools: ['b']"
    )


def test_build_system_prompt_empty_hints_append_nothing() -> None:
    assert prompts.build_system_prompt([], extra="", planning_hints={}) == _RULES + "(none)"
    assert prompts.build_system_prompt([], planning_hints={"budget": {}}) == _RULES + "(none)"


async def test_planner_system_prompt_renders_catalog_records() -> None:
    catalog = build_catalog([Node(plain, name="plain")], reg("plain"))

    class Capture(NullClient):
        seen: ClassVar[list[str]] = []

        async def complete(
            self,
            *,
            messages: Sequence[Mapping[str, str]],
            response_format: Mapping[str, Any] | None = None,
        ) -> str:
            self.seen.append(messages[0]["content"])
            return '{"thought": "done", "next_node": null, "args": {"ok": 1}}'

    client = Capture()
    planner = ReactPlanner(
        llm_client=client,
        catalog=catalog,
        system_prompt_extra="Extra words.",
        planning_hints={
            "ordering_hints": ["plain"],
            "disallow_nodes": ["z", "y"],
            "prefer_nodes": ["plain"],
            "parallel_groups": [["plain"]],
            "sequential_only": ["q", "p"],
            "max_parallel": 2,
            "budget_hints": {"max_parallel": 9, "tokens": 1},
        },
    )
    async with asyncio.timeout(5):
        await planner.run("q")
    expected = prompts.build_system_prompt(
        [catalog[0].to_tool_record()],
        extra="Extra words.",
        planning_hints={
            "constraints": "max_parallel=2; sequential_only=p,q",
            "preferred_order": ["plain"],
            "parallel_groups": [["plain"]],
            "disallow_nodes": ["y", "z"],
            "preferred_nodes": ["plain"],
            "budget": {"max_parallel": 9, "tokens": 1},
        },
    )
    assert client.seen == [expected]
    assert expected.endswith(
        "\n\nAdditional guidance:\nExtra words.\n\n"
        "Respect the following constraints: max_parallel=2; sequential_only=p,q\n"
        "Preferred order (if feasible): ['plain']\n"
        "Allowed parallel groups: [['plain']]\n"
        "Disallowed tools: ['y', 'z']\n"
        "Preferred tools: ['plain']\n"
        "Budget hints: {'max_parallel': 9, 'tokens': 1}"
    )
    assert "- name: plain\n  desc: Plain docstring.\n\nSecond paragraph.\n" in expected


@pytest.mark.parametrize(
    ("hints", "line"),
    [
        pytest.param(
            {"budget_hints": {"max_parallel": 4}},
            "Respect the following constraints: max_parallel=4",
            id="budget-fallback",
        ),
        pytest.param(
            {"max_parallel": "3", "budget_hints": {"max_parallel": 5}},
            "Respect the following constraints: max_parallel=5",
            id="non-int-top-level",
        ),
        pytest.param({"sequential_only": ["b", "a"]}, None, id="sequential-only"),
    ],
)
async def test_planner_max_parallel_hint_resolution(
    hints: dict[str, Any], line: str | None
) -> None:
    seen: list[str] = []

    class Capture(NullClient):
        async def complete(
            self,
            *,
            messages: Sequence[Mapping[str, str]],
            response_format: Mapping[str, Any] | None = None,
        ) -> str:
            seen.append(messages[0]["content"])
            return '{"thought": "done", "args": {"ok": 1}}'

    async with asyncio.timeout(5):
        await ReactPlanner(llm_client=Capture(), catalog=[], planning_hints=hints).run("q")
    if line is None:
        assert "Respect the following constraints: sequential_only=a,b" in seen[0]
    else:
        assert line in seen[0].splitlines()


async def test_no_hints_append_nothing_to_planner_prompt() -> None:
    seen: list[str] = []

    class Capture(NullClient):
        async def complete(
            self,
            *,
            messages: Sequence[Mapping[str, str]],
            response_format: Mapping[str, Any] | None = None,
        ) -> str:
            seen.append(messages[0]["content"])
            return '{"thought": "done", "args": {"ok": 1}}'

    async with asyncio.timeout(5):
        await ReactPlanner(llm_client=Capture(), catalog=[], planning_hints={}).run("q")
    assert seen == [_RULES + "(none)"]


async def test_readme_planner_snippet_with_plain_functions() -> None:
    """The seed README passes the decorated functions themselves to build_catalog."""

    class Documents(BaseModel):
        results: list[str]

    class Summary(BaseModel):
        text: str

    @tool(desc="Search documentation")
    async def search_docs(args: Query, ctx: Any) -> Documents:
        return Documents(results=[args.text])

    @tool(desc="Summarize results")
    async def summarize(args: Documents, ctx: Any) -> Summary:
        return Summary(text=" ".join(args.results))

    registry = ModelRegistry()
    registry.register("search_docs", Query, Documents)
    registry.register("summarize", Documents, Summary)
    catalog = build_catalog([search_docs, summarize], registry)  # type: ignore[list-item]
    assert [spec.name for spec in catalog] == ["search_docs", "summarize"]
    assert [spec.desc for spec in catalog] == ["Search documentation", "Summarize results"]
    assert all(isinstance(spec.node, Node) for spec in catalog)
    assert catalog[0].node.func is search_docs

    replies = [
        '{"thought": "s", "next_node": "search_docs", "args": {"text": "routing"}}',
        '{"thought": "m", "next_node": "summarize", "args": {"results": ["routing"]}}',
        '{"thought": "done", "next_node": null}',
    ]

    class Scripted(NullClient):
        async def complete(self, **kwargs: Any) -> str:
            return replies.pop(0)

    planner = ReactPlanner(llm_client=Scripted(), catalog=catalog, max_iters=10)
    async with asyncio.timeout(5):
        result = await planner.run("Explain PenguiFlow routing")
    assert result.payload == {"text": "routing"}


def test_planner_names_resolve_to_the_same_objects() -> None:
    import penguiflow
    import penguiflow.planner as planner_pkg
    import penguiflow.planner.react as react

    for name in (
        "ParallelCall",
        "ParallelJoin",
        "PlannerAction",
        "PlannerFinish",
        "PlannerPause",
        "ReactPlanner",
        "Trajectory",
        "TrajectoryStep",
        "TrajectorySummary",
    ):
        assert getattr(planner_pkg, name) is getattr(react, name), name
    for name in ("ReactPlanner", "PlannerAction", "PlannerFinish", "Trajectory", "TrajectoryStep"):
        assert getattr(penguiflow, name) is getattr(react, name), name
        assert name in penguiflow.__all__
    assert react.JSONLLMClient is not None
    assert set(typing.get_args(react.PlannerPauseReason)) == {
        "approval_required",
        "await_input",
        "external_event",
        "constraints_conflict",
    }
    for name in ("NodeSpec", "SideEffect", "build_catalog", "tool"):
        assert getattr(penguiflow, name) is getattr(penguiflow.catalog, name)
    assert set(typing.get_args(penguiflow.SideEffect)) == {
        "pure",
        "read",
        "write",
        "external",
        "stateful",
    }


def test_json_llm_client_is_a_protocol_users_implement_structurally() -> None:
    from penguiflow.planner.react import JSONLLMClient

    assert getattr(JSONLLMClient, "_is_protocol", False)

    class Mine(JSONLLMClient):  # programs may also subclass it explicitly
        async def complete(
            self,
            *,
            messages: Sequence[Mapping[str, str]],
            response_format: Mapping[str, Any] | None = None,
        ) -> str:
            return "{}"

    ReactPlanner(llm_client=Mine(), catalog=[])
