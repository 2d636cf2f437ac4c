"""LLM-driven planning over a catalog of PenguiFlow nodes (``ReactPlanner``).

Importing this package does not import LiteLLM; the default model client loads it
on the first call to a model given by name. ``ToolContext`` (the ``ctx`` planner
tools receive) is exported here for annotations only, not from ``penguiflow``.
"""

from __future__ import annotations

from penguiflow.planner._pause import ToolContext
from penguiflow.planner.react import (
    ParallelCall,
    ParallelJoin,
    PlannerAction,
    PlannerFinish,
    PlannerPause,
    ReactPlanner,
    Trajectory,
    TrajectoryStep,
    TrajectorySummary,
)

__all__ = [
    "ParallelCall",
    "ParallelJoin",
    "PlannerAction",
    "PlannerFinish",
    "PlannerPause",
    "ReactPlanner",
    "ToolContext",
    "Trajectory",
    "TrajectoryStep",
    "TrajectorySummary",
]
