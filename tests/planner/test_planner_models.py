"""Planner records: validation, dumps and (de)serialisation of trajectories."""

from __future__ import annotations

import json

import pydantic
import pytest
from planner_support import Answer

from penguiflow.planner import (
    ParallelCall,
    PlannerAction,
    PlannerFinish,
    PlannerPause,
    Trajectory,
    TrajectoryStep,
    TrajectorySummary,
)


def test_action_without_thought_is_invalid() -> None:
    with pytest.raises(pydantic.ValidationError):
        PlannerAction.model_validate_json("{}")


def test_action_ignores_unknown_keys_and_defaults_to_finish() -> None:
    action = PlannerAction.model_validate_json('{"thought": "t", "extra": 1}')
    assert action.model_dump() == {
        "thought": "t",
        "next_node": None,
        "args": None,
        "plan": None,
        "join": None,
    }


def test_parallel_call_args_default_to_empty_dict() -> None:
    assert ParallelCall(node="a").args == {}


def test_pause_rejects_unknown_reason() -> None:
    with pytest.raises(pydantic.ValidationError):
        PlannerPause(reason="nap", resume_token="t")  # type: ignore[arg-type]


def test_finish_defaults() -> None:
    finish = PlannerFinish(reason="no_path")
    assert (finish.payload, finish.metadata) == (None, {})


def test_summary_compact_includes_note_only_when_set() -> None:
    assert TrajectorySummary().compact() == {
        "goals": [],
        "facts": {},
        "pending": [],
        "last_output_digest": None,
    }
    assert TrajectorySummary(note="n").compact()["note"] == "n"


def test_step_dump_serialises_model_observation_and_failure() -> None:
    step = TrajectoryStep(
        PlannerAction(thought="t", next_node="x"),
        observation=Answer(answer="a"),
        failure={"node": "x"},
    )
    assert step.dump() == {
        "action": {"thought": "t", "next_node": "x", "args": None, "plan": None, "join": None},
        "observation": {"answer": "a"},
        "error": None,
        "failure": {"node": "x"},
    }


def test_step_dump_keeps_plain_observation_and_empty_failure_as_none() -> None:
    step = TrajectoryStep(PlannerAction(thought="t"), observation=[1], failure={})
    dumped = step.dump()
    assert (dumped["observation"], dumped["failure"]) == ([1], None)


def _trajectory() -> Trajectory:
    trajectory = Trajectory(query="q", context_meta={"tenant": "a"})
    trajectory.append(
        TrajectoryStep(PlannerAction(thought="t", next_node="x"), observation=Answer(answer="a"))
    )
    trajectory.append(TrajectoryStep(PlannerAction(thought="u", next_node="y"), error="bad"))
    trajectory.hint_state["k"] = 1
    trajectory.resume_user_input = "go"
    return trajectory


def test_trajectory_round_trips_through_json() -> None:
    trajectory = _trajectory()
    trajectory.compress()
    data = json.loads(json.dumps(trajectory.serialise()))
    restored = Trajectory.from_serialised(data)
    assert restored.serialise() == trajectory.serialise()
    assert isinstance(restored.steps[0].action, PlannerAction)
    assert restored.steps[0].observation == {"answer": "a"}


def test_from_serialised_requires_query() -> None:
    with pytest.raises(KeyError):
        Trajectory.from_serialised({"steps": []})


def test_from_serialised_tolerates_missing_optional_keys() -> None:
    restored = Trajectory.from_serialised({"query": "q"})
    assert (restored.steps, restored.summary, restored.hint_state) == ([], None, {})


def test_appending_a_step_resets_the_cached_summary() -> None:
    trajectory = _trajectory()
    trajectory.compress()
    trajectory.append(TrajectoryStep(PlannerAction(thought="v")))
    assert trajectory.summary is None


def test_compress_summarises_last_error_and_pending_retries() -> None:
    summary = _trajectory().compress()
    assert summary.goals == ["q"]
    assert summary.facts == {"last_error": "bad"}
    assert summary.pending == ["retry y"]
    assert summary.last_output_digest is None
    assert summary.note == "rule_based"


def test_compress_records_last_observation_and_pending_finish() -> None:
    trajectory = Trajectory(query="q")
    trajectory.append(TrajectoryStep(PlannerAction(thought="t"), error="e"))
    trajectory.append(
        TrajectoryStep(PlannerAction(thought="t", next_node="x"), observation={"a": 1})
    )
    summary = trajectory.compress()
    assert summary.facts == {"last_observation": {"a": 1}}
    assert summary.pending == ["retry finish"]
    assert summary.last_output_digest == '{"a": 1}'
    assert trajectory.summary is summary


def test_compress_truncates_long_digest() -> None:
    trajectory = Trajectory(query="q")
    trajectory.append(TrajectoryStep(PlannerAction(thought="t"), observation="x" * 200))
    digest = trajectory.compress().last_output_digest
    assert digest is not None
    assert len(digest) == 120
    assert digest.endswith("...")


def test_compress_of_empty_trajectory_has_only_the_goal() -> None:
    summary = Trajectory(query="q").compress()
    assert (summary.facts, summary.pending, summary.last_output_digest) == ({}, [], None)
