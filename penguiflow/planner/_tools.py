"""Supervised tool invocation: every way a tool call can end becomes data.

A tool that raises, times out, returns data its schema rejects or pauses does not
break the run: the outcome is recorded and fed back to the model, which can replan
(spec/planner.md section 5, step 8). Only cancellation passes through untouched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from penguiflow._logging import get_logger
from penguiflow.planner import prompts
from penguiflow.planner._models import PlannerPause
from penguiflow.planner._pause import PauseSignal, ToolContext

if TYPE_CHECKING:
    from penguiflow._time import Clock
    from penguiflow.catalog import NodeSpec

__all__ = ["ToolOutcome", "errors_json", "invoke_tool"]

_log = get_logger("penguiflow.planner")


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """How one tool call ended: exactly one of observation, error or pause is set."""

    observation: BaseModel | None = None
    error: str | None = None
    failure: dict[str, Any] | None = None
    pause: PlannerPause | None = None


def errors_json(exc: ValidationError) -> str:
    """Render pydantic errors as the JSON text the prompts embed."""
    # default=str: validator errors may carry exception objects in ``ctx``.
    return json.dumps(exc.errors(), ensure_ascii=False, default=str)


def failure_payload(name: str, args: BaseModel, exc: BaseException) -> dict[str, Any]:
    """The structured failure the model sees when a tool raised ``exc``."""
    failure: dict[str, Any] = {
        "node": name,
        "args": args.model_dump(mode="json"),
        "error_code": type(exc).__name__,
        "message": str(exc),
    }
    suggestion = getattr(exc, "suggestion", None) or getattr(exc, "remedy", None)
    if suggestion:
        failure["suggestion"] = str(suggestion)
    return failure


async def invoke_tool(
    spec: NodeSpec,
    args: BaseModel,
    ctx: ToolContext,
    *,
    timeout_s: float | None = None,
    clock: Clock | None = None,
) -> ToolOutcome:
    """Call ``spec.node.func(args, ctx)`` and describe how it ended.

    The raw function runs: no ``NodePolicy`` retries, no registry validation (as in
    2.2.5). With ``timeout_s`` the call is bounded on ``clock`` and a late tool ends
    as a ``TimeoutError`` failure.
    """
    name = spec.name
    try:
        if timeout_s is None or clock is None:
            result = await spec.node.func(args, ctx)
        else:
            scope = clock.timeout_at(clock.monotonic() + timeout_s)
            try:
                async with scope:
                    result = await spec.node.func(args, ctx)
            except TimeoutError as exc:
                if not scope.expired():
                    raise  # the tool's own TimeoutError: report it as raised
                raise TimeoutError(f"timed out after {timeout_s}s") from exc
    except PauseSignal as signal:
        return ToolOutcome(pause=signal.pause)
    except Exception as exc:
        _log.info("planner_tool_failed", tool=name, error_code=type(exc).__name__)
        return ToolOutcome(
            error=f"tool '{name}' raised {type(exc).__name__}: {exc}",
            failure=failure_payload(name, args, exc),
        )
    try:
        observation = spec.out_model.model_validate(result)
    except ValidationError as exc:
        return ToolOutcome(error=prompts.render_output_validation_error(name, errors_json(exc)))
    return ToolOutcome(observation=observation)
