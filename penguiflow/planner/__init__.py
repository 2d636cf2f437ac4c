"""LLM-driven planning over a catalog of PenguiFlow nodes (``ReactPlanner``).

Importing this package does not import LiteLLM; the default model client loads it
on the first call to a model given by name. ``ToolContext`` (the ``ctx`` planner
tools receive) is importable from here for annotations, and ``RateLimitedLLMClient``
(a model client under a tokens-per-minute limit) for use; they stay out of
``__all__``, which lists exactly the 2.2.5 names.
"""

from __future__ import annotations

from penguiflow.planner._pause import ToolContext as ToolContext
from penguiflow.planner._tpm import RateLimitedLLMClient as RateLimitedLLMClient
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
    "Trajectory",
    "TrajectoryStep",
    "TrajectorySummary",
]
