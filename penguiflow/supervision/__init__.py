"""Supervision trees: restart strategies, intensity limits, backoff, escalation."""

from __future__ import annotations

from penguiflow.supervision.backoff import RestartBackoff
from penguiflow.supervision.specs import ChildCounts, ChildInfo, ChildSpec, ChildState
from penguiflow.supervision.strategy import (
    RestartIntensity,
    RestartPlan,
    RestartType,
    Strategy,
    plan_restart,
    should_restart,
)
from penguiflow.supervision.supervisor import Supervisor

__all__ = [
    "ChildCounts",
    "ChildInfo",
    "ChildSpec",
    "ChildState",
    "RestartBackoff",
    "RestartIntensity",
    "RestartPlan",
    "RestartType",
    "Strategy",
    "Supervisor",
    "plan_restart",
    "should_restart",
]
