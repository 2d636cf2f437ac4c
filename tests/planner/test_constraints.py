"""Planning hints and the hop/deadline tracker, checked without a model."""

from __future__ import annotations

import pytest

from penguiflow.planner import Trajectory, prompts
from penguiflow.planner._constraints import ConstraintTracker, PlanningHints


class ManualTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_hints_prompt_payload_has_only_non_empty_keys() -> None:
    hints = PlanningHints.from_mapping(
        {
            "ordering_hints": ["a", "b"],
            "parallel_groups": [("a", "b")],
            "sequential_only": ["z", "y"],
            "disallow_nodes": ["q", "p"],
            "prefer_nodes": ["a"],
            "max_parallel": 3,
            "budget_hints": {"hops": 1},
        }
    )
    assert hints.prompt_payload() == {
        "constraints": "max_parallel=3; sequential_only=y,z",
        "preferred_order": ["a", "b"],
        "parallel_groups": [["a", "b"]],
        "disallow_nodes": ["p", "q"],
        "preferred_nodes": ["a"],
        "budget": {"hops": 1},
    }


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        pytest.param({"max_parallel": 2}, 2, id="top-level"),
        pytest.param({"max_parallel": "2", "budget_hints": {"max_parallel": 4}}, 4, id="fallback"),
        pytest.param({"max_parallel": True}, None, id="bool-is-not-int"),
        pytest.param({"budget_hints": {"max_parallel": "x"}}, None, id="no-int"),
        pytest.param(None, None, id="no-hints"),
    ],
)
def test_max_parallel_prefers_int_then_budget_hint(hints, expected) -> None:
    assert PlanningHints.from_mapping(hints).max_parallel == expected


def test_no_hints_render_no_payload() -> None:
    assert PlanningHints.from_mapping({}).prompt_payload() == {}


def test_disallowed_tool_is_refused() -> None:
    hints = PlanningHints.from_mapping({"disallow_nodes": ["x"]})
    assert hints.check("x", Trajectory(query="q")) == prompts.render_disallowed_node("x")
    assert hints.check("y", Trajectory(query="q")) is None


def test_out_of_order_tool_is_refused_once_then_allowed() -> None:
    hints = PlanningHints.from_mapping({"ordering_hints": ["a", "b"]})
    trajectory = Trajectory(query="q")
    assert hints.check("b", trajectory) == prompts.render_ordering_hint_violation(["a", "b"], "b")
    assert trajectory.hint_state["ordering_state"] == {"completed": [], "warned": True}
    assert hints.check("b", trajectory) is None


def test_expected_and_unlisted_tools_are_never_refused() -> None:
    hints = PlanningHints.from_mapping({"ordering_hints": ["a", "b"]})
    trajectory = Trajectory(query="q")
    assert hints.check("a", trajectory) is None
    assert hints.check("other", trajectory) is None


def test_success_of_expected_tool_advances_order_and_resets_warning() -> None:
    hints = PlanningHints.from_mapping({"ordering_hints": ["a", "b"]})
    trajectory = Trajectory(query="q")
    hints.check("b", trajectory)
    hints.record_success("b", trajectory)  # not the expected one: no progress
    hints.record_success("a", trajectory)
    assert trajectory.hint_state["ordering_state"] == {"completed": ["a"], "warned": False}
    hints.record_success("b", trajectory)
    assert hints.check("a", trajectory) is None  # order complete: nothing is refused


def test_record_success_without_ordering_hints_keeps_no_state() -> None:
    trajectory = Trajectory(query="q")
    PlanningHints().record_success("a", trajectory)
    assert trajectory.hint_state == {}


def test_tracker_snapshot_without_budgets() -> None:
    tracker = ConstraintTracker(deadline_s=None, hop_budget=None, time_source=ManualTime())
    tracker.record_hop()
    assert tracker.snapshot() == {
        "deadline_at": None,
        "deadline_remaining_s": None,
        "hop_budget": None,
        "hops_used": 0,
        "deadline_triggered": False,
        "hop_exhausted": False,
    }
    assert tracker.check_hop() is None
    assert tracker.finish_thought() is None


def test_zero_hop_budget_is_exhausted_from_the_start() -> None:
    tracker = ConstraintTracker(deadline_s=None, hop_budget=0, time_source=ManualTime())
    assert tracker.hop_exhausted
    assert tracker.check_hop() == prompts.render_hop_budget_violation(0)


def test_hops_count_up_to_the_budget() -> None:
    tracker = ConstraintTracker(deadline_s=None, hop_budget=2, time_source=ManualTime())
    tracker.record_hop()
    assert tracker.check_hop() is None
    tracker.record_hop()
    assert tracker.snapshot()["hops_used"] == 2
    assert tracker.finish_thought() == prompts.render_hop_budget_violation(2)


def test_deadline_latches_when_time_passes() -> None:
    clock = ManualTime()
    tracker = ConstraintTracker(deadline_s=5.0, hop_budget=None, time_source=clock)
    assert not tracker.deadline_reached()
    assert tracker.snapshot()["deadline_remaining_s"] == 5.0
    clock.now = 105.0
    assert tracker.deadline_reached()
    clock.now = 110.0
    snapshot = tracker.snapshot()
    assert (snapshot["deadline_at"], snapshot["deadline_remaining_s"]) == (105.0, 0.0)
    assert snapshot["deadline_triggered"]
    assert tracker.finish_thought() == prompts.render_deadline_exhausted()


def test_tracker_from_snapshot_keeps_hops_and_remaining_time() -> None:
    clock = ManualTime()
    snapshot = {"deadline_remaining_s": 3.0, "hop_budget": 4, "hops_used": 2}
    clock.now = 500.0
    tracker = ConstraintTracker.from_snapshot(snapshot, time_source=clock)
    assert tracker.deadline_at == 503.0
    assert (tracker.hops_used, tracker.hop_budget) == (2, 4)
