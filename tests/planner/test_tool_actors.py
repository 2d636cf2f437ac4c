"""Tool calls run as supervised actors: one supervisor per run, nothing left behind."""

from __future__ import annotations

import asyncio
import contextvars
import json
from typing import Any

import pytest
from planner_support import Intent, Query, ScriptedClient, call, finish, make_catalog, triage

import penguiflow
from penguiflow.planner import PlannerFinish, PlannerPause, ReactPlanner, ToolContext
from penguiflow.planner._tool_actors import TOOL_SHUTDOWN_S, ToolSupervisor
from penguiflow.testkit import FakeClock

TAG: contextvars.ContextVar[str] = contextvars.ContextVar("tag", default="unset")


def plan(*branches: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        "thought": "fan out",
        "plan": [{"node": node, "args": args} for node, args in branches],
    }


def tagged(tag: str, action: dict[str, Any]):
    """A scripted reply that sets ``TAG`` in the run's task before answering."""

    def reply(_messages: list[dict[str, str]]) -> str:
        TAG.set(tag)
        return json.dumps(action)

    return reply


class Recorder:
    """A tool that records the task, ctx and ``TAG`` of every call."""

    def __init__(self, *, set_tag: str | None = None) -> None:
        self.tasks: list[asyncio.Task[Any] | None] = []
        self.ctxs: list[Any] = []
        self.tags: list[str] = []
        self.set_tag = set_tag

    async def __call__(self, args: Query, ctx: ToolContext) -> Intent:
        self.tasks.append(asyncio.current_task())
        self.ctxs.append(ctx)
        self.tags.append(TAG.get())
        if self.set_tag is not None:
            TAG.set(self.set_tag)
        return Intent(intent=args.question)


def recorder_catalog(recorder: Recorder, name: str = "record") -> list:
    async def tool(args: Query, ctx: ToolContext) -> Intent:
        return await recorder(args, ctx)

    tool.__name__ = name
    return make_catalog((tool, Query, Intent), (triage, Query, Intent))


def planner_for(client: ScriptedClient, catalog: list, **kwargs: Any) -> ReactPlanner:
    return ReactPlanner(llm_client=client, catalog=catalog, **kwargs)


def other_tasks() -> set[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return {task for task in asyncio.all_tasks() if task is not current}


async def test_tool_runs_in_an_actor_not_in_the_run_task() -> None:
    recorder = Recorder()
    client = ScriptedClient([call("record", question="Q"), finish()])
    async with asyncio.timeout(5):
        result = await planner_for(client, recorder_catalog(recorder)).run("Q")
    assert result.payload == {"intent": "Q"}
    tool_task = recorder.tasks[0]
    assert tool_task is not None
    assert tool_task is not asyncio.current_task()
    assert tool_task.get_name().startswith("actor tool-")


async def test_sequential_calls_reuse_one_idle_actor() -> None:
    recorder = Recorder()
    client = ScriptedClient([call("record", question="a"), call("record", question="b"), finish()])
    async with asyncio.timeout(5):
        await planner_for(client, recorder_catalog(recorder)).run("Q")
    first, second = recorder.tasks
    assert first is second


async def test_concurrent_calls_of_one_tool_run_in_parallel_actors_sharing_ctx() -> None:
    both_running = asyncio.Barrier(2)
    tasks: list[asyncio.Task[Any] | None] = []
    ctxs: list[Any] = []

    async def fetch(args: Query, ctx: ToolContext) -> Intent:
        tasks.append(asyncio.current_task())
        ctxs.append(ctx)
        await both_running.wait()  # returns only once both calls run at the same time
        return Intent(intent=args.question)

    client = ScriptedClient([plan(("fetch", {"question": "a"}), ("fetch", {"question": "b"}))])
    client.script.append(finish())
    async with asyncio.timeout(5):
        result = await planner_for(client, make_catalog((fetch, Query, Intent))).run("Q")
    assert result.payload["stats"] == {"success": 2, "failed": 0}
    assert tasks[0] is not tasks[1]
    assert ctxs[0] is ctxs[1]


async def test_tool_sees_the_runs_context_variables_at_call_time() -> None:
    recorder = Recorder()
    client = ScriptedClient(
        [
            tagged("a", call("record", question="1")),
            tagged("b", call("record", question="2")),
            call("record", question="3"),
            finish(),
        ]
    )
    async with asyncio.timeout(5):
        await planner_for(client, recorder_catalog(recorder)).run("Q")
    assert recorder.tags == ["a", "b", "b"]
    # A changed context needs a fresh actor; an unchanged one reuses the idle actor.
    assert recorder.tasks[0] is not recorder.tasks[1]
    assert recorder.tasks[1] is recorder.tasks[2]


async def test_context_variable_set_by_a_tool_is_seen_by_later_steps() -> None:
    setter = Recorder(set_tag="from-tool")
    seen_by_client: list[str] = []

    def next_action(_messages: list[dict[str, str]]) -> str:
        seen_by_client.append(TAG.get())
        return json.dumps(call("record", question="2"))

    client = ScriptedClient([call("record", question="1"), next_action, finish()])
    async with asyncio.timeout(5):
        await planner_for(client, recorder_catalog(setter)).run("Q")
    assert seen_by_client == ["from-tool"]
    assert setter.tags == ["unset", "from-tool"]
    assert setter.tasks[0] is not setter.tasks[1]  # the changed actor retired


async def test_context_variable_set_by_a_parallel_branch_does_not_leak() -> None:
    setter = Recorder(set_tag="from-branch")
    reader = Recorder()

    async def read(args: Query, ctx: ToolContext) -> Intent:
        return await reader(args, ctx)

    async def write(args: Query, ctx: ToolContext) -> Intent:
        return await setter(args, ctx)

    catalog = make_catalog((write, Query, Intent), (read, Query, Intent))
    client = ScriptedClient([plan(("write", {"question": "1"})), call("read", question="2")])
    client.script.append(finish())
    async with asyncio.timeout(5):
        await planner_for(client, catalog).run("Q")
    assert reader.tags == ["unset"]


async def test_failing_tool_does_not_crash_its_actor() -> None:
    recorder = Recorder()
    tasks: list[asyncio.Task[Any] | None] = []

    async def broken(args: Query, ctx: ToolContext) -> Intent:
        tasks.append(asyncio.current_task())
        raise ValueError("boom")

    catalog = make_catalog((broken, Query, Intent))
    catalog += recorder_catalog(recorder)[:1]
    client = ScriptedClient([call("broken", question="Q"), call("record", question="Q")])
    client.script.append(finish())
    async with asyncio.timeout(5):
        result = await planner_for(client, catalog).run("Q")
    assert result.metadata["steps"][0]["error"] == "tool 'broken' raised ValueError: boom"
    assert tasks[0] is recorder.tasks[0]


async def test_run_leaves_no_task_behind() -> None:
    recorder = Recorder()
    client = ScriptedClient(
        [
            plan(("record", {"question": "a"}), ("record", {"question": "b"})),
            call("record", question="c"),
            finish(),
        ]
    )
    async with asyncio.timeout(5):
        result = await planner_for(client, recorder_catalog(recorder)).run("Q")
    assert isinstance(result, PlannerFinish)
    assert other_tasks() == set()
    assert all(task is not None and task.done() for task in recorder.tasks)


async def test_paused_run_leaves_no_task_behind() -> None:
    async def approve(args: Query, ctx: ToolContext) -> Intent:
        await ctx.pause("approval_required", {"q": args.question})
        raise AssertionError("unreachable")

    client = ScriptedClient([call("approve", question="Q")])
    async with asyncio.timeout(5):
        result = await planner_for(client, make_catalog((approve, Query, Intent))).run("Q")
    assert isinstance(result, PlannerPause)
    assert other_tasks() == set()


async def test_run_whose_model_fails_leaves_no_task_behind() -> None:
    client = ScriptedClient([call("triage", question="Q"), RuntimeError("model down")])
    async with asyncio.timeout(5):
        with pytest.raises(RuntimeError, match="model down"):
            await planner_for(client, make_catalog((triage, Query, Intent))).run("Q")
    assert other_tasks() == set()


class Hanging:
    """A tool that waits forever and records that it was cancelled."""

    def __init__(self) -> None:
        self.started = 0
        self.all_started = asyncio.Event()
        self.cancelled = 0
        self.expected = 1

    async def __call__(self, args: Query, ctx: ToolContext) -> Intent:
        self.started += 1
        if self.started == self.expected:
            self.all_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        raise AssertionError("unreachable")


def hanging_catalog(hanging: Hanging) -> list:
    async def hang(args: Query, ctx: ToolContext) -> Intent:
        return await hanging(args, ctx)

    return make_catalog((hang, Query, Intent))


async def test_cancelled_run_cancels_its_tool_and_leaves_no_task_behind() -> None:
    hanging = Hanging()
    client = ScriptedClient([call("hang", question="Q")])
    # On a fake clock nothing times out: the tool must be cancelled at once.
    planner = planner_for(client, hanging_catalog(hanging), clock=FakeClock())
    async with asyncio.timeout(5):
        task = asyncio.create_task(planner.run("Q"))
        await hanging.all_started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert hanging.cancelled == 1
    assert other_tasks() == set()


async def test_cancelled_parallel_run_cancels_every_branch() -> None:
    hanging = Hanging()
    hanging.expected = 3
    branches = [("hang", {"question": str(i)}) for i in range(3)]
    client = ScriptedClient([plan(*branches)])
    planner = planner_for(client, hanging_catalog(hanging), clock=FakeClock())
    async with asyncio.timeout(5):
        task = asyncio.create_task(planner.run("Q"))
        await hanging.all_started.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert hanging.cancelled == 3
    assert other_tasks() == set()


async def test_tool_ignoring_cancellation_is_cancelled_again_after_the_shutdown_time() -> None:
    clock = FakeClock()
    started = asyncio.Event()
    ignored = asyncio.Event()
    cancellations: list[str] = []

    async def stubborn(args: Query, ctx: ToolContext) -> Intent:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancellations.append("ignored")  # swallows the run's cancellation
            ignored.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancellations.append("stopped")
            raise
        raise AssertionError("unreachable")

    client = ScriptedClient([call("stubborn", question="Q")])
    planner = planner_for(client, make_catalog((stubborn, Query, Intent)), clock=clock)
    async with asyncio.timeout(5):
        task = asyncio.create_task(planner.run("Q"))
        await started.wait()
        task.cancel()
        await ignored.wait()
        await clock.wait_for_timers(1)  # the supervisor waits for the tool to finish
        assert cancellations == ["ignored"]
        clock.advance(TOOL_SHUTDOWN_S)
        with pytest.raises(asyncio.CancelledError):
            await task
    assert cancellations == ["ignored", "stopped"]
    assert other_tasks() == set()


class Fatal(BaseException):
    """Not an Exception: no tool failure, it ends the run."""


async def test_tool_raising_a_base_exception_propagates_out_of_run() -> None:
    async def fatal(args: Query, ctx: ToolContext) -> Intent:
        raise Fatal("stop everything")

    client = ScriptedClient([call("fatal", question="Q")])
    async with asyncio.timeout(5):
        with pytest.raises(Fatal, match="stop everything"):
            await planner_for(client, make_catalog((fatal, Query, Intent))).run("Q")
    assert other_tasks() == set()


async def test_idle_actor_stopped_from_outside_is_not_reused() -> None:
    recorder = Recorder()
    spec = recorder_catalog(recorder)[0]
    ctx = ToolContext({}, pause_enabled=False, record_pause=_no_pause)
    tools = ToolSupervisor()
    try:
        async with asyncio.timeout(5):
            await tools.call(spec, Query(question="1"), ctx)
            [child] = tools.supervisor.which_children()
            assert child.ref is not None
            await child.ref.stop()  # type: ignore[union-attr]
            outcome = await tools.call(spec, Query(question="2"), ctx)
    finally:
        await tools.aclose()
    assert outcome.observation == Intent(intent="2")
    assert recorder.tasks[0] is not recorder.tasks[1]


async def _no_pause(reason: str, payload: Any) -> PlannerPause:
    raise AssertionError("no pause expected")


async def test_tool_context_is_public_for_annotations_only() -> None:
    seen: list[Any] = []

    async def check(args: Query, ctx: ToolContext) -> Intent:
        seen.append(ctx)
        return Intent(intent="ok")

    client = ScriptedClient([call("check", question="Q"), finish()])
    async with asyncio.timeout(5):
        await planner_for(client, make_catalog((check, Query, Intent))).run("Q")
    assert isinstance(seen[0], ToolContext)
    assert "ToolContext" not in penguiflow.planner.__all__  # __all__ is the 2.2.5 list
    assert "ToolContext" not in penguiflow.__all__
