"""Cost of planner tool calls: a 100-call sequential ``ReactPlanner`` run.

Run from the repository root::

    .venv/bin/python -m benchmarks.planner_tool_calls            # or --rounds 9

A scripted model client asks for the same trivial tool 100 times, then finishes
(``max_iters=101``). Two figures, each the median of the rounds:

* *run*: wall time of the whole ``planner.run`` (model calls, message building,
  validation and the tool calls), the figure users feel;
* *calls*: 100 tool invocations in a row through the run's tool path alone
  (``PlannerRun.invoke`` inside ``async with run``), the part supervised tool
  actors add to.

To compare two trees, run this module under each (``PYTHONPATH=<tree>``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from penguiflow.catalog import build_catalog
from penguiflow.node import Node
from penguiflow.planner import ReactPlanner
from penguiflow.registry import ModelRegistry

CALLS = 100


class Echo(BaseModel):
    text: str


async def echo(args: Echo, ctx: Any) -> Echo:
    return args


class Script:
    """Reply with ``CALLS`` tool calls, then a finish."""

    def __init__(self) -> None:
        self.left = CALLS
        self.call = json.dumps({"thought": "t", "next_node": "echo", "args": {"text": "x"}})
        self.done = json.dumps({"thought": "done", "next_node": None, "args": {"ok": True}})

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        if self.left:
            self.left -= 1
            return self.call
        return self.done


def make_planner() -> ReactPlanner:
    registry = ModelRegistry()
    registry.register("echo", Echo, Echo)
    catalog = build_catalog([Node(echo, name="echo")], registry)
    return ReactPlanner(llm_client=Script(), catalog=catalog, max_iters=CALLS + 1)


async def time_run() -> float:
    planner = make_planner()
    start = time.perf_counter()
    result = await planner.run("q")
    elapsed = time.perf_counter() - start
    assert result.reason == "answer_complete", result
    assert result.metadata["step_count"] == CALLS
    return elapsed


async def time_calls() -> float:
    from penguiflow.planner._constraints import ConstraintTracker
    from penguiflow.planner._models import Trajectory
    from penguiflow.planner._run import PlannerRun

    planner = make_planner()
    spec = planner.catalog[0]
    run = PlannerRun(
        planner._settings,
        Trajectory(query="q"),
        ConstraintTracker(deadline_s=None, hop_budget=None, time_source=time.monotonic),
    )
    args = Echo(text="x")
    # A run owns its tool actors inside ``async with run`` (older trees: no scope).
    scope: Any = run if hasattr(run, "__aenter__") else contextlib.nullcontext()
    async with scope:
        start = time.perf_counter()
        for _ in range(CALLS):
            outcome = await run.invoke(spec, args, run.new_context())
            assert outcome.observation is not None
        return time.perf_counter() - start


async def main(rounds: int) -> None:
    await time_run()  # warm-up: imports, pydantic schema caches
    await time_calls()
    runs, calls = [], []
    for _ in range(rounds):
        runs.append(await time_run())
        calls.append(await time_calls())
    run_ms = statistics.median(runs) * 1e3
    call_us = statistics.median(calls) / CALLS * 1e6
    print(f"run   {run_ms:8.2f} ms per {CALLS}-call run (median of {rounds})")
    print(f"calls {call_us:8.2f} us per tool call (median of {rounds})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    asyncio.run(main(parser.parse_args().rounds))
