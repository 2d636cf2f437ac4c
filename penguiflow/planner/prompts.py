"""Prompt text of the ReactPlanner: every string the planner sends to a model.

The wording is part of the 2.2.5 contract (spec/planner.md section 12): programs and
recorded conversations compare these strings character for character, so change
nothing here without a compatibility note.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "build_summarizer_messages",
    "build_system_prompt",
    "build_user_prompt",
    "render_deadline_exhausted",
    "render_disallowed_node",
    "render_empty_parallel_plan",
    "render_hop_budget_violation",
    "render_invalid_node",
    "render_observation",
    "render_ordering_hint_violation",
    "render_output_validation_error",
    "render_parallel_limit",
    "render_parallel_setup_error",
    "render_parallel_unknown_failure",
    "render_parallel_with_next_node",
    "render_planning_hints",
    "render_repair_message",
    "render_resume_user_input",
    "render_sequential_only",
    "render_summary",
    "render_tool",
    "render_validation_error",
]

_SYSTEM_RULES = (
    "You are PenguiFlow ReactPlanner, a JSON-only planner.",
    "Follow these rules strictly:",
    "1. Respond with valid JSON matching the PlannerAction schema.",
    "2. Use the provided tools when necessary; never invent new tool names.",
    "3. Keep 'thought' concise and factual.",
    "4. When the task is complete, set 'next_node' to null and include the final payload "
    "in 'args'.",
    "5. Do not emit plain text outside JSON.",
)

_SUMMARIZER_SYSTEM = (
    "You are a summariser producing compact JSON state. "
    "Respond with valid JSON matching the TrajectorySummary schema."
)


def _compact_json(data: Any) -> str:
    # Default separators and sorted keys: the exact form 2.2.5 sends to models.
    return json.dumps(data, ensure_ascii=False, sort_keys=True)


def render_summary(summary: Mapping[str, Any]) -> str:
    """Render a compact trajectory summary as the condensed-history system message."""
    return "Trajectory summary: " + _compact_json(summary)


def render_resume_user_input(user_input: str) -> str:
    """Render the text a human supplied when resuming a paused run."""
    return f"Resume input: {user_input}"


def render_planning_hints(hints: Mapping[str, Any]) -> str:
    """Render planning hints as prompt lines; ``""`` when no hint is set.

    Values are rendered with ``str()`` (Python reprs), as in 2.2.5.
    """
    labels = (
        ("constraints", "Respect the following constraints: "),
        ("preferred_order", "Preferred order (if feasible): "),
        ("parallel_groups", "Allowed parallel groups: "),
        ("disallow_nodes", "Disallowed tools: "),
        ("preferred_nodes", "Preferred tools: "),
        ("budget", "Budget hints: "),
    )
    lines = [f"{label}{hints[key]}" for key, label in labels if hints.get(key)]
    return "\n".join(lines)


def render_disallowed_node(node_name: str) -> str:
    """Explain that a tool is excluded by the planning constraints."""
    return (
        f"tool '{node_name}' is not permitted by constraints. "
        "Choose an allowed tool or revise the plan."
    )


def render_ordering_hint_violation(expected: Sequence[str], proposed: str) -> str:
    """Remind the model of the preferred tool order."""
    order = ", ".join(expected)
    return (
        f"Ordering hint reminder: follow the preferred sequence [{order}]. "
        f"Proposed: {proposed}. Revise the plan."
    )


def render_parallel_limit(max_parallel: int) -> str:
    """Explain that a parallel plan has too many branches."""
    return f"Parallel action exceeds max_parallel={max_parallel}. Reduce parallel fan-out."


def render_sequential_only(node_name: str) -> str:
    """Explain that a tool may not appear in a parallel plan."""
    return f"tool '{node_name}' must run sequentially. Do not include it in a parallel plan."


def render_parallel_setup_error(errors: Sequence[str]) -> str:
    """Summarise why a parallel plan was rejected before any branch ran."""
    return f"Parallel plan invalid: {'; '.join(errors)}. Revise the plan and retry."


def render_empty_parallel_plan() -> str:
    """Explain that a parallel plan needs at least one branch."""
    return "Parallel plan must include at least one branch in 'plan'."


def render_parallel_with_next_node(next_node: str) -> str:
    """Explain that ``plan`` and ``next_node`` cannot be combined."""
    return (
        f"Parallel plan cannot set next_node='{next_node}'. "
        "Use 'join' to continue or finish the run explicitly."
    )


def render_parallel_unknown_failure(node_name: str) -> str:
    """Describe a branch that failed without a more specific error."""
    return (
        f"tool '{node_name}' failed during parallel execution. "
        "Investigate the tool and adjust the plan."
    )


def build_summarizer_messages(
    query: str,
    history: Sequence[Mapping[str, Any]],
    base_summary: Mapping[str, Any],
) -> list[dict[str, str]]:
    """Build the messages asking a summariser model to compact a trajectory."""
    body = {"query": query, "history": list(history), "current_summary": dict(base_summary)}
    return [
        {"role": "system", "content": _SUMMARIZER_SYSTEM},
        {"role": "user", "content": _compact_json(body)},
    ]


def render_tool(record: Mapping[str, Any]) -> str:
    """Render one catalog record (``NodeSpec.to_tool_record()``) for the system prompt."""
    lines = [
        f"- name: {record['name']}",
        f"  desc: {record['desc']}",
        f"  side_effects: {record['side_effects']}",
        f"  args_schema: {_compact_json(record['args_schema'])}",
        f"  out_schema: {_compact_json(record['out_schema'])}",
    ]
    if record.get("tags"):
        lines.append(f"  tags: {', '.join(record['tags'])}")
    if record.get("auth_scopes"):
        lines.append(f"  auth_scopes: {', '.join(record['auth_scopes'])}")
    if record.get("cost_hint"):
        lines.append(f"  cost_hint: {record['cost_hint']}")
    if record.get("latency_hint_ms") is not None:
        lines.append(f"  latency_hint_ms: {record['latency_hint_ms']}")
    if record.get("safety_notes"):
        lines.append(f"  safety_notes: {record['safety_notes']}")
    if record.get("extra"):
        lines.append(f"  extra: {_compact_json(record['extra'])}")
    return "\n".join(lines)


def build_system_prompt(
    catalog: Sequence[Mapping[str, Any]],
    *,
    extra: str | None = None,
    planning_hints: Mapping[str, Any] | None = None,
) -> str:
    """Build the planner's system prompt from tool records, guidance and hints."""
    tools = "\n".join(render_tool(record) for record in catalog) or "(none)"
    lines = [*_SYSTEM_RULES, "", "Available tools:", tools]
    if extra:
        lines.extend(["", "Additional guidance:", extra])
    if planning_hints:
        rendered = render_planning_hints(planning_hints)
        if rendered:
            lines.extend(["", rendered])
    return "\n".join(lines)


def build_user_prompt(query: str, context_meta: Mapping[str, Any] | None = None) -> str:
    """Build the first user message: the query and, when given, its context."""
    if context_meta:
        return _compact_json({"query": query, "context": dict(context_meta)})
    return _compact_json({"query": query})


def render_observation(
    *,
    observation: Any,
    error: str | None,
    failure: Mapping[str, Any] | None = None,
) -> str:
    """Render what a step produced, as the user message after the model's action."""
    payload: dict[str, Any] = {}
    if observation is not None:
        payload["observation"] = observation
    if error:
        payload["error"] = error
    if failure:
        payload["failure"] = dict(failure)
    if not payload:
        payload["observation"] = None
    return _compact_json(payload)


def render_hop_budget_violation(limit: int) -> str:
    """Explain that no tool calls are left in the hop budget."""
    return (
        "Hop budget exhausted; you have used all available tool calls. "
        f"Finish with the best answer so far or reply with no_path. (limit={limit})"
    )


def render_deadline_exhausted() -> str:
    """Explain that the run's wall-time budget is spent."""
    return "Deadline reached. Provide the best available conclusion or return no_path."


def render_validation_error(node_name: str, error: str) -> str:
    """Explain that the model's tool arguments failed validation."""
    return f"args for tool '{node_name}' did not validate: {error}. Return corrected JSON."


def render_output_validation_error(node_name: str, error: str) -> str:
    """Explain that a tool's result failed its declared output schema."""
    return (
        f"tool '{node_name}' returned data that did not validate: {error}. "
        "Ensure the tool output matches the declared schema."
    )


def render_invalid_node(node_name: str, available: Sequence[str]) -> str:
    """Explain that the model named a tool missing from the catalog."""
    choices = ", ".join(sorted(available))
    return f"tool '{node_name}' is not in the catalog. Choose one of: {choices}."


def render_repair_message(error: str) -> str:
    """Ask the model to correct a response that was not a valid action."""
    return (
        f"Previous response was invalid JSON or schema mismatch: {error}. "
        "Reply with corrected JSON only."
    )
