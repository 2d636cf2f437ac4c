"""Conformance: spec/planner.md §5.1, §6, §10 — parallel plans, joins, pause and resume."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from penguiflow import ModelRegistry, Node, build_catalog
from penguiflow.planner import PlannerFinish, PlannerPause, ReactPlanner


class Query(BaseModel):
    text: str


class Answer(BaseModel):
    answer: str


class Strict(BaseModel):
    count: int


class JoinAll(BaseModel):
    expect: int
    results: list[Any]
    branches: list[Any]
    failures: list[Any]
    success_count: int
    failure_count: int
    label: str = ""


class JoinPlain(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str


class ScriptedClient:
    def __init__(self, *responses: Any) -> None:
        self.responses = [r if isinstance(r, str) else json.dumps(r) for r in responses]
        self.calls: list[list[Mapping[str, str]]] = []

    def add(self, *responses: Any) -> None:
        self.responses.extend(r if isinstance(r, str) else json.dumps(r) for r in responses)

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        self.calls.append(list(messages))
        if not self.responses:
            raise AssertionError("script exhausted")
        return self.responses.pop(0)


def call(node: str, **args: Any) -> dict[str, Any]:
    return {"thought": f"call {node}", "next_node": node, "args": args}


def finish(args: Any = None) -> dict[str, Any]:
    return {"thought": "done", "next_node": None, "args": args}


def plan(*branches: tuple[str, dict[str, Any]], join: Any = None, **extra: Any) -> dict[str, Any]:
    action: dict[str, Any] = {
        "thought": "fan out",
        "plan": [{"node": node, "args": args} for node, args in branches],
    }
    if join is not None:
        action["join"] = join
    action.update(extra)
    return action


class Tools:
    """Tools of the parallel tests; they record calls and ctx objects."""

    def __init__(self, planner_ref: list[ReactPlanner] | None = None) -> None:
        self.seen: list[tuple[str, Any, Any]] = []
        self.barrier_arrivals = 0
        self.barrier = asyncio.Event()
        self.pause_reason = "approval_required"
        self.join_result: Any = None
        self.join_raise: BaseException | None = None

    async def a(self, args: Query, ctx: Any) -> Answer:
        self.seen.append(("a", args, ctx))
        return Answer(answer="a:" + args.text)

    async def b(self, args: Query, ctx: Any) -> Answer:
        self.seen.append(("b", args, ctx))
        return Answer(answer="b:" + args.text)

    async def meet(self, args: Query, ctx: Any) -> Answer:
        # Two branches of "meet" both wait until both arrived: only concurrency ends it.
        self.seen.append(("meet", args, ctx))
        self.barrier_arrivals += 1
        if self.barrier_arrivals == 2:
            self.barrier.set()
        await self.barrier.wait()
        return Answer(answer="met")

    async def fail(self, args: Query, ctx: Any) -> Answer:
        self.seen.append(("fail", args, ctx))
        raise ValueError("nope " + args.text)

    async def badout(self, args: Query, ctx: Any) -> Any:
        self.seen.append(("badout", args, ctx))
        return {"x": 1}

    async def halt(self, args: Query, ctx: Any) -> Answer:
        self.seen.append(("halt", args, ctx))
        await ctx.pause(self.pause_reason, {"ask": args.text})
        raise AssertionError("pause returned")

    async def halt_nopayload(self, args: Query, ctx: Any) -> Answer:
        await ctx.pause("await_input")
        raise AssertionError("pause returned")

    async def strict(self, args: Strict, ctx: Any) -> Answer:
        return Answer(answer=str(args.count))

    async def join_all(self, args: JoinAll, ctx: Any) -> Answer:
        self.seen.append(("join_all", args, ctx))
        if self.join_raise is not None:
            raise self.join_raise
        if self.join_result is not None:
            return self.join_result  # type: ignore[no-any-return]
        return Answer(answer=f"joined {args.expect}")

    async def join_plain(self, args: JoinPlain, ctx: Any) -> Answer:
        self.seen.append(("join_plain", args, ctx))
        return Answer(answer=args.label)

    async def join_halt(self, args: JoinPlain, ctx: Any) -> Answer:
        await ctx.pause("external_event", {"join": True})
        raise AssertionError("pause returned")


MODELS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "a": (Query, Answer),
    "b": (Query, Answer),
    "meet": (Query, Answer),
    "fail": (Query, Answer),
    "badout": (Query, Answer),
    "halt": (Query, Answer),
    "halt_nopayload": (Query, Answer),
    "strict": (Strict, Answer),
    "join_all": (JoinAll, Answer),
    "join_plain": (JoinPlain, Answer),
    "join_halt": (JoinPlain, Answer),
}
NAMES = ", ".join(sorted(MODELS))


@pytest.fixture
def tools() -> Tools:
    return Tools()


def make_planner(tools: Tools, client: ScriptedClient, **kwargs: Any) -> ReactPlanner:
    registry = ModelRegistry()
    nodes = []
    for name, (args_model, out_model) in MODELS.items():
        registry.register(name, args_model, out_model)
        nodes.append(Node(getattr(tools, name), name=name))
    return ReactPlanner(llm_client=client, catalog=build_catalog(nodes, registry), **kwargs)


async def run(planner: ReactPlanner, query: str = "q", **kwargs: Any) -> Any:
    async with asyncio.timeout(5):
        return await planner.run(query, **kwargs)


async def resume(planner: ReactPlanner, token: str, user_input: str | None = None) -> Any:
    async with asyncio.timeout(5):
        return await planner.resume(token, user_input)


def errors(model: type[BaseModel], data: Any) -> str:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        return json.dumps(exc.errors(), ensure_ascii=False)
    raise AssertionError("valid")


# -- §6 parallel plans ---------------------------------------------------------------


async def test_branches_run_concurrently_with_one_shared_ctx(tools: Tools) -> None:
    client = ScriptedClient(plan(("meet", {"text": "1"}), ("meet", {"text": "2"})), finish())
    result = await run(make_planner(tools, client), context_meta={"k": "v"})
    observation = result.metadata["steps"][0]["observation"]
    assert observation == {
        "branches": [
            {"node": "meet", "args": {"text": "1"}, "observation": {"answer": "met"}},
            {"node": "meet", "args": {"text": "2"}, "observation": {"answer": "met"}},
        ],
        "stats": {"success": 2, "failed": 0},
    }
    (_, _, ctx1), (_, _, ctx2) = tools.seen
    assert ctx1 is ctx2
    assert ctx1.meta == {"k": "v"}


async def test_parallel_observation_becomes_last_observation(tools: Tools) -> None:
    client = ScriptedClient(plan(("a", {"text": "1"}), ("b", {"text": "2"})), finish())
    result = await run(make_planner(tools, client))
    assert result.payload == {
        "branches": [
            {"node": "a", "args": {"text": "1"}, "observation": {"answer": "a:1"}},
            {"node": "b", "args": {"text": "2"}, "observation": {"answer": "b:2"}},
        ],
        "stats": {"success": 2, "failed": 0},
    }
    assert json.loads(client.calls[1][-1]["content"]) == {"observation": result.payload}


async def test_plan_with_next_node_is_rejected(tools: Tools) -> None:
    client = ScriptedClient(plan(("a", {"text": "1"}), next_node="b"), finish())
    result = await run(make_planner(tools, client, hop_budget=5))
    step = result.metadata["steps"][0]
    assert step["error"] == (
        "Parallel plan cannot set next_node='b'. Use 'join' to continue or finish the run "
        "explicitly."
    )
    assert step["observation"] is None
    assert tools.seen == []
    assert result.metadata["constraints"]["hops_used"] == 0


async def test_plan_rejection_resets_last_observation(tools: Tools) -> None:
    client = ScriptedClient(call("a", text="x"), plan(("ghost", {})), finish())
    result = await run(make_planner(tools, client))
    assert result.payload is None


async def test_invalid_branches_reject_the_whole_plan(tools: Tools) -> None:
    client = ScriptedClient(
        plan(("a", {"text": "ok"}), ("ghost", {}), ("strict", {"count": "x"})), finish()
    )
    result = await run(make_planner(tools, client, hop_budget=5))
    assert result.metadata["steps"][0]["error"] == (
        "Parallel plan invalid: "
        f"tool 'ghost' is not in the catalog. Choose one of: {NAMES}.; "
        "args for tool 'strict' did not validate: "
        f"{errors(Strict, {'count': 'x'})}. Return corrected JSON."
        ". Revise the plan and retry."
    )
    assert tools.seen == []
    assert result.metadata["constraints"]["hops_used"] == 0


async def test_empty_plan_is_treated_as_absent(tools: Tools) -> None:
    client = ScriptedClient({"thought": "t", "plan": [], "next_node": None, "args": {"x": 1}})
    result = await run(make_planner(tools, client))
    assert result.reason == "answer_complete"
    assert result.payload == {"x": 1}


async def test_branch_failures_are_reported_and_join_skipped(tools: Tools) -> None:
    client = ScriptedClient(
        plan(
            ("a", {"text": "1"}),
            ("fail", {"text": "2"}),
            ("badout", {"text": "3"}),
            join={"node": "join_all"},
        ),
        finish(),
    )
    result = await run(make_planner(tools, client, hop_budget=10))
    failure = {
        "node": "fail",
        "args": {"text": "2"},
        "error_code": "ValueError",
        "message": "nope 2",
    }
    bad_output = (
        f"tool 'badout' returned data that did not validate: {errors(Answer, {'x': 1})}. "
        "Ensure the tool output matches the declared schema."
    )
    assert result.metadata["steps"][0]["observation"] == {
        "branches": [
            {"node": "a", "args": {"text": "1"}, "observation": {"answer": "a:1"}},
            {
                "node": "fail",
                "args": {"text": "2"},
                "error": "tool 'fail' raised ValueError: nope 2",
                "failure": failure,
            },
            {"node": "badout", "args": {"text": "3"}, "error": bad_output},
        ],
        "stats": {"success": 1, "failed": 2},
        "join": {
            "node": "join_all",
            "status": "skipped",
            "reason": "branch_failures",
            "failures": [
                {
                    "node": "fail",
                    "error": "tool 'fail' raised ValueError: nope 2",
                    "failure": failure,
                },
                {"node": "badout", "error": bad_output},
            ],
        },
    }
    assert "join_all" not in [name for name, _, _ in tools.seen]
    assert result.metadata["constraints"]["hops_used"] == 3


async def test_unknown_join_tool(tools: Tools) -> None:
    client = ScriptedClient(
        plan(("fail", {"text": "1"}), join={"node": "ghost"}),
        finish(),
    )
    result = await run(make_planner(tools, client))
    join = result.metadata["steps"][0]["observation"]["join"]
    assert join == {
        "node": "ghost",
        "error": f"tool 'ghost' is not in the catalog. Choose one of: {NAMES}.",
    }


async def test_join_fields_are_auto_filled_and_meta_injected(tools: Tools) -> None:
    client = ScriptedClient(
        plan(
            ("a", {"text": "1"}),
            ("b", {"text": "2"}),
            join={"node": "join_all", "args": {"label": "L", "expect": 7}},
        ),
        finish(),
    )
    result = await run(make_planner(tools, client, hop_budget=10), context_meta={"tenant": "t"})
    branches = [
        {"node": "a", "args": {"text": "1"}, "observation": {"answer": "a:1"}},
        {"node": "b", "args": {"text": "2"}, "observation": {"answer": "b:2"}},
    ]
    (_, args, ctx) = tools.seen[-1]
    assert args.model_dump() == {
        "expect": 7,  # given: not overridden
        "results": [{"answer": "a:1"}, {"answer": "b:2"}],
        "branches": branches,
        "failures": [],
        "success_count": 2,
        "failure_count": 0,
        "label": "L",
    }
    assert ctx.meta["tenant"] == "t"
    assert ctx.meta["parallel_results"] == branches
    assert ctx.meta["parallel_success_count"] == 2
    assert ctx.meta["parallel_failure_count"] == 0
    assert ctx.meta["parallel_input"] == {
        "label": "L",
        "expect": 7,
        "results": [{"answer": "a:1"}, {"answer": "b:2"}],
        "branches": branches,
        "failures": [],
        "success_count": 2,
        "failure_count": 0,
    }
    assert "parallel_failures" not in ctx.meta
    assert ctx is not tools.seen[0][2]
    assert "parallel_results" not in tools.seen[0][2].meta
    observation = result.metadata["steps"][0]["observation"]
    assert observation["join"] == {"node": "join_all", "observation": {"answer": "joined 7"}}
    assert result.metadata["constraints"]["hops_used"] == 3
    assert result.payload == observation


async def test_join_without_declared_fields_gets_only_its_args(tools: Tools) -> None:
    client = ScriptedClient(
        plan(("a", {"text": "1"}), join={"node": "join_plain", "args": {"label": "x"}}),
        finish(),
    )
    result = await run(make_planner(tools, client))
    assert result.payload["join"] == {"node": "join_plain", "observation": {"answer": "x"}}


async def test_join_args_validation_error(tools: Tools) -> None:
    client = ScriptedClient(plan(("a", {"text": "1"}), join={"node": "join_plain"}), finish())
    result = await run(make_planner(tools, client, hop_budget=10))
    assert result.payload["join"] == {
        "node": "join_plain",
        "error": "args for tool 'join_plain' did not validate: "
        f"{errors(JoinPlain, {})}. Return corrected JSON.",
    }
    assert result.metadata["constraints"]["hops_used"] == 1


async def test_join_exception_and_bad_output(tools: Tools) -> None:
    tools.join_raise = KeyError("k")
    client = ScriptedClient(
        plan(("a", {"text": "1"}), join={"node": "join_all"}),
        plan(("a", {"text": "1"}), join={"node": "join_all"}),
        finish(),
    )
    planner = make_planner(tools, client, max_iters=1)
    result = await run(planner)
    join = result.payload["join"]
    assert join["node"] == "join_all"
    assert join["error"] == "tool 'join_all' raised KeyError: 'k'"
    assert join["failure"]["error_code"] == "KeyError"
    assert join["failure"]["message"] == "'k'"
    assert join["failure"]["node"] == "join_all"
    tools.join_raise = None
    tools.join_result = {"bad": True}
    result = await run(planner)
    assert result.payload["join"] == {
        "node": "join_all",
        "error": "tool 'join_all' returned data that did not validate: "
        f"{errors(Answer, {'bad': True})}. Ensure the tool output matches the declared schema.",
    }


async def test_hop_budget_is_not_checked_before_branches(tools: Tools) -> None:
    client = ScriptedClient(plan(("a", {"text": "1"}), ("b", {"text": "2"})), finish())
    result = await run(make_planner(tools, client, hop_budget=0))
    assert result.payload["stats"] == {"success": 2, "failed": 0}
    assert result.metadata["constraints"]["hops_used"] == 2


async def test_max_parallel_and_sequential_only_are_not_enforced(tools: Tools) -> None:
    hints = {"max_parallel": 1, "sequential_only": ["a"]}
    client = ScriptedClient(plan(("a", {"text": "1"}), ("b", {"text": "2"})), finish())
    result = await run(make_planner(tools, client, planning_hints=hints))
    assert result.payload["stats"] == {"success": 2, "failed": 0}


async def test_parallel_success_records_ordering_progress(tools: Tools) -> None:
    hints = {"ordering_hints": ["a", "b"]}
    client = ScriptedClient(plan(("a", {"text": "1"})), call("b", text="2"), finish())
    result = await run(make_planner(tools, client, planning_hints=hints))
    assert result.metadata["steps"][1]["error"] is None


async def test_parallel_step_assistant_message_dumps_plan(tools: Tools) -> None:
    action = plan(("a", {"text": "1"}), join={"node": "join_plain", "args": {"label": "x"}})
    client = ScriptedClient(action, finish())
    await run(make_planner(tools, client))
    assert client.calls[1][2]["content"] == json.dumps(
        {
            "args": None,
            "join": {"args": {"label": "x"}, "node": "join_plain"},
            "next_node": None,
            "plan": [{"args": {"text": "1"}, "node": "a"}],
            "thought": "fan out",
        },
        ensure_ascii=False,
        sort_keys=True,
    )


# -- §5.1 / §10 pause and resume ------------------------------------------------------


async def test_tool_pause_returns_planner_pause(tools: Tools) -> None:
    client = ScriptedClient(call("halt", text="ok?"))
    result = await run(make_planner(tools, client, hop_budget=5))
    assert isinstance(result, PlannerPause)
    assert result.reason == "approval_required"
    assert result.payload == {"ask": "ok?"}
    assert re.fullmatch(r"[0-9a-f]{32}", result.resume_token)


async def test_pause_without_payload_has_empty_payload(tools: Tools) -> None:
    result = await run(make_planner(tools, ScriptedClient(call("halt_nopayload", text="x"))))
    assert isinstance(result, PlannerPause)
    assert result.payload == {}


async def test_invalid_pause_reason_is_a_tool_failure(tools: Tools) -> None:
    tools.pause_reason = "coffee_break"
    client = ScriptedClient(call("halt", text="x"), finish())
    result = await run(make_planner(tools, client))
    assert isinstance(result, PlannerFinish)
    step = result.metadata["steps"][0]
    assert step["error"].startswith("tool 'halt' raised ValidationError: ")
    assert step["failure"]["error_code"] == "ValidationError"


async def test_pause_disabled_is_a_tool_failure(tools: Tools) -> None:
    client = ScriptedClient(call("halt", text="x"), finish())
    result = await run(make_planner(tools, client, pause_enabled=False))
    step = result.metadata["steps"][0]
    assert (
        step["error"]
        == "tool 'halt' raised RuntimeError: Pause/resume is disabled for this planner"
    )
    assert step["failure"]["message"] == "Pause/resume is disabled for this planner"


class Store:
    def __init__(self, *, is_async: bool) -> None:
        self.is_async = is_async
        self.saved: dict[str, Any] = {}
        self.saves: list[tuple[str, Any]] = []

    def save_planner_state(self, token: str, payload: Any) -> Any:
        snapshot = json.loads(json.dumps(payload))
        self.saved[token] = snapshot
        self.saves.append((token, snapshot))
        return self._done() if self.is_async else None

    def load_planner_state(self, token: str) -> Any:
        value = self.saved.get(token)
        return self._value(value) if self.is_async else value

    async def _done(self) -> None:
        return None

    async def _value(self, value: Any) -> Any:
        return value


@pytest.mark.parametrize(
    "is_async", [pytest.param(False, id="sync"), pytest.param(True, id="async")]
)
async def test_pause_record_saved_to_state_store(tools: Tools, is_async: bool) -> None:
    store = Store(is_async=is_async)
    client = ScriptedClient(call("a", text="1"), call("halt", text="why"))
    pause = await run(
        make_planner(tools, client, state_store=store, hop_budget=5), context_meta={"m": 1}
    )
    assert isinstance(pause, PlannerPause)
    assert {token for token, _ in store.saves} == {pause.resume_token}
    final = store.saved[pause.resume_token]
    assert list(final) == ["trajectory", "reason", "payload", "constraints"]
    assert final["reason"] == "approval_required"
    assert final["payload"] == {"ask": "why"}
    assert final["constraints"]["hops_used"] == 2
    assert final["constraints"]["hop_budget"] == 5
    trajectory = final["trajectory"]
    assert trajectory["query"] == "q"
    assert trajectory["context_meta"] == {"m": 1}
    assert len(trajectory["steps"]) == 2
    assert trajectory["steps"][1]["observation"] == {
        "pause": "approval_required",
        "payload": {"ask": "why"},
    }


async def test_resume_sends_resume_input_until_a_tool_succeeds(tools: Tools) -> None:
    client = ScriptedClient(call("halt", text="x"))
    planner = make_planner(tools, client)
    pause = await run(planner)
    client.add(call("ghost"), call("a", text="go"), finish({"done": 1}))
    result = await resume(planner, pause.resume_token, "approved")
    assert result.payload == {"done": 1}
    after_resume = client.calls[1]
    assert after_resume[-1] == {"role": "user", "content": "Resume input: approved"}
    assert after_resume[-2]["content"] == (
        '{"observation": {"pause": "approval_required", "payload": {"ask": "x"}}}'
    )
    # an error step keeps it; the successful tool step clears it
    assert client.calls[2][-1] == {"role": "user", "content": "Resume input: approved"}
    assert client.calls[3][-1]["content"] == '{"observation": {"answer": "a:go"}}'
    assert [s["action"]["next_node"] for s in result.metadata["steps"]] == ["halt", "ghost", "a"]


async def test_parallel_action_clears_resume_input(tools: Tools) -> None:
    client = ScriptedClient(call("halt", text="x"))
    planner = make_planner(tools, client)
    pause = await run(planner)
    client.add(plan(("ghost", {})), finish())
    await resume(planner, pause.resume_token, "yes")
    assert client.calls[1][-1]["content"] == "Resume input: yes"
    assert "Resume input" not in client.calls[2][-1]["content"]


async def test_resume_without_input_sends_no_resume_message(tools: Tools) -> None:
    client = ScriptedClient(call("halt", text="x"))
    planner = make_planner(tools, client)
    pause = await run(planner)
    client.add(finish())
    await resume(planner, pause.resume_token)
    assert client.calls[1][-1]["role"] == "user"
    assert not client.calls[1][-1]["content"].startswith("Resume input")


async def test_resumed_run_does_not_restore_last_observation(tools: Tools) -> None:
    client = ScriptedClient(call("a", text="1"), call("halt", text="x"))
    planner = make_planner(tools, client)
    pause = await run(planner)
    client.add(finish())
    result = await resume(planner, pause.resume_token, "ok")
    assert isinstance(result, PlannerFinish)
    assert result.reason == "answer_complete"
    assert result.payload is None
    assert result.metadata["step_count"] == 2


async def test_existing_steps_count_toward_max_iters_after_resume(tools: Tools) -> None:
    client = ScriptedClient(call("a", text="1"), call("halt", text="x"))
    planner = make_planner(tools, client, max_iters=3)
    pause = await run(planner)
    client.add(call("b", text="2"))
    result = await resume(planner, pause.resume_token)
    assert result.reason == "no_path"
    assert result.payload == {"answer": "b:2"}
    assert result.metadata["step_count"] == 3


async def test_token_resumes_once_from_memory(tools: Tools) -> None:
    client = ScriptedClient(call("halt", text="x"))
    planner = make_planner(tools, client)
    pause = await run(planner)
    client.add(finish())
    await resume(planner, pause.resume_token)
    with pytest.raises(KeyError) as info:
        await resume(planner, pause.resume_token)
    assert info.value.args == (pause.resume_token,)


async def test_unknown_token_raises_keyerror(tools: Tools) -> None:
    planner = make_planner(tools, ScriptedClient())
    with pytest.raises(KeyError) as info:
        await resume(planner, "missing")
    assert info.value.args == ("missing",)


async def test_store_returning_none_raises_keyerror(tools: Tools) -> None:
    planner = make_planner(tools, ScriptedClient(), state_store=Store(is_async=True))
    with pytest.raises(KeyError) as info:
        await resume(planner, "missing")
    assert info.value.args == ("missing",)


@pytest.mark.parametrize(
    "is_async", [pytest.param(False, id="sync"), pytest.param(True, id="async")]
)
async def test_resume_from_store_in_a_new_planner(tools: Tools, is_async: bool) -> None:
    store = Store(is_async=is_async)
    client = ScriptedClient(call("a", text="1"), call("halt", text="x"))
    pause = await run(make_planner(tools, client, state_store=store, hop_budget=3), "query")
    other_client = ScriptedClient(call("b", text="2"), call("b", text="3"), finish())
    fresh = make_planner(tools, other_client, state_store=store, hop_budget=3)
    result = await resume(fresh, pause.resume_token, "go")
    assert isinstance(result, PlannerFinish)
    first = other_client.calls[0]
    assert first[1]["content"] == '{"query": "query"}'
    assert first[-1]["content"] == "Resume input: go"
    assert len(first) == 2 + 4 + 1
    # hops kept across the pause: a, halt, b -> the budget of 3 is exhausted
    steps = result.metadata["steps"]
    assert steps[3]["error"].startswith("Hop budget exhausted")
    assert result.metadata["constraints"]["hops_used"] == 3


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_deadline_continues_with_remaining_seconds_after_resume(tools: Tools) -> None:
    clock = Clock()
    client = ScriptedClient(call("halt", text="x"))
    planner = make_planner(tools, client, deadline_s=10.0, time_source=clock)
    clock.now = 0.0
    pause = await run(planner)
    # paused at t=0 with 10 s left; resumed much later: 10 s from the resume time
    clock.now = 1000.0
    client.add(finish())
    result = await resume(planner, pause.resume_token)
    assert result.reason == "answer_complete"
    assert result.metadata["constraints"]["deadline_at"] == 1010.0
    assert result.metadata["constraints"]["deadline_remaining_s"] == 10.0


async def test_planner_pause_method_outside_a_run(tools: Tools) -> None:
    planner = make_planner(tools, ScriptedClient())
    with pytest.raises(RuntimeError) as info:
        await planner.pause("await_input")
    assert str(info.value) == "pause() requires an active planner run"
    disabled = make_planner(tools, ScriptedClient(), pause_enabled=False)
    with pytest.raises(RuntimeError) as info:
        await disabled.pause("await_input")
    assert str(info.value) == "pause() requires an active planner run"


async def test_planner_pause_method_during_a_run_returns_without_interrupting() -> None:
    holder: dict[str, Any] = {}

    async def asks(args: Query, ctx: Any) -> Answer:
        pause = await holder["planner"].pause("await_input", {"q": 1})
        holder["pause"] = pause
        return Answer(answer="continued")

    registry = ModelRegistry()
    registry.register("asks", Query, Answer)
    client = ScriptedClient(call("asks", text="x"), finish())
    planner = ReactPlanner(
        llm_client=client, catalog=build_catalog([Node(asks, name="asks")], registry)
    )
    holder["planner"] = planner
    result = await run(planner)
    assert isinstance(result, PlannerFinish)
    assert result.payload == {"answer": "continued"}
    pause = holder["pause"]
    assert isinstance(pause, PlannerPause)
    assert (pause.reason, pause.payload) == ("await_input", {"q": 1})
    client.add(finish({"resumed": True}))
    resumed = await resume(planner, pause.resume_token)
    assert resumed.payload == {"resumed": True}


async def test_planner_pause_method_disabled_during_a_run() -> None:
    holder: dict[str, Any] = {}

    async def asks(args: Query, ctx: Any) -> Answer:
        try:
            await holder["planner"].pause("await_input")
        except RuntimeError as exc:
            return Answer(answer=str(exc))
        return Answer(answer="no error")

    registry = ModelRegistry()
    registry.register("asks", Query, Answer)
    client = ScriptedClient(call("asks", text="x"), finish())
    planner = ReactPlanner(
        llm_client=client,
        catalog=build_catalog([Node(asks, name="asks")], registry),
        pause_enabled=False,
    )
    holder["planner"] = planner
    result = await run(planner)
    assert result.payload == {"answer": "Pause/resume is disabled for this planner"}


async def test_first_pausing_branch_pauses_the_plan(tools: Tools) -> None:
    client = ScriptedClient(
        plan(
            ("a", {"text": "1"}),
            ("halt", {"text": "first"}),
            ("halt", {"text": "second"}),
            join={"node": "join_all"},
        )
    )
    planner = make_planner(tools, client, hop_budget=10)
    store = Store(is_async=False)
    planner = make_planner(tools, client, hop_budget=10, state_store=store)
    pause = await run(planner)
    assert isinstance(pause, PlannerPause)
    assert pause.payload == {"ask": "first"}
    observation = store.saved[pause.resume_token]["trajectory"]["steps"][0]["observation"]
    assert observation == {
        "branches": [
            {"node": "a", "args": {"text": "1"}, "observation": {"answer": "a:1"}},
            {
                "node": "halt",
                "args": {"text": "first"},
                "pause": {"reason": "approval_required", "payload": {"ask": "first"}},
            },
            {
                "node": "halt",
                "args": {"text": "second"},
                "error": "tool 'halt' failed during parallel execution. Investigate the tool "
                "and adjust the plan.",
            },
        ],
        "stats": {"success": 1, "failed": 1},
        "join": {"status": "skipped", "reason": "pause"},
    }
    assert store.saved[pause.resume_token]["constraints"]["hops_used"] == 3
    assert "join_all" not in [name for name, _, _ in tools.seen]
    client.add(finish())
    result = await resume(planner, pause.resume_token, "ok")
    assert result.payload is None
    assert client.calls[1][-1]["content"] == "Resume input: ok"


async def test_join_pause_is_returned(tools: Tools) -> None:
    store = Store(is_async=False)
    client = ScriptedClient(
        plan(("a", {"text": "1"}), join={"node": "join_halt", "args": {"label": "l"}})
    )
    pause = await run(make_planner(tools, client, state_store=store, hop_budget=9))
    assert isinstance(pause, PlannerPause)
    assert (pause.reason, pause.payload) == ("external_event", {"join": True})
    saved = store.saved[pause.resume_token]
    assert saved["trajectory"]["steps"][0]["observation"]["join"] == {
        "node": "join_halt",
        "pause": {"reason": "external_event", "payload": {"join": True}},
    }
    assert saved["constraints"]["hops_used"] == 2


async def test_ordering_state_is_kept_in_hint_state_and_survives_resume(tools: Tools) -> None:
    store = Store(is_async=False)
    hints = {"ordering_hints": ["a", "b"]}
    client = ScriptedClient(call("b", text="0"), call("a", text="1"), call("halt", text="x"))
    pause = await run(make_planner(tools, client, planning_hints=hints, state_store=store))
    hint_state = store.saved[pause.resume_token]["trajectory"]["hint_state"]
    assert hint_state == {"ordering_state": {"completed": ["a"], "warned": False}}
    fresh_client = ScriptedClient(call("b", text="2"), finish())
    fresh = make_planner(tools, fresh_client, planning_hints=hints, state_store=store)
    result = await resume(fresh, pause.resume_token)
    assert result.metadata["steps"][3]["error"] is None  # b is the expected tool now
    assert result.metadata["steps"][3]["observation"] == {"answer": "b:2"}


async def test_each_run_starts_a_fresh_tracker(tools: Tools) -> None:
    client = ScriptedClient(call("a", text="1"), finish(), call("a", text="2"), finish())
    planner = make_planner(tools, client, hop_budget=1)
    first = await run(planner)
    second = await run(planner)
    assert first.metadata["constraints"]["hops_used"] == 1
    assert second.metadata["steps"][0]["error"] is None
    assert second.payload == {"answer": "a:2"}


async def test_llm_client_takes_precedence_over_llm(tools: Tools) -> None:
    client = ScriptedClient(finish({"via": "client"}))
    result = await run(make_planner(tools, client, llm="not-a-real-model"))
    assert result.payload == {"via": "client"}
