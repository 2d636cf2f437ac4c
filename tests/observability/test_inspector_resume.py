"""The inspector's parked traces and its resume action (aiohttp test client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from penguiflow import Interrupt, hosting
from penguiflow.core import PenguiFlow, create
from penguiflow.errors import JournalError
from penguiflow.inspector import ACTION_HEADER, create_inspector_app, create_store_inspector_app
from penguiflow.inspector._interrupts import interrupt_id, payload_text, stored_parked
from penguiflow.node import Node, NodePolicy
from penguiflow.stores.sqlite import SQLiteStateStore
from penguiflow.testkit import InMemoryJournal, InMemoryStateStore
from penguiflow.types import Headers, Message

ACTION = {ACTION_HEADER: "1"}
WAIT_S = 10.0
QUESTION = {"question": "refund?", "html": "<script>alert(1)</script>"}


async def ask(msg: Message, ctx: Any) -> Message:
    answer = await ctx.interrupt(QUESTION)
    return msg.model_copy(update={"payload": [msg.payload, answer]})


def asking_flow(**kwargs: Any) -> PenguiFlow:
    return create(Node(ask, name="ask", policy=NodePolicy(validate="none")).to(), **kwargs)


async def fetch(flow: PenguiFlow) -> Any:
    async with asyncio.timeout(WAIT_S):
        return await flow.fetch()


class Parked:
    """A running flow with one trace parked, and a test client on its inspector."""

    def __init__(self, flow: PenguiFlow, client: Any, sent: Message, notice: Interrupt) -> None:
        self.flow, self.client, self.sent, self.notice = flow, client, sent, notice
        self.id = interrupt_id(notice.token)
        self.url = f"/api/interrupts/{self.id}/resume"

    async def post(self, body: str | bytes, **headers: str) -> Any:
        return await self.client.post(self.url, data=body, headers={**ACTION, **headers})


ParkOne = Callable[..., Awaitable[Parked]]


@pytest.fixture
def park_one(client_for: Any, flows: list[PenguiFlow]) -> ParkOne:
    async def make(*, auth: Any = None, **flow_kwargs: Any) -> Parked:
        flow = asking_flow(**flow_kwargs)
        client = await client_for(create_inspector_app(flow, auth=auth, refresh_s=0.01))
        flow.run()
        flows.append(flow)
        if flow_kwargs.get("durable"):
            await flow.recover()
        sent = Message(payload=1, headers=Headers(tenant="t"))
        await flow.emit(sent)
        notice = await fetch(flow)
        assert isinstance(notice, Interrupt)
        return Parked(flow, client, sent, notice)

    return make


async def test_the_state_lists_a_parked_trace_without_its_token(park_one: ParkOne) -> None:
    parked = await park_one()
    response = await parked.client.get("/api/state")
    text = await response.text()
    assert parked.notice.token not in text
    state = json.loads(text)
    (row,) = state["interrupts"]
    assert row == {
        "id": parked.id,
        "trace_id": parked.sent.trace_id,
        "node": "ask",
        "payload": json.dumps(QUESTION, indent=1),
        "since": hosting.parked_interrupts(parked.flow)[0].since,
    }
    statuses = {t["trace_id"]: t["status"] for t in state["traces"]}
    assert statuses[parked.sent.trace_id] == "parked"
    timeline = await (await parked.client.get(f"/api/traces/{parked.sent.trace_id}")).json()
    assert timeline["status"] == "parked"


async def test_the_stream_sends_the_parked_traces_first(park_one: ParkOne) -> None:
    parked = await park_one()
    response = await parked.client.get("/api/stream")
    async with asyncio.timeout(WAIT_S):
        assert await response.content.readline() == b"event: state\n"
        data = await response.content.readline()
    assert parked.notice.token.encode() not in data
    state = json.loads(data.decode().removeprefix("data: "))
    assert [row["id"] for row in state["interrupts"]] == [parked.id]
    response.close()


async def test_resume_ends_the_trace_with_the_json_value(park_one: ParkOne) -> None:
    parked = await park_one()
    response = await parked.post('{"approved": true}', **{"Content-Type": "application/json"})
    assert (response.status, await response.json()) == (200, {"resumed": True})
    final = await fetch(parked.flow)
    assert (final.trace_id, final.payload) == (parked.sent.trace_id, [1, {"approved": True}])
    state = await (await parked.client.get("/api/state")).json()
    assert state["interrupts"] == []


async def test_a_second_resume_is_refused(park_one: ParkOne) -> None:
    parked = await park_one()
    assert (await parked.post('"yes"')).status == 200
    again = await parked.post('"again"')
    assert again.status == 404
    assert "error" in await again.json()
    assert (await fetch(parked.flow)).payload == [1, "yes"]


async def test_resume_needs_the_action_header(park_one: ParkOne) -> None:
    parked = await park_one()
    response = await parked.client.post(parked.url, data='"yes"')
    assert response.status == 403
    assert len(hosting.parked_interrupts(parked.flow)) == 1


@pytest.mark.parametrize("is_async", [False, True], ids=["sync-hook", "async-hook"])
async def test_resume_passes_the_auth_hook(park_one: ParkOne, is_async: bool) -> None:
    allowed = {"yes": False}

    def sync_auth(request: Any) -> bool:
        return allowed["yes"]

    async def async_auth(request: Any) -> bool:
        return allowed["yes"]

    parked = await park_one(auth=async_auth if is_async else sync_auth)
    refused = await parked.post('"yes"')
    assert (refused.status, await refused.json()) == (401, {"error": "unauthorized"})
    assert len(hosting.parked_interrupts(parked.flow)) == 1
    allowed["yes"] = True
    assert (await parked.post('"yes"')).status == 200
    assert (await fetch(parked.flow)).payload == [1, "yes"]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="broken"),
        pytest.param(b"\xff", id="not-utf8"),
    ],
)
async def test_a_body_that_is_not_json_is_a_400_and_the_trace_still_waits(
    park_one: ParkOne, body: bytes
) -> None:
    parked = await park_one()
    response = await parked.post(body)
    assert response.status == 400
    assert "JSON" in (await response.json())["error"]
    assert len(hosting.parked_interrupts(parked.flow)) == 1


async def test_a_body_in_a_charset_python_does_not_know_is_read_as_utf8(
    park_one: ParkOne,
) -> None:
    parked = await park_one()
    response = await parked.post('"yes"', **{"Content-Type": "application/json; charset=nope"})
    assert response.status == 200
    assert (await fetch(parked.flow)).payload == [1, "yes"]


async def test_a_cancelled_parked_trace_cannot_be_resumed(park_one: ParkOne) -> None:
    parked = await park_one()
    url = f"/api/traces/{parked.sent.trace_id}/cancel"
    cancelled = await parked.client.post(url, headers=ACTION)
    assert await cancelled.json() == {"cancelled": True}
    state = await (await parked.client.get("/api/state")).json()
    assert state["interrupts"] == []
    assert (await parked.post('"late"')).status == 404


async def test_an_unknown_interrupt_is_a_404(park_one: ParkOne) -> None:
    parked = await park_one()
    response = await parked.client.post(
        f"/api/interrupts/{parked.notice.token}/resume", data="1", headers=ACTION
    )
    assert response.status == 404  # the token itself is not an id
    assert len(hosting.parked_interrupts(parked.flow)) == 1


async def test_resume_on_a_flow_that_is_not_running_is_a_conflict(client_for: Any) -> None:
    client = await client_for(create_inspector_app(asking_flow()))
    response = await client.post(f"/api/interrupts/{'0' * 24}/resume", data="1", headers=ACTION)
    assert response.status == 409


class SlowJournal(InMemoryJournal):
    """``resume`` waits for ``release``; ``fail`` makes the next one fail (nothing stored)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.fail = False

    async def resume(self, token: str, value: Any) -> Any:
        self.entered.set()
        await self.release.wait()
        if self.fail:
            self.fail = False
            raise JournalError("the disk is full")
        return await super().resume(token, value)


def durable_store(journal: InMemoryJournal) -> InMemoryStateStore:
    store = InMemoryStateStore()
    store.journal = journal  # type: ignore[attr-defined]
    return store


async def test_a_resume_under_way_refuses_a_second_one(park_one: ParkOne) -> None:
    journal = SlowJournal()
    parked = await park_one(state_store=durable_store(journal), durable=True)
    first = asyncio.create_task(parked.post('"first"'))
    try:
        async with asyncio.timeout(WAIT_S):
            await journal.entered.wait()
        second = await parked.post('"second"')
        assert second.status == 409
    finally:
        journal.release.set()
        async with asyncio.timeout(WAIT_S):
            response = await first
    assert response.status == 200
    assert (await fetch(parked.flow)).payload == [1, "first"]


async def test_a_journal_failure_is_a_503_and_a_retry_resumes(park_one: ParkOne) -> None:
    journal = SlowJournal()
    journal.release.set()
    journal.fail = True
    parked = await park_one(state_store=durable_store(journal), durable=True)
    failed = await parked.post('"yes"')
    assert failed.status == 503
    assert parked.notice.token not in await failed.text()
    assert (await parked.post('"yes"')).status == 200
    assert (await fetch(parked.flow)).payload == [1, "yes"]


# -- the payload text --------------------------------------------------------------------
class Draft(BaseModel):
    title: str


class Cycle:
    def __repr__(self) -> str:
        return "Cycle()"


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        pytest.param({"a": [1, "<b>"]}, '{\n "a": [\n  1,\n  "<b>"\n ]\n}', id="json"),
        pytest.param(Draft(title="t"), '{\n "title": "t"\n}', id="pydantic"),
        pytest.param(Cycle(), '"Cycle()"', id="repr"),
        pytest.param({(1, 2): "tuple key"}, json.dumps(repr({(1, 2): "tuple key"})), id="bad-key"),
    ],
)
def test_payload_text_is_json(payload: Any, text: str) -> None:
    assert payload_text(payload) == text


def test_payload_text_is_cut_at_its_limit() -> None:
    assert payload_text("x" * 50, limit=10) == '"xxxxxxxxx…'


def test_a_pydantic_dump_that_fails_shows_the_repr() -> None:
    class Broken(BaseModel):
        def model_dump(self, **kwargs: Any) -> Any:
            raise ValueError("no")

    assert payload_text(Broken()) == json.dumps(repr(Broken()))


# -- over a store's journal (penguiflow-admin inspect) -----------------------------------
async def test_the_store_inspector_lists_parked_traces_read_only(tmp_path: Path) -> None:
    store = SQLiteStateStore(str(tmp_path / "runs.db"))
    try:
        flow = asking_flow(state_store=store, durable=True)
        flow.run()
        await flow.recover()
        sent = Message(payload=1, headers=Headers(tenant="t"))
        try:
            await flow.emit(sent)
            notice = await fetch(flow)
        finally:
            await flow.stop()
        app = create_store_inspector_app(store)
        from aiohttp.test_utils import TestClient, TestServer

        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            text = await (await client.get("/api/state")).text()
            assert notice.token not in text
            state = json.loads(text)
            (row,) = state["interrupts"]
            assert row == {
                "id": interrupt_id(notice.token),
                "trace_id": sent.trace_id,
                "node": "ask",
                "payload": json.dumps(QUESTION, indent=1),
                "since": None,
            }
            statuses = {t["trace_id"]: t["status"] for t in state["traces"]}
            assert statuses[sent.trace_id] == "parked"
            refused = await client.post(
                f"/api/interrupts/{row['id']}/resume", data="1", headers=ACTION
            )
            assert refused.status == 405
    finally:
        await store.close()


async def test_a_store_without_a_journal_lists_no_parked_traces(client_for: Any) -> None:
    client = await client_for(create_store_inspector_app(InMemoryStateStore()))
    state = await (await client.get("/api/state")).json()
    assert state["interrupts"] == []


class UnreadablePayloads(InMemoryJournal):
    """Loads interrupts with a payload naming a type this process cannot import."""

    missing = '{"$model":"nowhere.at_all:Missing","$fields":{}}'

    async def load(self) -> Any:
        snapshot = await super().load()
        interrupts = tuple(replace(r, payload=self.missing) for r in snapshot.interrupts)
        return replace(snapshot, interrupts=interrupts)


async def park_in(journal: InMemoryJournal, *, resume_with: Any = None) -> Interrupt:
    """Park one trace of a durable flow on ``journal`` (and resume it, if asked), then stop."""
    never = asyncio.Event()

    async def ask_then_wait(msg: Message, ctx: Any) -> Message:
        await ctx.interrupt(QUESTION)
        await never.wait()  # a resumed value is journaled; the step never commits
        return msg

    flow = create(
        Node(ask_then_wait, name="ask", policy=NodePolicy(validate="none")).to(),
        state_store=durable_store(journal),
        durable=True,
    )
    flow.run()
    try:
        await flow.recover()
        await flow.emit(Message(payload=1, headers=Headers(tenant="t")))
        notice = await fetch(flow)
        if resume_with is not None:
            async with asyncio.timeout(WAIT_S):
                await flow.resume(notice.token, resume_with)
    finally:
        await flow.stop()
    assert isinstance(notice, Interrupt)
    return notice


async def test_a_stored_payload_that_cannot_be_decoded_is_shown_as_its_text() -> None:
    journal = UnreadablePayloads()
    notice = await park_in(journal)
    (row,) = await stored_parked(durable_store(journal))
    assert (row["id"], row["payload"]) == (interrupt_id(notice.token), journal.missing)


async def test_a_stored_interrupt_already_resumed_is_not_listed() -> None:
    journal = InMemoryJournal()
    await park_in(journal, resume_with="yes")
    assert await stored_parked(durable_store(journal)) == []
