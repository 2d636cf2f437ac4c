"""The pure restart rules: restart types, strategy plans, restart intensity."""

from __future__ import annotations

import pytest

from penguiflow.supervision import RestartIntensity, RestartPlan, plan_restart, should_restart

CHILDREN = [("a", "permanent"), ("b", "temporary"), ("c", "transient"), ("d", "permanent")]


@pytest.mark.parametrize(
    ("restart", "normal", "expected"),
    [
        pytest.param("permanent", True, True, id="permanent-normal"),
        pytest.param("permanent", False, True, id="permanent-crash"),
        pytest.param("transient", True, False, id="transient-normal"),
        pytest.param("transient", False, True, id="transient-crash"),
        pytest.param("temporary", True, False, id="temporary-normal"),
        pytest.param("temporary", False, False, id="temporary-crash"),
    ],
)
def test_should_restart(restart: str, normal: bool, expected: bool) -> None:
    assert should_restart(restart, normal=normal) is expected  # type: ignore[arg-type]


@pytest.mark.parametrize("strategy", ["one_for_one", "simple_one_for_one"])
def test_one_for_one_restarts_only_the_failed_child(strategy: str) -> None:
    plan = plan_restart(strategy, CHILDREN, "c")  # type: ignore[arg-type]
    assert plan == RestartPlan(terminate=(), restart=("c",), drop=())


def test_one_for_all_stops_others_in_reverse_and_restarts_all_in_order() -> None:
    plan = plan_restart("one_for_all", CHILDREN, "c")
    assert plan.terminate == ("d", "b", "a")
    assert plan.restart == ("a", "c", "d")
    assert plan.drop == ("b",)


def test_rest_for_one_affects_only_later_children() -> None:
    plan = plan_restart("rest_for_one", CHILDREN, "b")
    assert plan.terminate == ("d", "c")
    assert plan.restart == ("b", "c", "d")
    assert plan.drop == ()


def test_failed_temporary_child_is_in_restart_list_only_if_decided_elsewhere() -> None:
    """The plan restarts the failed child; should_restart decides temporaries first."""
    plan = plan_restart("one_for_all", CHILDREN, "b")
    assert "b" in plan.restart
    assert plan.drop == ()


def test_unknown_strategy_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown strategy"):
        plan_restart("all_for_none", CHILDREN, "a")  # type: ignore[arg-type]


def test_intensity_allows_k_restarts_in_period() -> None:
    limit = RestartIntensity(3, 5.0)
    assert [limit.record(t) for t in (0.0, 1.0, 2.0)] == [False, False, False]
    assert limit.record(3.0) is True


def test_intensity_window_slides() -> None:
    limit = RestartIntensity(2, 5.0)
    assert not limit.record(0.0)
    assert not limit.record(1.0)
    assert not limit.record(5.5)  # the restart at 0.0 left the window
    assert limit.recent == 2


def test_intensity_zero_trips_on_first_restart() -> None:
    assert RestartIntensity(0, 5.0).record(0.0) is True


@pytest.mark.parametrize(
    ("intensity", "period"),
    [pytest.param(-1, 5.0, id="negative-intensity"), pytest.param(1, 0.0, id="zero-period")],
)
def test_intensity_rejects_bad_arguments(intensity: int, period: float) -> None:
    with pytest.raises(ValueError):
        RestartIntensity(intensity, period)
