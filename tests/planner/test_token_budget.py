"""Token budget: a long history is condensed to a summary plus the latest step."""

from __future__ import annotations

import json
from typing import Any

from planner_support import ScriptedClient, call, default_catalog, finish

from penguiflow.planner import ReactPlanner, Trajectory, TrajectorySummary
from penguiflow.planner._messages import SUMMARY_FORMAT


def planner_for(client: ScriptedClient, **kwargs: Any) -> ReactPlanner:
    return ReactPlanner(llm_client=client, catalog=default_catalog(), **kwargs)


def summary_message(messages: list[dict[str, str]]) -> dict[str, Any]:
    content = messages[2]["content"]
    assert content.startswith("Trajectory summary: ")
    return json.loads(content.removeprefix("Trajectory summary: "))


async def test_history_within_budget_is_sent_in_full() -> None:
    client = ScriptedClient([call("triage", question="Q"), finish()])
    await planner_for(client, token_budget=1_000_000).run("Q")
    assert len(client.calls[1].messages) == 4


async def test_history_over_budget_is_condensed_to_summary_and_last_step() -> None:
    client = ScriptedClient([call("triage", question="Q"), call("retrieve", intent="i"), finish()])
    planner = planner_for(client, token_budget=10)
    await planner.run("Q")
    messages = client.calls[2].messages
    assert [m["role"] for m in messages] == ["system", "user", "system", "assistant", "user"]
    assert messages[0]["content"] == planner.system_prompt
    assert summary_message(messages) == {
        "goals": ["Q"],
        "facts": {"last_observation": {"documents": ["i"]}},
        "pending": [],
        "last_output_digest": '{"documents": ["i"]}',
        "note": "rule_based",
    }
    assert messages[4]["content"] == '{"observation": {"documents": ["i"]}}'


async def test_condensed_history_before_any_step_has_no_step_messages() -> None:
    client = ScriptedClient([finish()])
    await planner_for(client, token_budget=1).run("Q")
    assert [m["role"] for m in client.calls[0].messages] == ["system", "user", "system"]


def _summariser(reply: Any) -> ScriptedClient:
    # Called before each of the two planning steps (the summary of step one is
    # dropped when step one is appended).
    return ScriptedClient([reply, reply])


async def test_summariser_replaces_a_rule_based_summary_that_is_too_long() -> None:
    client = ScriptedClient([call("triage", question="Q" * 50), finish()])
    planner = planner_for(client, token_budget=60)
    summariser = _summariser({"goals": ["short"], "facts": {"k": 1}})
    planner._summarizer_client = summariser  # compat surface: programs assign it
    await planner.run("Q")
    assert summary_message(client.calls[1].messages) == {
        "goals": ["short"],
        "facts": {"k": 1},
        "pending": [],
        "last_output_digest": None,
        "note": "llm",
    }
    _, sent = summariser.calls
    assert sent.response_format == SUMMARY_FORMAT
    assert sent.response_format["json_schema"]["name"] == "trajectory_summary"
    body = json.loads(sent.messages[1]["content"])
    assert body["query"] == "Q"
    assert body["current_summary"]["note"] == "rule_based"
    assert len(body["history"]) == 1


async def test_summariser_note_is_kept_when_given() -> None:
    client = ScriptedClient([call("triage", question="Q" * 50), finish()])
    planner = planner_for(client, token_budget=60)
    planner._summarizer_client = _summariser({"goals": [], "note": "mine"})
    await planner.run("Q")
    assert summary_message(client.calls[1].messages)["note"] == "mine"


async def test_failing_summariser_falls_back_to_the_rule_based_summary() -> None:
    client = ScriptedClient([call("triage", question="Q" * 50), finish()])
    planner = planner_for(client, token_budget=60)
    planner._summarizer_client = _summariser("not json")
    await planner.run("Q")
    summary = summary_message(client.calls[1].messages)
    assert summary["note"] == "rule_based_fallback"
    assert summary["goals"] == ["Q"]


async def test_summariser_is_not_called_when_the_rule_based_summary_fits() -> None:
    client = ScriptedClient([call("triage", question="Q"), finish()])
    planner = planner_for(client, token_budget=250)  # the system prompt alone is longer
    summariser = _summariser(AssertionError("must not be called"))
    planner._summarizer_client = summariser
    await planner.run("Q")
    assert summariser.calls == []
    assert summary_message(client.calls[1].messages)["note"] == "rule_based"


async def test_cached_summary_is_reused_until_a_step_is_appended() -> None:
    client = ScriptedClient([finish(), finish()])
    planner = planner_for(client, token_budget=1)
    trajectory = Trajectory(query="Q")
    trajectory.summary = TrajectorySummary(goals=["cached"])
    await planner.step(trajectory)
    assert summary_message(client.calls[0].messages)["goals"] == ["cached"]


async def test_resume_input_is_kept_in_condensed_history() -> None:
    client = ScriptedClient([finish()])
    trajectory = Trajectory(query="Q", resume_user_input="more")
    await planner_for(client, token_budget=1).step(trajectory)
    assert client.calls[0].messages[-1] == {"role": "user", "content": "Resume input: more"}


def test_summariser_client_is_none_unless_configured() -> None:
    assert planner_for(ScriptedClient([]))._summarizer_client is None
    planner = planner_for(ScriptedClient([]), summarizer_llm="gpt-4o-mini")
    assert planner._summarizer_client is not None
