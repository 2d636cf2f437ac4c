"""Parallel plans: fan branches out concurrently, then join (spec/planner.md section 6).

Every branch is validated before any runs; then all branches run at once, each in
its own tool actor under the run's supervisor (and under the planner's concurrency
bound when it has one), sharing one tool context. The run waits for them in a task
group, so a cancelled run cancels its branches. Each branch's outcome becomes a
payload in one observation; the join tool runs only if every branch succeeded.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from penguiflow.planner import prompts
from penguiflow.planner._models import PlannerAction, PlannerPause, TrajectoryStep
from penguiflow.planner._tools import ToolOutcome, errors_json

if TYPE_CHECKING:
    from penguiflow.catalog import NodeSpec
    from penguiflow.planner._run import PlannerRun

__all__ = ["run_parallel"]

# Join argument fields filled in from the branches when the join model declares them.
_AUTO_FIELDS = ("expect", "results", "branches", "failures", "success_count", "failure_count")


async def run_parallel(run: PlannerRun, action: PlannerAction) -> PlannerPause | None:
    """Carry out a parallel plan; returns the pause if a branch or the join paused.

    Sets ``run.last_observation`` to the observation dict (``None`` when the plan
    was rejected before running).
    """
    plan = action.plan or []
    if action.next_node is not None:
        error = prompts.render_parallel_with_next_node(action.next_node)
        run.record_step(TrajectoryStep(action, error=error))
        run.last_observation = None
        return None

    calls: list[tuple[NodeSpec, BaseModel]] = []
    setup_errors: list[str] = []
    for call in plan:
        spec = run.spec(call.node)
        if spec is None:
            setup_errors.append(run.invalid_node(call.node))
            continue
        try:
            calls.append((spec, spec.args_model.model_validate(call.args)))
        except ValidationError as exc:
            setup_errors.append(prompts.render_validation_error(call.node, errors_json(exc)))
    if setup_errors:
        error = prompts.render_parallel_setup_error(setup_errors)
        run.record_step(TrajectoryStep(action, error=error))
        run.last_observation = None
        return None

    ctx = run.new_context()
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(run.invoke(spec, args, ctx)) for spec, args in calls]
    outcomes = [task.result() for task in tasks]

    branches: list[dict[str, Any]] = []
    results: list[Any] = []
    failures: list[dict[str, Any]] = []
    pause: PlannerPause | None = None
    for (spec, args), outcome in zip(calls, outcomes, strict=True):
        run.tracker.record_hop()
        entry: dict[str, Any] = {"node": spec.name, "args": args.model_dump(mode="json")}
        if outcome.observation is not None:
            dumped = outcome.observation.model_dump(mode="json")
            entry["observation"] = dumped
            results.append(dumped)
            run.settings.hints.record_success(spec.name, run.trajectory)
        elif outcome.pause is not None and pause is None:
            pause = outcome.pause
            entry["pause"] = {"reason": pause.reason, "payload": dict(pause.payload)}
        else:
            branch_error = outcome.error
            if outcome.pause is not None:
                # Only the first pause is returned; later ones count as failures.
                run.settings.pauses.discard(outcome.pause.resume_token)
                branch_error = prompts.render_parallel_unknown_failure(spec.name)
            entry["error"] = branch_error
            failure: dict[str, Any] = {"node": spec.name, "error": branch_error}
            if outcome.failure:
                entry["failure"] = outcome.failure
                failure["failure"] = outcome.failure
            failures.append(failure)
        branches.append(entry)

    observation: dict[str, Any] = {
        "branches": branches,
        "stats": {"success": len(results), "failed": len(failures)},
    }
    if pause is not None:
        observation["join"] = {"status": "skipped", "reason": "pause"}
    elif action.join is not None:
        pause = await _join(run, action, observation, results, failures)

    run.record_step(TrajectoryStep(action, observation=observation))
    run.last_observation = observation
    if pause is not None:
        await run.save_pause(pause)  # the authoritative save includes the parallel step
    return pause


async def _join(
    run: PlannerRun,
    action: PlannerAction,
    observation: dict[str, Any],
    results: list[Any],
    failures: list[dict[str, Any]],
) -> PlannerPause | None:
    join = action.join
    assert join is not None
    name = join.node
    spec = run.spec(name)
    if spec is None:
        observation["join"] = {"node": name, "error": run.invalid_node(name)}
        return None
    if failures:
        observation["join"] = {
            "node": name,
            "status": "skipped",
            "reason": "branch_failures",
            "failures": failures,
        }
        return None

    branches = observation["branches"]
    auto = {
        "expect": len(branches),
        "results": results,
        "branches": branches,
        "failures": [],
        "success_count": len(results),
        "failure_count": len(failures),
    }
    join_args: dict[str, Any] = dict(join.args)
    for field in _AUTO_FIELDS:
        if field in spec.args_model.model_fields and field not in join_args:
            join_args[field] = auto[field]
    try:
        args = spec.args_model.model_validate(join_args)
    except ValidationError as exc:
        error = prompts.render_validation_error(name, errors_json(exc))
        observation["join"] = {"node": name, "error": error}
        return None

    extra_meta: dict[str, Any] = {
        "parallel_results": branches,
        "parallel_success_count": len(results),
        "parallel_failure_count": len(failures),
        "parallel_input": dict(join_args),
    }
    outcome: ToolOutcome = await run.invoke(spec, args, run.new_context(extra_meta))
    run.tracker.record_hop()
    if outcome.pause is not None:
        pause = outcome.pause
        observation["join"] = {
            "node": name,
            "pause": {"reason": pause.reason, "payload": dict(pause.payload)},
        }
        return pause
    if outcome.observation is not None:
        observation["join"] = {
            "node": name,
            "observation": outcome.observation.model_dump(mode="json"),
        }
        run.settings.hints.record_success(name, run.trajectory)
        return None
    result: dict[str, Any] = {"node": name, "error": outcome.error}
    if outcome.failure:
        result["failure"] = outcome.failure
    observation["join"] = result
    return None
