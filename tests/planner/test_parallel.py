"""Parallel plans: concurrent branches, the observation they build, and joins."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from planner_support import Intent, Query, ScriptedClient, finish, make_catalog, triage
from pydantic import BaseModel

from penguiflow.planner import ReactPlanner, prompts


class Shard(BaseModel):
    shard: int


class Part(BaseModel):
    value: int


class MergeIn(BaseModel):
    expect: int
    results: list[dict[str, Any]]
    branches: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    success_count: int = 0
    failure_count: int = 0
    label: str = "sum"


class Total(BaseModel):
    total: int


def plan(*branches: tuple[str, dict[str, Any]], join: Any = None, **extra: Any) -> dict:
    action: dict[str, Any] = {
        "thought": "fan out",
        "plan": [{"node": node, "args": args} for node, args in branches],
        **extra,
    }
    if join is not None:
        action["join"] = join
    return action


class Gate:
    """Lets ``count`` branches through only once all of them have started."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.started = 0
        self.all_started = asyncio.Event()
        self.running = 0
        self.max_running = 0

    async def enter(self) -> None:
        self.started += 1
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        if self.started == self.count:
            self.all_started.set()
        async with asyncio.timeout(5):
            await self.all_started.wait()
        self.running -= 1


def catalog_with(gate: Gate | None = None, merge_meta: dict | None = None) -> list:
    async def fetch(args: Shard, ctx: Any) -> Part:
        if gate is not None:
            await gate.enter()
        return Part(value=args.shard * 10)

    async def broken(args: Shard, ctx: Any) -> Part:
        raise ValueError(f"shard {args.shard} offline")

    async def merge(args: MergeIn, ctx: Any) -> Total:
        if merge_meta is not None:
            merge_meta.update(ctx.meta)
        return Total(total=sum(r["value"] for r in args.results))

    async def merge_broken(args: MergeIn, ctx: Any) -> Total:
        raise RuntimeError("merge failed")

    async def merge_sloppy(args: MergeIn, ctx: Any) -> Any:
        return {"nope": 1}

    async def merge_pause(args: MergeIn, ctx: Any) -> Total:
        await ctx.pause("approval_required", {"total": len(args.results)})
        raise AssertionError("unreachable")

    async def ask(args: Shard, ctx: Any) -> Part:
        await ctx.pause("await_input", {"shard": args.shard})
        raise AssertionError("unreachable")

    return make_catalog(
        (fetch, Shard, Part),
        (broken, Shard, Part),
        (merge, MergeIn, Total),
        (merge_broken, MergeIn, Total),
        (merge_sloppy, MergeIn, Total),
        (merge_pause, MergeIn, Total),
        (ask, Shard, Part),
        (triage, Query, Intent),
    )


def planner_for(client: ScriptedClient, catalog: list, **kwargs: Any) -> ReactPlanner:
    return ReactPlanner(llm_client=client, catalog=catalog, **kwargs)


async def test_branches_run_concurrently_and_the_join_gets_their_results() -> None:
    gate = Gate(2)
    meta: dict[str, Any] = {}
    client = ScriptedClient(
        [
            plan(("fetch", {"shard": 1}), ("fetch", {"shard": 2}), join={"node": "merge"}),
            finish(),
        ]
    )
    result = await planner_for(client, catalog_with(gate, meta), hop_budget=10).run(
        "Q", context_meta={"tenant": "t"}
    )
    assert gate.max_running == 2
    branches = [
        {"node": "fetch", "args": {"shard": 1}, "observation": {"value": 10}},
        {"node": "fetch", "args": {"shard": 2}, "observation": {"value": 20}},
    ]
    assert result.payload == {
        "branches": branches,
        "stats": {"success": 2, "failed": 0},
        "join": {"node": "merge", "observation": {"total": 30}},
    }
    assert meta == {
        "tenant": "t",
        "parallel_results": branches,
        "parallel_success_count": 2,
        "parallel_failure_count": 0,
        "parallel_input": {
            "expect": 2,
            "results": [{"value": 10}, {"value": 20}],
            "branches": branches,
            "failures": [],
            "success_count": 2,
            "failure_count": 0,
        },
    }
    assert result.metadata["constraints"]["hops_used"] == 3


async def test_join_args_given_by_the_model_are_not_overwritten() -> None:
    meta: dict[str, Any] = {}
    join = {"node": "merge", "args": {"label": "custom", "expect": 5}}
    client = ScriptedClient([plan(("fetch", {"shard": 1}), join=join), finish()])
    await planner_for(client, catalog_with(merge_meta=meta)).run("Q")
    assert meta["parallel_input"]["label"] == "custom"
    assert meta["parallel_input"]["expect"] == 5


async def test_concurrency_bound_limits_branches_running_at_once() -> None:
    gate = Gate(1)  # every branch passes at once; we only measure overlap
    client = ScriptedClient(
        [plan(("fetch", {"shard": 1}), ("fetch", {"shard": 2}), ("fetch", {"shard": 3})), finish()]
    )
    result = await planner_for(client, catalog_with(gate), max_concurrent_tools=1).run("Q")
    assert gate.max_running == 1
    assert result.payload["stats"] == {"success": 3, "failed": 0}


async def test_plan_with_next_node_is_rejected() -> None:
    client = ScriptedClient([plan(("fetch", {"shard": 1}), next_node="triage"), finish()])
    result = await planner_for(client, catalog_with()).run("Q")
    step = result.metadata["steps"][0]
    assert step["error"] == prompts.render_parallel_with_next_node("triage")
    assert result.payload is None


async def test_invalid_branches_reject_the_whole_plan_before_anything_runs() -> None:
    gate = Gate(99)  # would hang if a branch ran
    client = ScriptedClient(
        [plan(("fetch", {"shard": 1}), ("nope", {}), ("fetch", {"shard": "x"})), finish()]
    )
    result = await planner_for(client, catalog_with(gate), hop_budget=5).run("Q")
    error = result.metadata["steps"][0]["error"]
    assert error.startswith("Parallel plan invalid: tool 'nope' is not in the catalog.")
    assert "; args for tool 'fetch' did not validate: [" in error
    assert gate.started == 0
    assert result.metadata["constraints"]["hops_used"] == 0


async def test_failed_branch_skips_the_join() -> None:
    client = ScriptedClient(
        [plan(("fetch", {"shard": 1}), ("broken", {"shard": 2}), join={"node": "merge"}), finish()]
    )
    result = await planner_for(client, catalog_with()).run("Q")
    failure = {
        "node": "broken",
        "args": {"shard": 2},
        "error_code": "ValueError",
        "message": "shard 2 offline",
    }
    error = "tool 'broken' raised ValueError: shard 2 offline"
    assert result.payload["branches"][1] == {
        "node": "broken",
        "args": {"shard": 2},
        "error": error,
        "failure": failure,
    }
    assert result.payload["stats"] == {"success": 1, "failed": 1}
    assert result.payload["join"] == {
        "node": "merge",
        "status": "skipped",
        "reason": "branch_failures",
        "failures": [{"node": "broken", "error": error, "failure": failure}],
    }


async def test_branch_with_bad_output_is_a_failure_without_failure_payload() -> None:
    async def sloppy(args: Shard, ctx: Any) -> Any:
        return {"nope": 1}

    client = ScriptedClient([plan(("sloppy", {"shard": 1})), finish()])
    result = await planner_for(client, make_catalog((sloppy, Shard, Part))).run("Q")
    branch = result.payload["branches"][0]
    assert branch["error"].startswith("tool 'sloppy' returned data that did not validate")
    assert "failure" not in branch


async def test_unknown_join_tool_is_reported_in_the_observation() -> None:
    client = ScriptedClient([plan(("fetch", {"shard": 1}), join={"node": "nope"}), finish()])
    result = await planner_for(client, catalog_with()).run("Q")
    assert result.payload["join"]["node"] == "nope"
    assert result.payload["join"]["error"].startswith("tool 'nope' is not in the catalog.")


async def test_join_args_failing_validation_are_reported() -> None:
    join = {"node": "merge", "args": {"expect": "many"}}
    client = ScriptedClient([plan(("fetch", {"shard": 1}), join=join), finish()])
    result = await planner_for(client, catalog_with(), hop_budget=5).run("Q")
    assert result.payload["join"]["error"].startswith("args for tool 'merge' did not validate")
    assert result.metadata["constraints"]["hops_used"] == 1  # the join never ran


async def test_crashing_join_reports_error_and_failure() -> None:
    client = ScriptedClient(
        [plan(("fetch", {"shard": 1}), join={"node": "merge_broken"}), finish()]
    )
    result = await planner_for(client, catalog_with()).run("Q")
    join = result.payload["join"]
    assert join["error"] == "tool 'merge_broken' raised RuntimeError: merge failed"
    assert join["failure"]["error_code"] == "RuntimeError"


async def test_join_with_bad_output_reports_error_only() -> None:
    client = ScriptedClient(
        [plan(("fetch", {"shard": 1}), join={"node": "merge_sloppy"}), finish()]
    )
    result = await planner_for(client, catalog_with()).run("Q")
    assert set(result.payload["join"]) == {"node", "error"}


async def test_pausing_join_pauses_the_run() -> None:
    client = ScriptedClient([plan(("fetch", {"shard": 1}), join={"node": "merge_pause"})])
    pause = await planner_for(client, catalog_with()).run("Q")
    assert pause.reason == "approval_required"
    assert pause.payload == {"total": 1}


async def test_first_pausing_branch_pauses_and_later_ones_fail() -> None:
    client = ScriptedClient(
        [plan(("ask", {"shard": 1}), ("ask", {"shard": 2}), join={"node": "merge"})]
    )
    planner = planner_for(client, catalog_with(), hop_budget=5)
    pause = await planner.run("Q")
    assert (pause.reason, pause.payload) == ("await_input", {"shard": 1})
    # The stored record holds the parallel step; resume to inspect it.
    client.script.append(finish(args={"answer": "x"}))
    result = await planner.resume(pause.resume_token)
    observation = result.metadata["steps"][0]["observation"]
    assert observation["branches"][0]["pause"] == {
        "reason": "await_input",
        "payload": {"shard": 1},
    }
    assert observation["branches"][1]["error"] == prompts.render_parallel_unknown_failure("ask")
    assert observation["stats"] == {"success": 0, "failed": 1}
    assert observation["join"] == {"status": "skipped", "reason": "pause"}
    assert result.metadata["constraints"]["hops_used"] == 2


async def test_empty_plan_is_treated_as_absent() -> None:
    client = ScriptedClient([{"thought": "done", "plan": [], "args": {"answer": "a"}}])
    result = await planner_for(client, catalog_with()).run("Q")
    assert result.payload == {"answer": "a"}


async def test_parallel_action_clears_resume_input() -> None:
    client = ScriptedClient([plan(("ask", {"shard": 1}))])
    planner = planner_for(client, catalog_with())
    pause = await planner.run("Q")
    client.script.extend([plan(("fetch", {"shard": 1})), finish()])
    result = await planner.resume(pause.resume_token, user_input="go")
    assert result.reason == "answer_complete"
    _, after_resume, after_plan = client.calls
    assert after_resume.messages[-1] == {"role": "user", "content": "Resume input: go"}
    assert after_plan.messages[-1]["role"] == "user"
    assert "Resume input" not in after_plan.messages[-1]["content"]


@pytest.mark.parametrize("hints", [{"max_parallel": 1}, {"sequential_only": ["fetch"]}])
async def test_parallel_hints_are_not_enforced(hints) -> None:
    client = ScriptedClient([plan(("fetch", {"shard": 1}), ("fetch", {"shard": 2})), finish()])
    result = await planner_for(client, catalog_with(), planning_hints=hints).run("Q")
    assert result.payload["stats"] == {"success": 2, "failed": 0}
