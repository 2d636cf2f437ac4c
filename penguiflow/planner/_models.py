"""The planner's records: actions the model returns, results, trajectories.

Field names, defaults and dump shapes are the 2.2.5 contract (spec/planner.md
section 11); trajectories serialise to plain JSON so a paused run can be stored and
resumed in another process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "ParallelCall",
    "ParallelJoin",
    "PlannerAction",
    "PlannerFinish",
    "PlannerFinishReason",
    "PlannerPause",
    "PlannerPauseReason",
    "Trajectory",
    "TrajectoryStep",
    "TrajectorySummary",
    "dump_observation",
]

PlannerPauseReason = Literal[
    "approval_required", "await_input", "external_event", "constraints_conflict"
]
"""Why a run paused; any other value fails ``PlannerPause`` validation."""

PlannerFinishReason = Literal["answer_complete", "no_path", "budget_exhausted"]
"""How a run ended."""

_DIGEST_LIMIT = 120


class ParallelCall(BaseModel):
    """One branch of a parallel plan: a tool and its arguments."""

    node: str
    args: dict[str, Any] = Field(default_factory=dict)


class ParallelJoin(BaseModel):
    """The tool that runs after every branch of a parallel plan succeeded."""

    node: str
    args: dict[str, Any] = Field(default_factory=dict)


class PlannerAction(BaseModel):
    """What the model decided: call a tool, fan out in parallel, or finish.

    ``next_node`` set calls that tool with ``args``; ``plan`` runs branches
    concurrently (then ``join``); ``next_node`` null with no plan finishes the run
    and ``args`` is the final payload.
    """

    thought: str
    next_node: str | None = None
    args: dict[str, Any] | None = None
    plan: list[ParallelCall] | None = None
    join: ParallelJoin | None = None


class PlannerPause(BaseModel):
    """A run stopped waiting for a human or an event; resume it with ``resume_token``."""

    reason: PlannerPauseReason
    payload: dict[str, Any] = Field(default_factory=dict)
    resume_token: str


class PlannerFinish(BaseModel):
    """A run ended: ``payload`` is the answer, ``metadata`` the trajectory and budgets."""

    reason: PlannerFinishReason
    payload: Any = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class TrajectorySummary(BaseModel):
    """A compact state of a trajectory, sent instead of the full history."""

    goals: list[str] = Field(default_factory=list)
    facts: dict[str, Any] = Field(default_factory=dict)
    pending: list[str] = Field(default_factory=list)
    last_output_digest: str | None = None
    note: str | None = None

    def compact(self) -> dict[str, Any]:
        """Return the summary as a dict, with ``note`` only when it is set."""
        data: dict[str, Any] = {
            "goals": list(self.goals),
            "facts": dict(self.facts),
            "pending": list(self.pending),
            "last_output_digest": self.last_output_digest,
        }
        if self.note:
            data["note"] = self.note
        return data


def dump_observation(observation: Any) -> Any:
    """Serialise an observation: models as JSON-mode dumps, anything else as stored."""
    if isinstance(observation, BaseModel):
        return observation.model_dump(mode="json")
    return observation


@dataclass(slots=True)
class TrajectoryStep:
    """One planning step: the action and what came of it."""

    action: PlannerAction
    observation: Any = None
    error: str | None = None
    failure: Mapping[str, Any] | None = None

    def dump(self) -> dict[str, Any]:
        """Return the step as plain JSON-ready data."""
        return {
            "action": self.action.model_dump(mode="json"),
            "observation": dump_observation(self.observation),
            "error": self.error,
            "failure": dict(self.failure) if self.failure else None,
        }


@dataclass(slots=True)
class Trajectory:
    """The history of one planner run: query, context and steps so far."""

    query: str
    context_meta: Mapping[str, Any] | None = None
    steps: list[TrajectoryStep] = field(default_factory=list)
    summary: TrajectorySummary | None = None
    hint_state: dict[str, Any] = field(default_factory=dict)
    resume_user_input: str | None = None

    def to_history(self) -> list[dict[str, Any]]:
        """Return every step dumped, in order."""
        return [step.dump() for step in self.steps]

    def serialise(self) -> dict[str, Any]:
        """Return the whole trajectory as JSON-ready data (see ``from_serialised``)."""
        return {
            "query": self.query,
            "context_meta": dict(self.context_meta or {}),
            "steps": self.to_history(),
            "summary": self.summary.model_dump(mode="json") if self.summary else None,
            "hint_state": dict(self.hint_state),
            "resume_user_input": self.resume_user_input,
        }

    @classmethod
    def from_serialised(cls, payload: Mapping[str, Any]) -> Trajectory:
        """Rebuild a trajectory from ``serialise()`` output.

        Actions are validated again; observations stay plain JSON data.

        Raises:
            KeyError: ``query`` is missing.
            pydantic.ValidationError: a stored action or summary is malformed.
        """
        steps = [
            TrajectoryStep(
                action=PlannerAction.model_validate(step["action"]),
                observation=step.get("observation"),
                error=step.get("error"),
                failure=step.get("failure"),
            )
            for step in payload.get("steps") or ()
        ]
        summary_data = payload.get("summary")
        summary = TrajectorySummary.model_validate(summary_data) if summary_data else None
        return cls(
            query=payload["query"],
            context_meta=payload.get("context_meta"),
            steps=steps,
            summary=summary,
            hint_state=dict(payload.get("hint_state") or {}),
            resume_user_input=payload.get("resume_user_input"),
        )

    def compress(self) -> TrajectorySummary:
        """Build a rule-based summary, cache it in ``summary`` and return it."""
        facts: dict[str, Any] = {}
        digest: str | None = None
        if self.steps:
            last = self.steps[-1]
            if last.observation is not None:
                observation = dump_observation(last.observation)
                facts["last_observation"] = observation
                digest = json.dumps(observation, ensure_ascii=False, default=str)
                if len(digest) > _DIGEST_LIMIT:
                    digest = digest[: _DIGEST_LIMIT - 3] + "..."
            if last.error:
                facts["last_error"] = last.error
        pending = [
            f"retry {step.action.next_node or 'finish'}" for step in self.steps if step.error
        ]
        self.summary = TrajectorySummary(
            goals=[self.query],
            facts=facts,
            pending=pending,
            last_output_digest=digest,
            note="rule_based",
        )
        return self.summary

    def append(self, step: TrajectoryStep) -> None:
        """Record a step; the cached summary no longer describes the history."""
        self.steps.append(step)
        self.summary = None
