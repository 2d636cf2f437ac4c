"""The planner's public names, as 2.2.5 programs import them."""

from __future__ import annotations

import penguiflow
import penguiflow.planner
import penguiflow.planner.react
from penguiflow.planner import prompts

PLANNER_NAMES = [
    "ParallelCall",
    "ParallelJoin",
    "PlannerAction",
    "PlannerFinish",
    "PlannerPause",
    "ReactPlanner",
    "Trajectory",
    "TrajectoryStep",
    "TrajectorySummary",
]


def test_planner_package_exports() -> None:
    # ToolContext (the tools' ctx) is importable for annotations but, like every 3.0
    # addition, stays out of __all__, which lists exactly the 2.2.5 names.
    assert sorted(penguiflow.planner.__all__) == sorted(PLANNER_NAMES)
    assert penguiflow.planner.ToolContext.__name__ == "ToolContext"


def test_react_module_exports_protocol_and_reason_alias_too() -> None:
    assert sorted(penguiflow.planner.react.__all__) == sorted(
        [*PLANNER_NAMES, "JSONLLMClient", "PlannerPauseReason"]
    )
    for name in penguiflow.planner.react.__all__:
        assert getattr(penguiflow.planner.react, name) is not None


def test_package_and_react_module_share_objects() -> None:
    for name in PLANNER_NAMES:
        assert getattr(penguiflow.planner, name) is getattr(penguiflow.planner.react, name)


def test_top_level_names_resolve_to_the_planner() -> None:
    assert penguiflow.ReactPlanner is penguiflow.planner.ReactPlanner
    assert penguiflow.TrajectoryStep is penguiflow.planner.TrajectoryStep
    from penguiflow import NodeSpec, build_catalog, tool

    assert (NodeSpec.__module__, build_catalog.__module__, tool.__module__) == (
        "penguiflow.catalog",
    ) * 3


def test_prompts_exports_every_helper() -> None:
    expected = {
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
    }
    assert set(prompts.__all__) == expected
    assert all(callable(getattr(prompts, name)) for name in expected)
