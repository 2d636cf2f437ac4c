"""Supervision trees: restart strategies, intensity limits, backoff, escalation.

Also home of ``ActorSystem`` (a root supervisor with a name registry); this
layer sits directly above the actor kernel (``penguiflow.actors``).
"""

from __future__ import annotations

from penguiflow.errors import Escalated
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
from penguiflow.supervision.system import ActorSystem

__all__ = [
    "ActorSystem",
    "ChildCounts",
    "ChildInfo",
    "ChildSpec",
    "ChildState",
    "Escalated",
    "RestartBackoff",
    "RestartIntensity",
    "RestartPlan",
    "RestartType",
    "Strategy",
    "Supervisor",
    "plan_restart",
    "should_restart",
]
