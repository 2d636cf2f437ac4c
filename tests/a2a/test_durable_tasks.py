"""Durable A2A tasks: a server on a durable flow keeps its tasks across a restart.

Server A serves a durable flow on a SQLite file (or Redis, when
``PENGUIFLOW_TEST_REDIS_URL`` is set) and is stopped while its tasks are
unfinished: the app shuts down without draining (a durable task's runner
writes nothing when the server stops, so what the file holds is what a crash
would leave). Server B on the same store answers for the tasks created
before, carries an unfinished one to ``completed`` after ``recover()`` and
resumes an ``input-required`` one. Driven by the official a2a-sdk client,
A2A 1.0 and 0.3; callers are told apart by an ``X-User`` header.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.types.a2a_pb2 import (
    ROLE_USER,
    TASK_STATE_COMPLETED,
    TASK_STATE_FAILED,
    TASK_STATE_INPUT_REQUIRED,
    TASK_STATE_WORKING,
    GetTaskRequest,
    Message,
    Part,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
)
from a2a.utils.errors import InternalError, TaskNotFoundError
from a2a_support import AGENT_URL, Gates, build_flow, make_card
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Value

from penguiflow.errors import StateStoreError
from penguiflow.stores import SQLiteStateStore
from penguiflow_a2a import A2AServerAdapter, create_a2a_app
from penguiflow_a2a.tasks import RESTART_LOST_TEXT

VERSIONS = [pytest.param("1.0", id="a2a-1.0"), pytest.param("0.3", id="a2a-0.3")]
ASK = {"op": "ask", "question": {"approve": "order-17"}}
REDIS_URL = os.environ.get("PENGUIFLOW_TEST_REDIS_URL")
STORES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "redis",
        id="redis",
        marks=pytest.mark.skipif(REDIS_URL is None, reason="PENGUIFLOW_TEST_REDIS_URL not set"),
    ),
]


def by_user(request: web.Request) -> str | None:
    return request.headers.get("X-User")


class Server:
    """One server process, in-process: a durable flow on the shared store, behind aiohttp."""

    def __init__(self, make_store: Callable[[], Any], *, auth: Any = by_user) -> None:
        self.gates = Gates()
        self.store = make_store()
        self.adapter = A2AServerAdapter(
            build_flow(self.gates, state_store=self.store, durable=True),
            agent_card=make_card(),
            agent_url=AGENT_URL,
        )
        self.client: TestClient[Any, Any] = TestClient(
            TestServer(create_a2a_app(self.adapter, auth=auth), host="127.0.0.1")
        )
        self.http = httpx.AsyncClient(timeout=30)
        self.sdk_clients: list[Client] = []
        self.stopped = False

    async def start(self) -> Server:
        async with asyncio.timeout(10):
            await self.client.start_server()
        return self

    async def sdk(
        self, version: str, *, user: str = "alice", streaming: bool = False, polling: bool = False
    ) -> Client:
        http = httpx.AsyncClient(timeout=30, headers={"X-User": user})
        async with asyncio.timeout(5):
            card = await A2ACardResolver(http, str(self.client.make_url("/"))).get_agent_card()
        if version == "0.3":
            keep = [i for i in card.supported_interfaces if i.protocol_version == "0.3"]
            del card.supported_interfaces[:]
            card.supported_interfaces.extend(keep)
        config = ClientConfig(httpx_client=http, streaming=streaming, polling=polling)
        sdk_client = ClientFactory(config).create(card)
        self.sdk_clients.append(sdk_client)
        return sdk_client

    async def stop(self) -> None:
        """Stop the server without draining its tasks (they stay unfinished in the store)."""
        self.stopped = True
        for sdk_client in self.sdk_clients:
            await sdk_client.close()
        async with asyncio.timeout(10):
            await self.client.close()
        await self.http.aclose()
        await self.store.close()


@pytest.fixture(params=STORES)
async def servers(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """``await servers()`` -> a started ``Server`` on the one store of this test."""
    made: list[Server] = []
    namespace = f"a2a-durable-{uuid.uuid4().hex}"

    def make_store() -> Any:
        if request.param == "sqlite":
            return SQLiteStateStore(tmp_path / "tasks.db")
        from penguiflow.distributed import RedisStateStore

        return RedisStateStore(REDIS_URL or "", namespace=namespace)

    async def factory(*, auth: Any = by_user) -> Server:
        server = Server(make_store, auth=auth)
        made.append(server)
        return await server.start()

    yield factory
    for server in made:
        if not server.stopped:
            await server.stop()
    if request.param == "redis":
        from penguiflow.distributed import RedisStateStore

        async with RedisStateStore(REDIS_URL or "", namespace=namespace) as cleaner:
            await cleaner.clear()


def send(data: Any, *, task_id: str | None = None, message_id: str = "m1") -> SendMessageRequest:
    message = Message(
        message_id=message_id,
        role=ROLE_USER,
        parts=[Part(data=ParseDict(data, Value()))],
        metadata={"headers": {"tenant": "acme"}},
    )
    if task_id is not None:
        message.task_id = task_id
    return SendMessageRequest(message=message)


async def responses(client: Client, request: SendMessageRequest) -> list[StreamResponse]:
    async with asyncio.timeout(10):
        return [event async for event in client.send_message(request)]


def data_of(part: Any) -> Any:
    return MessageToDict(part)["data"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_get_task_returns_a_task_finished_before_the_restart(
    servers: Any, version: str
) -> None:
    a = await servers()
    done = (await responses(await a.sdk(version), send({"value": 17})))[-1].task
    assert done.status.state == TASK_STATE_COMPLETED
    await a.stop()
    b = await servers()
    async with asyncio.timeout(5):
        fetched = await (await b.sdk(version)).get_task(GetTaskRequest(id=done.id))
    assert fetched.status.state == TASK_STATE_COMPLETED
    assert data_of(fetched.artifacts[-1].parts[0]) == {"echo": 17}
    assert [m.message_id for m in fetched.history][:1] == ["m1"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_unfinished_task_completes_after_the_restart(servers: Any, version: str) -> None:
    a = await servers()
    hang = {"op": "hang", "gate": "g"}
    running = (await responses(await a.sdk(version, polling=True), send(hang)))[0].task
    await a.gates.wait_entered("g")
    await a.stop()
    b = await servers()
    await b.gates.wait_entered("g")  # recovered: the node runs again from its first line
    watcher = await b.sdk(version, streaming=True)
    async with asyncio.timeout(5):
        now = await (await b.sdk(version)).get_task(GetTaskRequest(id=running.id))
    assert now.status.state == TASK_STATE_WORKING
    events = watcher.subscribe(SubscribeToTaskRequest(id=running.id))
    async with asyncio.timeout(10):
        first = await anext(events)
        b.gates.open("g")
        seen = [first, *[event async for event in events]]
    assert seen[-1].status_update.status.state == TASK_STATE_COMPLETED
    async with asyncio.timeout(5):
        fetched = await (await b.sdk(version)).get_task(GetTaskRequest(id=running.id))
    assert fetched.status.state == TASK_STATE_COMPLETED
    assert data_of(fetched.artifacts[-1].parts[0]) == {"released": "g"}


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_input_required_task_is_resumed_after_the_restart(
    servers: Any, version: str
) -> None:
    a = await servers()
    asked = (await responses(await a.sdk(version), send(ASK)))[-1].task
    assert asked.status.state == TASK_STATE_INPUT_REQUIRED
    await a.stop()
    b = await servers()
    sdk_client = await b.sdk(version)
    async with asyncio.timeout(5):
        waiting = await sdk_client.get_task(GetTaskRequest(id=asked.id))
    assert waiting.status.state == TASK_STATE_INPUT_REQUIRED
    assert data_of(waiting.status.message.parts[0]) == {"approve": "order-17"}
    answer = send({"approved": True}, task_id=asked.id, message_id="m2")
    done = (await responses(sdk_client, answer))[-1].task
    assert done.status.state == TASK_STATE_COMPLETED
    assert data_of(done.artifacts[-1].parts[0]) == {"answer": {"approved": True}}


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_task_of_another_principal_is_not_found_after_the_restart(
    servers: Any, version: str
) -> None:
    a = await servers()
    done = (await responses(await a.sdk(version, user="alice"), send({"value": 1})))[-1].task
    await a.stop()
    b = await servers()
    with pytest.raises(TaskNotFoundError):
        async with asyncio.timeout(5):
            await (await b.sdk(version, user="bob")).get_task(GetTaskRequest(id=done.id))
    async with asyncio.timeout(5):
        mine = await (await b.sdk(version, user="alice")).get_task(GetTaskRequest(id=done.id))
    assert mine.status.state == TASK_STATE_COMPLETED


async def test_list_tasks_lists_each_principals_tasks_from_before_the_restart(
    servers: Any,
) -> None:
    from a2a.types.a2a_pb2 import ListTasksRequest

    a = await servers()
    mine = (await responses(await a.sdk("1.0", user="alice"), send({"value": 1})))[-1].task
    await responses(await a.sdk("1.0", user="bob"), send({"value": 2}))
    await a.stop()
    b = await servers()
    async with asyncio.timeout(5):
        listed = await (await b.sdk("1.0", user="alice")).list_tasks(ListTasksRequest(page_size=10))
    assert [task.id for task in listed.tasks] == [mine.id]


async def test_a_task_of_another_principal_cannot_be_resumed_after_the_restart(
    servers: Any,
) -> None:
    a = await servers()
    asked = (await responses(await a.sdk("1.0", user="alice"), send(ASK)))[-1].task
    await a.stop()
    b = await servers()
    with pytest.raises(TaskNotFoundError):
        await responses(
            await b.sdk("1.0", user="bob"), send("yes", task_id=asked.id, message_id="m2")
        )
    async with asyncio.timeout(5):
        still = await (await b.sdk("1.0", user="alice")).get_task(GetTaskRequest(id=asked.id))
    assert still.status.state == TASK_STATE_INPUT_REQUIRED


async def test_a_principal_without_a_stable_form_gets_a_clear_error(servers: Any) -> None:
    a = await servers(auth=lambda request: 1.5)
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "SendMessage",
        "params": {"message": {"messageId": "m1", "role": "ROLE_USER", "parts": [{"text": "x"}]}},
    }
    async with asyncio.timeout(5):
        reply = await (await a.client.post("/", json=body, headers={"A2A-Version": "1.0"})).json()
    assert reply["error"]["code"] == -32603
    assert "str, int or tuples of them" in reply["error"]["message"]


class RefusingStore(SQLiteStateStore):
    """A store whose disk is full for A2A task records."""

    async def save_a2a_task(self, task_id: str, record: Any) -> None:
        raise StateStoreError("disk full", path=self.path)


async def test_a_task_the_store_refuses_is_an_internal_error(tmp_path: Path) -> None:
    server = await Server(lambda: RefusingStore(tmp_path / "full.db")).start()
    try:
        with pytest.raises(InternalError):
            await responses(await server.sdk("1.0"), send({"value": 1}))
    finally:
        await server.stop()


class LosingStore(SQLiteStateStore):
    """A store that fails to write a task's final state: the process "dies" first."""

    async def save_a2a_task(self, task_id: str, record: Any) -> None:
        if record["state"] in ("completed", "failed"):
            raise StateStoreError("killed before the write", path=self.path)
        await super().save_a2a_task(task_id, record)


async def test_a_result_fetched_but_not_written_before_a_crash_fails_the_task(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lost.db"
    a = await Server(lambda: LosingStore(path)).start()
    sent = (await responses(await a.sdk("1.0"), send({"value": 1})))[-1].task
    assert sent.status.state == TASK_STATE_WORKING  # the final write never happened
    await a.stop()
    b = await Server(lambda: SQLiteStateStore(path)).start()
    try:
        async with asyncio.timeout(5):
            fetched = await (await b.sdk("1.0")).get_task(GetTaskRequest(id=sent.id))
        assert fetched.status.state == TASK_STATE_FAILED
        assert fetched.status.message.parts[0].text == RESTART_LOST_TEXT
    finally:
        await b.stop()
