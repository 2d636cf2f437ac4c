"""``ReactPlanner``: an LLM picks tools from a catalog, step by step, until it finishes.

Each step sends the trajectory to the model (``JSONLLMClient``), validates the JSON
action it returns (asking for a repair when it is invalid) and hands the action to a
``PlannerRun``. Hop, deadline and iteration budgets end runaway loops with a
``PlannerFinish`` that says why (spec/planner.md sections 2 to 10).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from penguiflow.catalog import NodeSpec, build_catalog
from penguiflow.errors import PlannerError
from penguiflow.planner import prompts
from penguiflow.planner._constraints import ConstraintTracker, PlanningHints
from penguiflow.planner._llm import JSONLLMClient, LiteLLMJSONClient, json_schema_format
from penguiflow.planner._messages import build_messages
from penguiflow.planner._models import PlannerAction, PlannerFinish, PlannerPause, Trajectory
from penguiflow.planner._parallel import run_parallel
from penguiflow.planner._pause import PAUSE_DISABLED, PauseBook
from penguiflow.planner._run import PlannerRun, RunSettings
from penguiflow.planner._telemetry import chat_span
from penguiflow.planner._tpm import RateLimitedLLMClient

if TYPE_CHECKING:
    from penguiflow._time import Clock
    from penguiflow.node import Node
    from penguiflow.ratelimit import RateLimit, RateLimiter

__all__ = ["ReactPlanner"]

_NO_SOURCE = "Either catalog or (nodes and registry) must be provided"
_NO_LLM = "llm or llm_client must be provided"
_REPAIR_FAILED = "Planner failed to produce valid JSON after repair attempts"
_NOT_RUNNING = "pause() requires an active planner run"
_ITERATION_LIMIT = "iteration limit reached"

_current_run: ContextVar[PlannerRun | None] = ContextVar("penguiflow_planner_run", default=None)


class ReactPlanner:
    """Plan and run tool calls with an LLM until it returns a final answer.

    Args:
        llm: model name or mapping of LiteLLM keyword arguments; used only when
            ``llm_client`` is not given (needs the ``planner`` extra).
        nodes, registry: build the catalog with ``build_catalog`` when ``catalog`` is
            not given.
        catalog: ``NodeSpec`` records describing the tools (takes precedence).
        llm_client: any ``JSONLLMClient``; no LiteLLM needed.
        max_iters: maximum number of trajectory steps per run (error steps count).
        temperature: passed to LiteLLM unless the ``llm`` mapping sets it.
        json_schema_mode: ask the model for JSON matching ``PlannerAction``.
        system_prompt_extra: appended to the system prompt as additional guidance.
        token_budget: character budget of the history before it is condensed.
        pause_enabled: allow tools to pause the run with ``ctx.pause(...)``.
        state_store: object with ``save_planner_state``/``load_planner_state``
            (sync or async) so pauses survive a process restart.
        summarizer_llm: model for LLM summaries of long histories.
        planning_hints: ordering, disallowed and preferred tools, budgets.
        repair_attempts: model calls per step before giving up on invalid JSON.
        deadline_s: wall budget of a run in seconds of ``time_source``.
        hop_budget: maximum number of tool invocations.
        time_source: zero-argument callable returning seconds (``time.monotonic``).
        tool_timeout_s: bound on each tool call, measured on ``clock``; a late tool
            is reported to the model as a ``TimeoutError`` failure. ``None`` (the
            2.2.5 behaviour) never times out.
        max_concurrent_tools: bound on tool calls running at once within parallel
            plans; ``None`` runs every branch at once, as 2.2.5 does.
        clock: the clock tool timeouts and ``tpm_limit`` waits use (default the
            system clock).
        tpm_limit: tokens per minute the planner's model calls may use (an
            ``int``, or a ``penguiflow.RateLimit`` counted in tokens); each call
            waits until the bucket can pay for it, fed by the usage the model
            reports (``RateLimitedLLMClient``). ``None``: no limit.
        rate_limiter: where the ``tpm_limit`` bucket lives (a
            ``penguiflow.ratelimit.RateLimiter``; a ``RedisRateLimiter`` and a
            keyed limit share it across processes); default, in memory.

    Raises:
        ValueError: no catalog source, or neither ``llm`` nor ``llm_client``.

    .. versionadded:: 3.0 ``tool_timeout_s``, ``max_concurrent_tools``, ``clock``,
       ``tpm_limit``, ``rate_limiter``.
    """

    def __init__(
        self,
        llm: str | Mapping[str, Any] | None = None,
        *,
        nodes: Sequence[Node] | None = None,
        catalog: Sequence[NodeSpec] | None = None,
        registry: Any | None = None,
        llm_client: JSONLLMClient | None = None,
        max_iters: int = 8,
        temperature: float = 0.0,
        json_schema_mode: bool = True,
        system_prompt_extra: str | None = None,
        token_budget: int | None = None,
        pause_enabled: bool = True,
        state_store: Any | None = None,
        summarizer_llm: str | Mapping[str, Any] | None = None,
        planning_hints: Mapping[str, Any] | None = None,
        repair_attempts: int = 3,
        deadline_s: float | None = None,
        hop_budget: int | None = None,
        time_source: Callable[[], float] | None = None,
        tool_timeout_s: float | None = None,
        max_concurrent_tools: int | None = None,
        clock: Clock | None = None,
        tpm_limit: int | RateLimit | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        if catalog is None and (nodes is None or registry is None):
            raise ValueError(_NO_SOURCE)
        if llm_client is None and llm is None:
            raise ValueError(_NO_LLM)
        if catalog is not None:
            specs = list(catalog)
        else:
            assert nodes is not None  # checked above
            assert registry is not None
            specs = build_catalog(nodes, registry)
        if llm_client is None:
            assert llm is not None
            llm_client = LiteLLMJSONClient(
                llm, temperature=temperature, json_schema_mode=json_schema_mode
            )
        if tpm_limit is not None:
            llm_client = RateLimitedLLMClient(
                llm_client, tpm_limit, limiter=rate_limiter, clock=clock
            )
        self._client: JSONLLMClient = llm_client
        self._summarizer_client: JSONLLMClient | None = None
        if summarizer_llm is not None:
            self._summarizer_client = LiteLLMJSONClient(
                summarizer_llm, temperature=temperature, json_schema_mode=True
            )
        self._catalog = specs
        self._max_iters = max_iters
        self._token_budget = token_budget
        self._repair_attempts = repair_attempts
        self._deadline_s = deadline_s
        self._hop_budget = hop_budget
        self._time_source = time_source or time.monotonic
        self._pause_enabled = pause_enabled
        self._response_format: dict[str, Any] | None = (
            json_schema_format("planner_action", PlannerAction.model_json_schema())
            if json_schema_mode
            else None
        )
        hints = PlanningHints.from_mapping(planning_hints)
        self._system_prompt = prompts.build_system_prompt(
            [spec.to_tool_record() for spec in specs],
            extra=system_prompt_extra,
            planning_hints=hints.prompt_payload(),
        )
        if tool_timeout_s is not None and clock is None:
            from penguiflow._time import SYSTEM_CLOCK

            clock = SYSTEM_CLOCK
        self._settings = RunSettings(
            specs={spec.name: spec for spec in specs},
            hints=hints,
            pause_enabled=pause_enabled,
            pauses=PauseBook(state_store),
            tool_timeout_s=tool_timeout_s,
            clock=clock,
            limiter=asyncio.Semaphore(max_concurrent_tools) if max_concurrent_tools else None,
        )
        # Runs in progress, oldest first; see ``pause``.
        self._active_runs: list[PlannerRun] = []

    @property
    def system_prompt(self) -> str:
        """The system prompt, built once at construction."""
        return self._system_prompt

    @property
    def catalog(self) -> tuple[NodeSpec, ...]:
        """The tools this planner offers the model."""
        return tuple(self._catalog)

    async def step(self, trajectory: Trajectory) -> PlannerAction:
        """Ask the model for the next action, repairing invalid replies.

        Raises:
            PlannerError: every one of ``repair_attempts`` replies was invalid
                (a ``RuntimeError``).
        """
        base = await build_messages(
            self._system_prompt,
            trajectory,
            token_budget=self._token_budget,
            summarizer=self._summarizer_client,
        )
        last_error: str | None = None
        for _ in range(self._repair_attempts):
            messages = list(base)
            if last_error is not None:
                repair = prompts.render_repair_message(last_error)
                messages.append({"role": "system", "content": repair})
            async with chat_span(self._client):
                raw = await self._client.complete(
                    messages=messages, response_format=self._response_format
                )
            try:
                return PlannerAction.model_validate_json(raw)
            except ValidationError as exc:
                last_error = json.dumps(exc.errors(), ensure_ascii=False, default=str)
        raise PlannerError(_REPAIR_FAILED)

    async def run(
        self, query: str, *, context_meta: Mapping[str, Any] | None = None
    ) -> PlannerFinish | PlannerPause:
        """Plan and act on ``query`` until the model finishes, a budget ends it, or it pauses."""
        trajectory = Trajectory(query=query, context_meta=context_meta)
        tracker = ConstraintTracker(
            deadline_s=self._deadline_s, hop_budget=self._hop_budget, time_source=self._time_source
        )
        return await self._loop(PlannerRun(self._settings, trajectory, tracker))

    async def resume(
        self, token: str, user_input: str | None = None
    ) -> PlannerFinish | PlannerPause:
        """Continue a paused run; ``user_input`` is shown to the model as resume input.

        Raises:
            KeyError: unknown token (or already resumed from memory).
        """
        record = await self._settings.pauses.take(token)
        trajectory = record.trajectory
        if user_input is not None:
            trajectory.resume_user_input = user_input
        if record.constraints is not None:
            tracker = ConstraintTracker.from_snapshot(
                record.constraints, time_source=self._time_source
            )
        else:
            tracker = ConstraintTracker(
                deadline_s=self._deadline_s,
                hop_budget=self._hop_budget,
                time_source=self._time_source,
            )
        return await self._loop(PlannerRun(self._settings, trajectory, tracker))

    async def pause(self, reason: str, payload: Mapping[str, Any] | None = None) -> PlannerPause:
        """Record a pause of the active run and return it (the run is not interrupted).

        Raises:
            PlannerError: no run is active, or pausing is disabled.
            pydantic.ValidationError: ``reason`` is not a pause reason.
        """
        run = _current_run.get()
        if run is None or run.settings is not self._settings:
            # Called from outside the run's tasks: fall back to the newest run.
            run = self._active_runs[-1] if self._active_runs else None
        if run is None:
            raise PlannerError(_NOT_RUNNING)
        if not self._pause_enabled:
            raise PlannerError(PAUSE_DISABLED)
        return await run.record_pause(reason, payload)

    async def _loop(self, run: PlannerRun) -> PlannerFinish | PlannerPause:
        # The context variable tells concurrent runs of one planner apart: tools
        # (and parallel branches, which copy the context) see their own run.
        token = _current_run.set(run)
        self._active_runs.append(run)
        try:
            async with run:  # owns the run's tool actors; stops them on the way out
                return await self._drive(run)
        finally:
            self._active_runs.remove(run)
            _current_run.reset(token)

    async def _drive(self, run: PlannerRun) -> PlannerFinish | PlannerPause:
        trajectory, tracker = run.trajectory, run.tracker
        while len(trajectory.steps) < self._max_iters:
            if tracker.deadline_reached():
                thought = prompts.render_deadline_exhausted()
                return run.finish("budget_exhausted", thought, run.last_observation)
            action = await self.step(trajectory)
            if action.plan:
                pause = await run_parallel(run, action)
                if pause is not None:
                    return pause
                trajectory.resume_user_input = None
                continue
            if action.next_node is None:
                payload = action.args or run.last_observation
                return run.finish("answer_complete", action.thought, payload)
            pause = await run.call_tool(action)
            if pause is not None:
                return pause
        budget_thought = tracker.finish_thought()
        if budget_thought is not None:
            return run.finish("budget_exhausted", budget_thought, run.last_observation)
        return run.finish("no_path", _ITERATION_LIMIT, run.last_observation)
