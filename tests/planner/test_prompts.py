"""The prompt strings are a contract: each one pinned character for character."""

from __future__ import annotations

import json

import pytest

from penguiflow.planner import prompts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            prompts.render_summary({"b": 1, "a": "é"}),
            'Trajectory summary: {"a": "é", "b": 1}',
            id="summary",
        ),
        pytest.param(prompts.render_resume_user_input("yes"), "Resume input: yes", id="resume"),
        pytest.param(
            prompts.render_disallowed_node("x"),
            "tool 'x' is not permitted by constraints. Choose an allowed tool or revise the plan.",
            id="disallowed",
        ),
        pytest.param(
            prompts.render_ordering_hint_violation(["a", "b"], "b"),
            "Ordering hint reminder: follow the preferred sequence [a, b]. Proposed: b. "
            "Revise the plan.",
            id="ordering",
        ),
        pytest.param(
            prompts.render_parallel_limit(2),
            "Parallel action exceeds max_parallel=2. Reduce parallel fan-out.",
            id="parallel-limit",
        ),
        pytest.param(
            prompts.render_sequential_only("x"),
            "tool 'x' must run sequentially. Do not include it in a parallel plan.",
            id="sequential-only",
        ),
        pytest.param(
            prompts.render_parallel_setup_error(["e1", "e2"]),
            "Parallel plan invalid: e1; e2. Revise the plan and retry.",
            id="setup-error",
        ),
        pytest.param(
            prompts.render_empty_parallel_plan(),
            "Parallel plan must include at least one branch in 'plan'.",
            id="empty-plan",
        ),
        pytest.param(
            prompts.render_parallel_with_next_node("x"),
            "Parallel plan cannot set next_node='x'. Use 'join' to continue or finish the "
            "run explicitly.",
            id="plan-with-next-node",
        ),
        pytest.param(
            prompts.render_parallel_unknown_failure("x"),
            "tool 'x' failed during parallel execution. Investigate the tool and adjust the plan.",
            id="unknown-failure",
        ),
        pytest.param(
            prompts.render_hop_budget_violation(3),
            "Hop budget exhausted; you have used all available tool calls. Finish with the "
            "best answer so far or reply with no_path. (limit=3)",
            id="hop-budget",
        ),
        pytest.param(
            prompts.render_deadline_exhausted(),
            "Deadline reached. Provide the best available conclusion or return no_path.",
            id="deadline",
        ),
        pytest.param(
            prompts.render_validation_error("x", "[]"),
            "args for tool 'x' did not validate: []. Return corrected JSON.",
            id="validation",
        ),
        pytest.param(
            prompts.render_output_validation_error("x", "[]"),
            "tool 'x' returned data that did not validate: []. Ensure the tool output "
            "matches the declared schema.",
            id="output-validation",
        ),
        pytest.param(
            prompts.render_invalid_node("x", ["b", "a"]),
            "tool 'x' is not in the catalog. Choose one of: a, b.",
            id="invalid-node",
        ),
        pytest.param(
            prompts.render_repair_message("oops"),
            "Previous response was invalid JSON or schema mismatch: oops. Reply with "
            "corrected JSON only.",
            id="repair",
        ),
    ],
)
def test_fixed_template_renders_exact_text(text: str, expected: str) -> None:
    assert text == expected


def test_planning_hints_render_only_set_keys_with_python_reprs() -> None:
    text = prompts.render_planning_hints(
        {
            "constraints": "max_parallel=2",
            "preferred_order": ["triage"],
            "parallel_groups": [["a", "b"]],
            "disallow_nodes": [],
            "preferred_nodes": ["a"],
            "budget": {"hops": 2},
        }
    )
    assert text.split("\n") == [
        "Respect the following constraints: max_parallel=2",
        "Preferred order (if feasible): ['triage']",
        "Allowed parallel groups: [['a', 'b']]",
        "Preferred tools: ['a']",
        "Budget hints: {'hops': 2}",
    ]


def test_planning_hints_render_empty_string_without_hints() -> None:
    assert prompts.render_planning_hints({}) == ""


def test_summarizer_messages_embed_query_history_and_summary() -> None:
    messages = prompts.build_summarizer_messages("q", ({"s": 1},), {"goals": ["q"]})
    assert messages == [
        {
            "role": "system",
            "content": "You are a summariser producing compact JSON state. Respond with "
            "valid JSON matching the TrajectorySummary schema.",
        },
        {
            "role": "user",
            "content": '{"current_summary": {"goals": ["q"]}, "history": [{"s": 1}], "query": "q"}',
        },
    ]


_RECORD = {
    "name": "t",
    "desc": "d",
    "side_effects": "pure",
    "args_schema": {"b": 1, "a": 2},
    "out_schema": {},
}


def test_render_tool_minimal_record_has_required_lines_only() -> None:
    assert prompts.render_tool(_RECORD) == (
        "- name: t\n  desc: d\n  side_effects: pure\n"
        '  args_schema: {"a": 2, "b": 1}\n  out_schema: {}'
    )


def test_render_tool_full_record_adds_optional_lines_in_order() -> None:
    record = {
        **_RECORD,
        "tags": ["x", "y"],
        "auth_scopes": ["s"],
        "cost_hint": "low",
        "latency_hint_ms": 0,
        "safety_notes": "careful",
        "extra": {"k": "v"},
    }
    lines = prompts.render_tool(record).split("\n")[5:]
    assert lines == [
        "  tags: x, y",
        "  auth_scopes: s",
        "  cost_hint: low",
        "  latency_hint_ms: 0",
        "  safety_notes: careful",
        '  extra: {"k": "v"}',
    ]


_RULES = (
    "You are PenguiFlow ReactPlanner, a JSON-only planner.\n"
    "Follow these rules strictly:\n"
    "1. Respond with valid JSON matching the PlannerAction schema.\n"
    "2. Use the provided tools when necessary; never invent new tool names.\n"
    "3. Keep 'thought' concise and factual.\n"
    "4. When the task is complete, set 'next_node' to null and include the final payload "
    "in 'args'.\n"
    "5. Do not emit plain text outside JSON.\n"
    "\n"
    "Available tools:\n"
)


def test_system_prompt_without_tools_says_none() -> None:
    assert prompts.build_system_prompt([]) == _RULES + "(none)"


def test_system_prompt_appends_guidance_then_hints() -> None:
    text = prompts.build_system_prompt(
        [_RECORD], extra="Be brief.", planning_hints={"preferred_nodes": ["t"]}
    )
    assert text == (
        _RULES
        + prompts.render_tool(_RECORD)
        + "\n\nAdditional guidance:\nBe brief.\n\nPreferred tools: ['t']"
    )


def test_system_prompt_skips_hints_that_render_empty() -> None:
    assert prompts.build_system_prompt([], planning_hints={"budget": {}}) == _RULES + "(none)"


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        pytest.param(None, '{"query": "question"}', id="no-context"),
        pytest.param({}, '{"query": "question"}', id="empty-context"),
        pytest.param(
            {"tenant": "acme"}, '{"context": {"tenant": "acme"}, "query": "question"}', id="context"
        ),
    ],
)
def test_user_prompt_carries_query_and_context(context, expected) -> None:
    assert prompts.build_user_prompt("question", context) == expected


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({"observation": None, "error": None}, {"observation": None}, id="nothing"),
        pytest.param({"observation": {"a": 1}, "error": None}, {"observation": {"a": 1}}, id="obs"),
        pytest.param({"observation": None, "error": ""}, {"observation": None}, id="empty-error"),
        pytest.param(
            {"observation": None, "error": "bad", "failure": {"node": "x"}},
            {"error": "bad", "failure": {"node": "x"}},
            id="error-failure",
        ),
    ],
)
def test_observation_renders_present_parts(kwargs, expected) -> None:
    assert json.loads(prompts.render_observation(**kwargs)) == expected


def test_observation_uses_sorted_keys_and_default_separators() -> None:
    text = prompts.render_observation(observation={"b": 1, "a": 2}, error="e")
    assert text == '{"error": "e", "observation": {"a": 2, "b": 1}}'
