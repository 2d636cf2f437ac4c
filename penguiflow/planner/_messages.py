"""The conversation sent to the model for one planning step.

The full history is system prompt, query, then one assistant/user pair per step
(spec/planner.md section 3). Under a ``token_budget`` (a character budget) a history
that grew too long is condensed to a summary plus the latest step (section 9).
"""

from __future__ import annotations

import json
from typing import Any

from penguiflow._logging import get_logger
from penguiflow.planner import prompts
from penguiflow.planner._llm import JSONLLMClient, json_schema_format
from penguiflow.planner._models import (
    Trajectory,
    TrajectoryStep,
    TrajectorySummary,
    dump_observation,
)

__all__ = ["SUMMARY_FORMAT", "build_messages", "full_messages"]

_log = get_logger("penguiflow.planner")

Messages = list[dict[str, str]]

SUMMARY_FORMAT: dict[str, Any] = json_schema_format(
    "trajectory_summary", TrajectorySummary.model_json_schema()
)
"""The ``response_format`` the summariser is always called with."""


def _step_messages(step: TrajectoryStep) -> Messages:
    action = json.dumps(step.action.model_dump(mode="json"), ensure_ascii=False, sort_keys=True)
    observation = prompts.render_observation(
        observation=dump_observation(step.observation), error=step.error, failure=step.failure
    )
    return [{"role": "assistant", "content": action}, {"role": "user", "content": observation}]


def _head(system_prompt: str, trajectory: Trajectory) -> Messages:
    return [
        {"role": "system", "content": system_prompt},
        {
            "role": "user",
            "content": prompts.build_user_prompt(trajectory.query, trajectory.context_meta),
        },
    ]


def _resume(trajectory: Trajectory) -> Messages:
    if trajectory.resume_user_input:
        text = prompts.render_resume_user_input(trajectory.resume_user_input)
        return [{"role": "user", "content": text}]
    return []


def full_messages(system_prompt: str, trajectory: Trajectory) -> Messages:
    """Return the uncondensed conversation for the next step."""
    messages = _head(system_prompt, trajectory)
    for step in trajectory.steps:
        messages.extend(_step_messages(step))
    messages.extend(_resume(trajectory))
    return messages


async def build_messages(
    system_prompt: str,
    trajectory: Trajectory,
    *,
    token_budget: int | None,
    summarizer: JSONLLMClient | None,
) -> Messages:
    """Return the conversation for the next step, condensed when over ``token_budget``."""
    messages = full_messages(system_prompt, trajectory)
    if token_budget is None or sum(len(m["content"]) for m in messages) <= token_budget:
        return messages
    summary = await _summary(trajectory, token_budget=token_budget, summarizer=summarizer)
    condensed = _head(system_prompt, trajectory)
    condensed.append({"role": "system", "content": prompts.render_summary(summary.compact())})
    if trajectory.steps:
        condensed.extend(_step_messages(trajectory.steps[-1]))
    condensed.extend(_resume(trajectory))
    return condensed


async def _summary(
    trajectory: Trajectory, *, token_budget: int, summarizer: JSONLLMClient | None
) -> TrajectorySummary:
    # The cached summary stays valid until the next step is appended.
    if trajectory.summary is not None:
        return trajectory.summary
    base = trajectory.compress()
    if summarizer is None or len(prompts.render_summary(base.compact())) <= token_budget:
        return base
    messages = prompts.build_summarizer_messages(
        trajectory.query, trajectory.to_history(), base.compact()
    )
    try:
        raw = await summarizer.complete(messages=messages, response_format=SUMMARY_FORMAT)
        summary = TrajectorySummary.model_validate_json(raw)
    except Exception as exc:
        # A summary is an optimisation: any summariser failure degrades to the
        # rule-based one instead of failing the run.
        _log.info("planner_summarizer_failed", error_code=type(exc).__name__)
        summary = base.model_copy(update={"note": "rule_based_fallback"})
    else:
        if not summary.note:
            summary = summary.model_copy(update={"note": "llm"})
    trajectory.summary = summary
    return summary
