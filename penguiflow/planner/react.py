"""The ReAct planner and its records (the 2.2.5 module ``penguiflow.planner.react``).

The implementation is split across private modules of this package; this module
re-exports the public names so 2.2.5 imports keep working.
"""

from __future__ import annotations

from penguiflow.planner._llm import JSONLLMClient
from penguiflow.planner._models import (
    ParallelCall,
    ParallelJoin,
    PlannerAction,
    PlannerFinish,
    PlannerPause,
    PlannerPauseReason,
    Trajectory,
    TrajectoryStep,
    TrajectorySummary,
)
from penguiflow.planner._planner import ReactPlanner

__all__ = [
    "JSONLLMClient",
    "ParallelCall",
    "ParallelJoin",
    "PlannerAction",
    "PlannerFinish",
    "PlannerPause",
    "PlannerPauseReason",
    "ReactPlanner",
    "Trajectory",
    "TrajectoryStep",
    "TrajectorySummary",
]
