"""ReactPlanner.run: the sequential loop, driven by a scripted model client."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import pytest
from planner_support import (
    Intent,
    Query,
    ScriptedClient,
    call,
    default_catalog,
    finish,
    last_user_json,
    make_catalog,
    triage,
)

from penguiflow.errors import PlannerError
from penguiflow.planner import PlannerAction, ReactPlanner, Trajectory, prompts
from penguiflow.testkit import FakeClock


def planner_for(client: ScriptedClient, catalog=None, **kwargs: Any) -> ReactPlanner:
    return ReactPlanner(llm_client=client, catalog=catalog or default_catalog(), **kwargs)


async def test_tool_then_finish_completes_with_the_given_answer() -> None:
    client = ScriptedClient([call("triage", question="Q"), finish(args={"answer": "A"})])
    result = await planner_for(client).run("Q")
    assert result.reason == "answer_complete"
    assert result.payload == {"answer": "A"}
    meta = result.metadata
    assert (meta["reason"], meta["thought"], meta["step_count"]) == ("answer_complete", "done", 1)
    assert meta["steps"][0]["observation"] == {"intent": "intent:Q"}
    assert meta["constraints"]["hops_used"] == 0


async def test_finish_without_args_returns_last_observation() -> None:
    client = ScriptedClient([call("triage", question="Q"), finish()])
    result = await planner_for(client).run("Q")
    assert result.payload == {"intent": "intent:Q"}


async def test_first_call_sends_system_and_user_prompt(catalog) -> None:
    client = ScriptedClient([finish(args={"answer": "x"})])
    planner = planner_for(client, catalog)
    await planner.run("Q", context_meta={"tenant": "acme"})
    (sent,) = client.calls
    assert sent.messages == [
        {"role": "system", "content": planner.system_prompt},
        {"role": "user", "content": '{"context": {"tenant": "acme"}, "query": "Q"}'},
    ]
    assert sent.response_format == {
        "type": "json_schema",
        "json_schema": {"name": "planner_action", "schema": PlannerAction.model_json_schema()},
    }


async def test_later_calls_replay_each_step_as_assistant_and_observation() -> None:
    action = call("triage", question="Q")
    client = ScriptedClient([action, finish()])
    await planner_for(client).run("Q")
    messages = client.calls[1].messages
    expected_action = PlannerAction.model_validate(action).model_dump(mode="json")
    assert messages[2] == {
        "role": "assistant",
        "content": json.dumps(expected_action, ensure_ascii=False, sort_keys=True),
    }
    assert messages[3] == {"role": "user", "content": '{"observation": {"intent": "intent:Q"}}'}


async def test_json_schema_mode_off_sends_no_response_format() -> None:
    client = ScriptedClient([finish()])
    await planner_for(client, json_schema_mode=False).run("Q")
    assert client.calls[0].response_format is None


def test_system_prompt_lists_tools_guidance_and_hints(catalog) -> None:
    planner = planner_for(
        ScriptedClient([]),
        catalog,
        system_prompt_extra="Be brief.",
        planning_hints={"prefer_nodes": ["triage"]},
    )
    expected = prompts.build_system_prompt(
        [spec.to_tool_record() for spec in catalog],
        extra="Be brief.",
        planning_hints={"preferred_nodes": ["triage"]},
    )
    assert planner.system_prompt == expected
    assert [spec.name for spec in planner.catalog] == ["triage", "retrieve", "respond"]


def test_catalog_is_built_from_nodes_and_registry() -> None:
    from penguiflow.node import Node
    from penguiflow.registry import ModelRegistry

    registry = ModelRegistry()
    registry.register("triage", Query, Intent)
    planner = ReactPlanner(
        llm_client=ScriptedClient([]), nodes=[Node(triage, name="triage")], registry=registry
    )
    assert "- name: triage" in planner.system_prompt


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"llm": "m"}, r"Either catalog or \(nodes and registry\)", id="no-catalog"),
        pytest.param(
            {"llm": "m", "nodes": []}, r"Either catalog or \(nodes and registry\)", id="no-registry"
        ),
        pytest.param({"catalog": []}, "llm or llm_client must be provided", id="no-llm"),
        pytest.param({}, "Either catalog", id="catalog-checked-first"),
    ],
)
def test_construction_errors(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        ReactPlanner(**kwargs)


async def test_invalid_json_is_repaired_with_the_latest_error() -> None:
    client = ScriptedClient(["not json", "{}", finish(args={"answer": "ok"})])
    result = await planner_for(client).run("Q")
    assert result.payload == {"answer": "ok"}
    first, second, third = client.calls
    assert len(first.messages) == 2
    assert second.messages[:2] == first.messages
    assert second.messages[2]["role"] == "system"
    assert second.messages[2]["content"].startswith(
        "Previous response was invalid JSON or schema mismatch: "
    )
    assert len(third.messages) == 3  # only the latest error is sent
    assert "thought" in third.messages[2]["content"]
    assert "Field required" in third.messages[2]["content"]


async def test_repair_gives_up_after_the_configured_attempts() -> None:
    client = ScriptedClient(["nope", "nope"])
    with pytest.raises(RuntimeError, match="Planner failed to produce valid JSON after repair"):
        await planner_for(client, repair_attempts=2).run("Q")
    assert len(client.calls) == 2


async def test_repair_failure_is_a_planner_error() -> None:
    client = ScriptedClient(["nope"])
    with pytest.raises(PlannerError):
        await planner_for(client, repair_attempts=1).step(Trajectory(query="q"))


async def test_client_exceptions_propagate() -> None:
    client = ScriptedClient([ConnectionError("down")])
    with pytest.raises(ConnectionError, match="down"):
        await planner_for(client).run("Q")


async def test_unknown_tool_is_reported_and_the_model_replans() -> None:
    client = ScriptedClient([call("nope"), finish(args={"answer": "x"})])
    result = await planner_for(client).run("Q")
    error = prompts.render_invalid_node("nope", ["triage", "retrieve", "respond"])
    assert result.metadata["steps"][0]["error"] == error
    assert last_user_json(client.calls[1]) == {"error": error}


async def test_invalid_args_are_reported_without_calling_the_tool() -> None:
    client = ScriptedClient([call("triage", question=None), finish()])
    result = await planner_for(client, hop_budget=5).run("Q")
    error = result.metadata["steps"][0]["error"]
    assert error.startswith("args for tool 'triage' did not validate: [")
    assert error.endswith("]. Return corrected JSON.")
    assert result.metadata["constraints"]["hops_used"] == 0


class Flaky(Exception):
    def __init__(self, message: str, **attrs: Any) -> None:
        super().__init__(message)
        for key, value in attrs.items():
            setattr(self, key, value)


def _raising(exc: Exception):
    async def broken(args: Query, ctx: Any) -> Intent:
        raise exc

    return broken


@pytest.mark.parametrize(
    ("exc", "suggestion"),
    [
        pytest.param(Flaky("boom"), None, id="plain"),
        pytest.param(Flaky("boom", suggestion="use backup"), "use backup", id="suggestion"),
        pytest.param(
            Flaky("boom", suggestion="", remedy="retry later"), "retry later", id="remedy"
        ),
    ],
)
async def test_crashing_tool_feeds_a_structured_failure_back(exc, suggestion) -> None:
    catalog = make_catalog((_raising(exc), Query, Intent), (triage, Query, Intent))
    client = ScriptedClient([call("broken", question="Q"), call("triage", question="Q"), finish()])
    result = await planner_for(client, catalog, hop_budget=5).run("Q")
    failed = result.metadata["steps"][0]
    assert failed["error"] == "tool 'broken' raised Flaky: boom"
    expected = {
        "node": "broken",
        "args": {"question": "Q"},
        "error_code": "Flaky",
        "message": "boom",
    }
    if suggestion:
        expected["suggestion"] = suggestion
    assert failed["failure"] == expected
    assert last_user_json(client.calls[1]) == {"error": failed["error"], "failure": expected}
    assert result.payload == {"intent": "intent:Q"}  # the fallback tool's observation
    assert result.metadata["constraints"]["hops_used"] == 2


async def test_failed_tool_clears_the_last_observation() -> None:
    catalog = make_catalog((triage, Query, Intent), (_raising(Flaky("x")), Query, Intent))
    client = ScriptedClient([call("triage", question="Q"), call("broken", question="Q"), finish()])
    result = await planner_for(client, catalog).run("Q")
    assert result.payload is None


async def test_tool_output_failing_its_schema_is_reported() -> None:
    async def sloppy(args: Query, ctx: Any) -> Any:
        return {"wrong": 1}

    catalog = make_catalog((sloppy, Query, Intent))
    client = ScriptedClient([call("sloppy", question="Q"), finish()])
    result = await planner_for(client, catalog, hop_budget=3).run("Q")
    error = result.metadata["steps"][0]["error"]
    assert error.startswith("tool 'sloppy' returned data that did not validate: [")
    assert result.metadata["constraints"]["hops_used"] == 1
    assert result.payload is None


async def test_dict_results_are_validated_into_the_output_model() -> None:
    async def loose(args: Query, ctx: Any) -> Any:
        return {"intent": "i"}

    client = ScriptedClient([call("loose", question="Q"), finish()])
    result = await planner_for(client, make_catalog((loose, Query, Intent))).run("Q")
    assert result.payload == {"intent": "i"}


async def test_tool_receives_validated_args_and_a_planner_context() -> None:
    seen: dict[str, Any] = {}

    async def probe(args: Query, ctx: Any) -> Intent:
        seen["args"] = args
        seen["meta"] = ctx.meta
        seen["has_emit"] = hasattr(ctx, "emit")
        ctx.meta["mutated"] = True
        return Intent(intent="i")

    meta = {"tenant": "acme"}
    client = ScriptedClient([call("probe", question="Q"), finish()])
    await planner_for(client, make_catalog((probe, Query, Intent))).run("Q", context_meta=meta)
    assert seen["args"] == Query(question="Q")
    assert seen["meta"] == {"tenant": "acme", "mutated": True}
    assert not seen["has_emit"]
    assert meta == {"tenant": "acme"}  # the tool got a copy


async def test_iteration_limit_ends_with_no_path() -> None:
    client = ScriptedClient([call("triage", question="Q")] * 3)
    result = await planner_for(client, max_iters=3).run("Q")
    assert (result.reason, result.metadata["thought"]) == ("no_path", "iteration limit reached")
    assert result.metadata["step_count"] == 3
    assert result.payload == {"intent": "intent:Q"}


async def test_endless_error_loop_stops_at_the_iteration_limit() -> None:
    client = ScriptedClient([call("nope")] * 4)
    result = await planner_for(client, max_iters=4).run("Q")
    assert result.reason == "no_path"
    assert result.payload is None


async def test_hop_budget_refuses_further_tools_and_ends_budget_exhausted() -> None:
    client = ScriptedClient([call("triage", question="Q")] * 3)
    result = await planner_for(client, max_iters=3, hop_budget=1).run("Q")
    assert result.reason == "budget_exhausted"
    assert result.metadata["thought"] == prompts.render_hop_budget_violation(1)
    steps = result.metadata["steps"]
    assert [s["error"] for s in steps[1:]] == [prompts.render_hop_budget_violation(1)] * 2
    constraints = result.metadata["constraints"]
    assert (constraints["hops_used"], constraints["hop_exhausted"]) == (1, True)


async def test_model_may_still_finish_after_the_hop_budget() -> None:
    client = ScriptedClient([call("triage", question="Q"), finish(args={"answer": "A"})])
    result = await planner_for(client, hop_budget=0).run("Q")
    assert result.reason == "answer_complete"
    assert "Hop budget" in result.metadata["steps"][0]["error"]


async def test_deadline_ends_the_run_with_the_last_observation() -> None:
    now = [0.0]

    async def slow(args: Query, ctx: Any) -> Intent:
        now[0] += 10.0  # the tool takes 10 s of the planner's time source
        return Intent(intent="late")

    client = ScriptedClient([call("slow", question="Q"), call("slow", question="Q")])
    planner = planner_for(
        client, make_catalog((slow, Query, Intent)), deadline_s=5.0, time_source=lambda: now[0]
    )
    result = await planner.run("Q")
    assert result.reason == "budget_exhausted"
    assert result.metadata["thought"] == prompts.render_deadline_exhausted()
    assert result.payload == {"intent": "late"}
    assert len(client.calls) == 1
    constraints = result.metadata["constraints"]
    assert constraints["deadline_triggered"]
    assert constraints["deadline_remaining_s"] == 0.0


async def test_disallowed_tool_is_refused_without_a_hop() -> None:
    client = ScriptedClient([call("triage", question="Q"), finish()])
    planner = planner_for(client, planning_hints={"disallow_nodes": ["triage"]}, hop_budget=2)
    result = await planner.run("Q")
    assert result.metadata["steps"][0]["error"] == prompts.render_disallowed_node("triage")
    assert result.metadata["constraints"]["hops_used"] == 0


async def test_ordering_hint_refuses_once_then_lets_the_model_insist() -> None:
    client = ScriptedClient([call("retrieve", intent="i"), call("retrieve", intent="i"), finish()])
    hints = {"ordering_hints": ["triage", "retrieve"]}
    result = await planner_for(client, planning_hints=hints).run("Q")
    steps = result.metadata["steps"]
    assert "Ordering hint" in steps[0]["error"]
    assert steps[1]["observation"] == {"documents": ["i"]}


async def test_ordering_progress_is_recorded_on_success() -> None:
    client = ScriptedClient([call("triage", question="Q"), call("retrieve", intent="i"), finish()])
    hints = {"ordering_hints": ["triage", "retrieve"]}
    result = await planner_for(client, planning_hints=hints).run("Q")
    assert [s["error"] for s in result.metadata["steps"]] == [None, None]


async def test_tool_timeout_is_reported_as_a_failure_on_the_fake_clock() -> None:
    clock = FakeClock()
    started = asyncio.Event()

    async def hang(args: Query, ctx: Any) -> Intent:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    client = ScriptedClient([call("hang", question="Q"), finish()])
    planner = planner_for(
        client, make_catalog((hang, Query, Intent)), tool_timeout_s=30.0, clock=clock
    )
    async with asyncio.timeout(5):
        task = asyncio.create_task(planner.run("Q"))
        await started.wait()
        await clock.wait_for_timers(1)
        clock.advance(30.0)
        result = await task
    failed = result.metadata["steps"][0]
    assert failed["error"] == "tool 'hang' raised TimeoutError: timed out after 30.0s"
    assert failed["failure"]["error_code"] == "TimeoutError"


async def test_tool_raising_its_own_timeout_error_keeps_its_message() -> None:
    catalog = make_catalog((_raising(TimeoutError("upstream")), Query, Intent))
    client = ScriptedClient([call("broken", question="Q"), finish()])
    result = await planner_for(client, catalog, tool_timeout_s=30.0).run("Q")
    assert result.metadata["steps"][0]["error"] == "tool 'broken' raised TimeoutError: upstream"


async def test_tool_cancellation_propagates() -> None:
    catalog = make_catalog((_raising(asyncio.CancelledError()), Query, Intent))  # type: ignore[arg-type]
    client = ScriptedClient([call("broken", question="Q")])
    with pytest.raises(asyncio.CancelledError):
        await planner_for(client, catalog).run("Q")


async def test_planner_works_with_retrieve_and_respond_chain() -> None:
    client = ScriptedClient(
        [
            call("triage", question="Q"),
            call("retrieve", intent="intent:Q"),
            call("respond", documents=["d1", "d2"]),
            finish(),
        ]
    )
    result = await planner_for(client).run("Q")
    assert result.payload == {"answer": "d1 | d2"}
    assert result.metadata["step_count"] == 3


def test_importing_the_planner_does_not_import_litellm() -> None:
    code = (
        "import sys, penguiflow, penguiflow.planner, penguiflow.catalog;"
        "from penguiflow import ReactPlanner;"
        "ReactPlanner('gpt-4o-mini', catalog=[]);"
        "assert 'litellm' not in sys.modules, 'litellm imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
