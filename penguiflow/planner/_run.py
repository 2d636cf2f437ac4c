"""One planner run (or one resumed continuation): its state and its tool steps.

``ReactPlanner`` asks the model for actions; a ``PlannerRun`` carries them out:
constraint checks, argument validation, the supervised tool call, and the step
recorded in the trajectory (spec/planner.md section 5, steps 5 to 8). A run is used
as ``async with run:``; its tool calls are actors of one supervisor that leaving the
block stops (``_tool_actors.py``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from penguiflow.planner import prompts
from penguiflow.planner._constraints import ConstraintTracker, PlanningHints
from penguiflow.planner._models import (
    PlannerAction,
    PlannerFinish,
    PlannerFinishReason,
    PlannerPause,
    Trajectory,
    TrajectoryStep,
)
from penguiflow.planner._pause import PauseBook, PauseRecord, ToolContext
from penguiflow.planner._telemetry import tool_span
from penguiflow.planner._tool_actors import ToolSupervisor
from penguiflow.planner._tools import ToolOutcome, errors_json

if TYPE_CHECKING:
    from types import TracebackType

    from penguiflow._time import Clock
    from penguiflow.catalog import NodeSpec

__all__ = ["PlannerRun", "RunSettings"]


@dataclass(frozen=True, slots=True)
class RunSettings:
    """What every run of one planner shares: catalog, hints, pauses, tool limits."""

    specs: Mapping[str, NodeSpec]
    hints: PlanningHints
    pause_enabled: bool
    pauses: PauseBook
    tool_timeout_s: float | None
    clock: Clock | None
    limiter: asyncio.Semaphore | None


class PlannerRun:
    """The mutable state of one run: trajectory, budgets and the last observation.

    Use it as ``async with run:``; leaving the block stops the run's tool actors
    (the ones still running are cancelled when the block exits with an error).
    """

    __slots__ = ("_tools", "last_observation", "settings", "tracker", "trajectory")

    def __init__(
        self, settings: RunSettings, trajectory: Trajectory, tracker: ConstraintTracker
    ) -> None:
        self.settings = settings
        self.trajectory = trajectory
        self.tracker = tracker
        # Not restored on resume (2.2.5): a resumed run starts with no observation.
        self.last_observation: Any = None
        self._tools: ToolSupervisor | None = None  # created by the first tool call

    async def __aenter__(self) -> PlannerRun:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tools, self._tools = self._tools, None
        if tools is not None:
            await tools.aclose()

    # -- pauses -----------------------------------------------------------------------

    def new_context(self, extra_meta: Mapping[str, Any] | None = None) -> ToolContext:
        """A fresh tool context over a copy of the run's ``context_meta``."""
        meta = dict(self.trajectory.context_meta or {})
        if extra_meta:
            meta.update(extra_meta)
        return ToolContext(
            meta, pause_enabled=self.settings.pause_enabled, record_pause=self.record_pause
        )

    async def record_pause(
        self, reason: str, payload: Mapping[str, Any] | None = None
    ) -> PlannerPause:
        """Validate and store a pause of this run; returns it with a fresh token.

        Raises:
            pydantic.ValidationError: ``reason`` is not a pause reason.
        """
        pause = PlannerPause.model_validate(
            {"reason": reason, "payload": dict(payload or {}), "resume_token": uuid.uuid4().hex}
        )
        await self.save_pause(pause)
        return pause

    async def save_pause(self, pause: PlannerPause) -> None:
        """(Re)save the record for ``pause`` with the trajectory and budgets as they are."""
        record = PauseRecord(
            trajectory=self.trajectory,
            reason=pause.reason,
            payload=dict(pause.payload),
            constraints=self.tracker.snapshot(),
        )
        await self.settings.pauses.save(pause.resume_token, record)

    # -- tools ------------------------------------------------------------------------

    def spec(self, name: str) -> NodeSpec | None:
        """The catalog entry called ``name``, if any."""
        return self.settings.specs.get(name)

    def invalid_node(self, name: str) -> str:
        """The error text for a tool that is not in the catalog."""
        return prompts.render_invalid_node(name, list(self.settings.specs))

    async def invoke(self, spec: NodeSpec, args: BaseModel, ctx: ToolContext) -> ToolOutcome:
        """Run one tool call in an actor, under the planner's concurrency bound if any."""
        async with tool_span(spec.name):
            return await self._invoke(spec, args, ctx)

    async def _invoke(self, spec: NodeSpec, args: BaseModel, ctx: ToolContext) -> ToolOutcome:
        settings = self.settings
        tools = self._tools
        if tools is None:
            tools = self._tools = ToolSupervisor(clock=settings.clock)
        if settings.limiter is None:
            return await tools.call(
                spec, args, ctx, timeout_s=settings.tool_timeout_s, clock=settings.clock
            )
        async with settings.limiter:
            return await tools.call(
                spec, args, ctx, timeout_s=settings.tool_timeout_s, clock=settings.clock
            )

    def record_step(self, step: TrajectoryStep) -> None:
        """Append ``step`` to the trajectory."""
        self.trajectory.append(step)

    async def call_tool(self, action: PlannerAction) -> PlannerPause | None:
        """Carry out a sequential tool call; returns the pause if the tool paused."""
        name = action.next_node
        assert name is not None  # the loop finishes on a null next_node first
        refusal = self.tracker.check_hop() or self.settings.hints.check(name, self.trajectory)
        if refusal is not None:
            self.record_step(TrajectoryStep(action, error=refusal))
            return None
        spec = self.spec(name)
        if spec is None:
            self.record_step(TrajectoryStep(action, error=self.invalid_node(name)))
            return None
        try:
            args = spec.args_model.model_validate(action.args or {})
        except ValidationError as exc:
            error = prompts.render_validation_error(name, errors_json(exc))
            self.record_step(TrajectoryStep(action, error=error))
            return None

        outcome = await self.invoke(spec, args, self.new_context())
        self.tracker.record_hop()
        if outcome.pause is not None:
            pause = outcome.pause
            observation = {"pause": pause.reason, "payload": dict(pause.payload)}
            self.record_step(TrajectoryStep(action, observation=observation))
            await self.save_pause(pause)  # the authoritative save includes the pause step
            return pause
        if outcome.observation is None:
            self.record_step(TrajectoryStep(action, error=outcome.error, failure=outcome.failure))
            self.last_observation = None
            return None
        self.record_step(TrajectoryStep(action, observation=outcome.observation))
        self.last_observation = outcome.observation.model_dump(mode="json")
        self.settings.hints.record_success(name, self.trajectory)
        self.trajectory.resume_user_input = None
        return None

    # -- endings ----------------------------------------------------------------------

    def finish(self, reason: PlannerFinishReason, thought: str, payload: Any) -> PlannerFinish:
        """Build the finish record with the trajectory and budget snapshot."""
        steps = self.trajectory.steps
        return PlannerFinish(
            reason=reason,
            payload=payload,
            metadata={
                "reason": reason,
                "thought": thought,
                "steps": self.trajectory.to_history(),
                "step_count": len(steps),
                "constraints": self.tracker.snapshot(),
            },
        )
