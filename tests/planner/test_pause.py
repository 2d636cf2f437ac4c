"""Pause and resume: ctx.pause, resume tokens, state stores, planner.pause()."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pydantic
import pytest
from planner_support import (
    Intent,
    Query,
    ScriptedClient,
    call,
    finish,
    make_catalog,
    triage,
)

from penguiflow.planner import PlannerPause, ReactPlanner
from penguiflow.stores.sqlite import SQLiteStateStore


async def approve(args: Query, ctx: Any) -> Intent:
    await ctx.pause("approval_required", {"question": args.question})
    raise AssertionError("unreachable")


def catalog() -> list:
    return make_catalog((approve, Query, Intent), (triage, Query, Intent))


class DictStore:
    """Planner state kept as JSON text, as a real store would."""

    def __init__(self) -> None:
        self.saved: dict[str, str] = {}
        self.saves: list[str] = []

    async def save_planner_state(self, token: str, payload: dict[str, Any]) -> None:
        self.saves.append(token)
        self.saved[token] = json.dumps(payload)

    async def load_planner_state(self, token: str) -> dict[str, Any] | None:
        text = self.saved.get(token)
        return None if text is None else json.loads(text)


class SyncStore(DictStore):
    def save_planner_state(self, token: str, payload: dict[str, Any]) -> None:  # type: ignore[override]
        self.saved[token] = json.dumps(payload)

    def load_planner_state(self, token: str) -> dict[str, Any] | None:  # type: ignore[override]
        text = self.saved.get(token)
        return None if text is None else json.loads(text)


def planner_for(client: ScriptedClient, **kwargs: Any) -> ReactPlanner:
    return ReactPlanner(llm_client=client, catalog=catalog(), **kwargs)


async def test_tool_pause_returns_a_pause_with_a_token() -> None:
    client = ScriptedClient([call("approve", question="Q")])
    pause = await planner_for(client).run("Q")
    assert isinstance(pause, PlannerPause)
    assert (pause.reason, pause.payload) == ("approval_required", {"question": "Q"})
    assert len(pause.resume_token) == 32


async def test_resume_sends_the_user_input_and_continues_the_trajectory() -> None:
    client = ScriptedClient([call("approve", question="Q")])
    planner = planner_for(client, hop_budget=4)
    pause = await planner.run("Q")
    client.script.extend([call("triage", question="Q"), finish()])
    result = await planner.resume(pause.resume_token, user_input="approved")
    assert result.reason == "answer_complete"
    after_resume = client.calls[1].messages
    assert after_resume[-1] == {"role": "user", "content": "Resume input: approved"}
    assert after_resume[-2] == {
        "role": "user",
        "content": '{"observation": {"pause": "approval_required", "payload": {"question": "Q"}}}',
    }
    # Cleared by the successful tool step that followed.
    assert "Resume input" not in client.calls[2].messages[-1]["content"]
    assert result.metadata["step_count"] == 2
    assert result.metadata["constraints"]["hops_used"] == 2


async def test_a_token_resumes_once_from_memory() -> None:
    client = ScriptedClient([call("approve", question="Q"), finish()])
    planner = planner_for(client)
    pause = await planner.run("Q")
    await planner.resume(pause.resume_token)
    with pytest.raises(KeyError):
        await planner.resume(pause.resume_token)


async def test_unknown_token_raises_key_error() -> None:
    with pytest.raises(KeyError):
        await planner_for(ScriptedClient([])).resume("missing")


async def test_store_returning_none_raises_key_error() -> None:
    with pytest.raises(KeyError):
        await planner_for(ScriptedClient([]), state_store=DictStore()).resume("missing")


async def test_last_observation_is_not_restored_on_resume() -> None:
    client = ScriptedClient([call("triage", question="Q"), call("approve", question="Q")])
    planner = planner_for(client)
    pause = await planner.run("Q")
    client.script.append(finish())
    result = await planner.resume(pause.resume_token)
    assert result.payload is None


@pytest.mark.parametrize("store_type", [DictStore, SyncStore], ids=["async", "sync"])
async def test_pause_survives_in_a_store_for_another_planner(store_type) -> None:
    store = store_type()
    first = planner_for(ScriptedClient([call("approve", question="Q")]), state_store=store)
    pause = await first.run("Q", context_meta={"tenant": "acme"})
    saved = json.loads(store.saved[pause.resume_token])
    assert saved["reason"] == "approval_required"
    assert saved["payload"] == {"question": "Q"}
    assert len(saved["trajectory"]["steps"]) == 1  # the authoritative save has the pause step

    client = ScriptedClient([finish(args={"answer": "ok"})])
    second = planner_for(client, state_store=store)
    result = await second.resume(pause.resume_token, user_input="yes")
    assert result.payload == {"answer": "ok"}
    assert client.calls[0].messages[1]["content"] == (
        '{"context": {"tenant": "acme"}, "query": "Q"}'
    )


async def test_pause_record_is_saved_when_pausing_and_again_with_the_step() -> None:
    store = DictStore()
    pause = await planner_for(
        ScriptedClient([call("approve", question="Q")]), state_store=store
    ).run("Q")
    assert store.saves == [pause.resume_token, pause.resume_token]


async def test_resumed_run_keeps_hops_used_and_remaining_deadline(tmp_path) -> None:
    now = [1000.0]

    async def slow_approve(args: Query, ctx: Any) -> Intent:
        now[0] += 10.0  # 10 s of the 60 s budget pass before the tool pauses
        await ctx.pause("approval_required")
        raise AssertionError("unreachable")

    tools = make_catalog((slow_approve, Query, Intent), (triage, Query, Intent))
    store = SQLiteStateStore(tmp_path / "planner.db")
    try:
        first = ReactPlanner(
            llm_client=ScriptedClient([call("slow_approve", question="Q")]),
            catalog=tools,
            state_store=store,
            hop_budget=1,
            deadline_s=60.0,
            time_source=lambda: now[0],
        )
        pause = await first.run("Q")
    finally:
        await store.close()

    now[0] = 5000.0  # a new process resumes much later
    reopened = SQLiteStateStore(tmp_path / "planner.db")
    try:
        client = ScriptedClient([call("triage", question="Q"), finish()])
        second = ReactPlanner(
            llm_client=client,
            catalog=tools,
            state_store=reopened,
            time_source=lambda: now[0],
        )
        result = await second.resume(pause.resume_token)
    finally:
        await reopened.close()
    constraints = result.metadata["constraints"]
    assert constraints["hops_used"] == 1
    assert constraints["hop_budget"] == 1
    assert constraints["deadline_at"] == pytest.approx(5050.0)
    assert "Hop budget" in result.metadata["steps"][1]["error"]


async def test_resume_without_stored_constraints_starts_fresh_budgets() -> None:
    store = DictStore()
    planner = planner_for(ScriptedClient([call("approve", question="Q")]), state_store=store)
    pause = await planner.run("Q")
    record = json.loads(store.saved[pause.resume_token])
    record["constraints"] = None
    other = DictStore()
    other.saved[pause.resume_token] = json.dumps(record)
    client = ScriptedClient([finish()])
    resumed = planner_for(client, state_store=other, hop_budget=3)
    result = await resumed.resume(pause.resume_token)
    assert result.metadata["constraints"]["hop_budget"] == 3


async def test_pause_disabled_turns_ctx_pause_into_a_tool_failure() -> None:
    client = ScriptedClient([call("approve", question="Q"), finish()])
    result = await planner_for(client, pause_enabled=False).run("Q")
    assert result.metadata["steps"][0]["error"] == (
        "tool 'approve' raised RuntimeError: Pause/resume is disabled for this planner"
    )


async def test_unknown_pause_reason_is_a_tool_failure() -> None:
    async def napper(args: Query, ctx: Any) -> Intent:
        await ctx.pause("nap")
        raise AssertionError("unreachable")

    client = ScriptedClient([call("napper", question="Q"), finish()])
    planner = ReactPlanner(llm_client=client, catalog=make_catalog((napper, Query, Intent)))
    result = await planner.run("Q")
    assert result.metadata["steps"][0]["failure"]["error_code"] == "ValidationError"


async def test_planner_pause_outside_a_run_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="pause\\(\\) requires an active planner run"):
        await planner_for(ScriptedClient([])).pause("await_input")


async def test_planner_pause_during_a_run_records_without_interrupting() -> None:
    pauses: list[PlannerPause] = []
    planner: ReactPlanner

    async def checkpoint(args: Query, ctx: Any) -> Intent:
        pauses.append(await planner.pause("external_event", {"at": "checkpoint"}))
        return Intent(intent="continued")

    client = ScriptedClient([call("checkpoint", question="Q"), finish()])
    planner = ReactPlanner(llm_client=client, catalog=make_catalog((checkpoint, Query, Intent)))
    result = await planner.run("Q")
    assert result.payload == {"intent": "continued"}
    (pause,) = pauses
    assert pause.payload == {"at": "checkpoint"}
    client.script.append(finish(args={"answer": "again"}))
    resumed = await planner.resume(pause.resume_token)
    assert resumed.payload == {"answer": "again"}


async def test_planner_pause_with_pausing_disabled_is_an_error() -> None:
    errors: list[Exception] = []
    planner: ReactPlanner

    async def checkpoint(args: Query, ctx: Any) -> Intent:
        try:
            await planner.pause("external_event")
        except RuntimeError as exc:
            errors.append(exc)
        return Intent(intent="i")

    client = ScriptedClient([call("checkpoint", question="Q"), finish()])
    planner = ReactPlanner(
        llm_client=client,
        catalog=make_catalog((checkpoint, Query, Intent)),
        pause_enabled=False,
    )
    await planner.run("Q")
    assert [str(e) for e in errors] == ["Pause/resume is disabled for this planner"]


async def test_pause_reason_is_validated_by_planner_pause() -> None:
    errors: list[Exception] = []
    planner: ReactPlanner

    async def checkpoint(args: Query, ctx: Any) -> Intent:
        try:
            await planner.pause("nap")
        except pydantic.ValidationError as exc:
            errors.append(exc)
        return Intent(intent="i")

    client = ScriptedClient([call("checkpoint", question="Q"), finish()])
    planner = ReactPlanner(llm_client=client, catalog=make_catalog((checkpoint, Query, Intent)))
    await planner.run("Q")
    assert len(errors) == 1


async def test_concurrent_runs_of_one_planner_pause_their_own_trajectory() -> None:
    both_running = asyncio.Event()
    arrived: list[str] = []
    pauses: dict[str, PlannerPause] = {}
    planner: ReactPlanner

    async def checkpoint(args: Query, ctx: Any) -> Intent:
        arrived.append(args.question)
        if len(arrived) == 2:
            both_running.set()
        async with asyncio.timeout(5):
            await both_running.wait()
        pauses[args.question] = await planner.pause("external_event")
        return Intent(intent=args.question)

    def reply(messages: list[dict[str, str]]) -> str:
        query = json.loads(messages[1]["content"])["query"]
        if len(messages) == 2:
            return json.dumps(call("checkpoint", question=query))
        return json.dumps(finish())

    client = ScriptedClient([reply] * 6)
    planner = ReactPlanner(llm_client=client, catalog=make_catalog((checkpoint, Query, Intent)))
    async with asyncio.timeout(5):
        await asyncio.gather(planner.run("A"), planner.run("B"))
        resumed = await planner.resume(pauses["A"].resume_token)  # the older run
    assert resumed.payload is None
    assert json.loads(client.calls[-1].messages[1]["content"]) == {"query": "A"}


async def test_planner_pause_from_another_task_uses_the_newest_run() -> None:
    in_tool = asyncio.Event()
    release = asyncio.Event()

    async def waiter(args: Query, ctx: Any) -> Intent:
        in_tool.set()
        async with asyncio.timeout(5):
            await release.wait()
        return Intent(intent="i")

    client = ScriptedClient([call("waiter", question="Q"), finish()])
    planner = ReactPlanner(llm_client=client, catalog=make_catalog((waiter, Query, Intent)))
    async with asyncio.timeout(5):
        task = asyncio.create_task(planner.run("Q"))
        await in_tool.wait()
        pause = await planner.pause("await_input")
        release.set()
        await task
    assert pause.reason == "await_input"


async def test_testkit_in_memory_store_carries_a_pause_to_another_planner() -> None:
    from penguiflow.testkit import InMemoryStateStore

    store = InMemoryStateStore()
    first = planner_for(ScriptedClient([call("approve", question="Q")]), state_store=store)
    pause = await first.run("Q")
    second = planner_for(ScriptedClient([finish(args={"answer": "ok"})]), state_store=store)
    result = await second.resume(pause.resume_token, user_input="yes")
    assert result.payload == {"answer": "ok"}
    assert result.metadata["steps"][0]["observation"]["pause"] == "approval_required"
