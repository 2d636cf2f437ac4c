"""ctx.interrupt over A2A: the task goes input-required; a message naming it resumes it.

Driven by the official a2a-sdk client (A2A 1.0 and 0.3), plus the REST binding
and per-principal isolation over raw HTTP.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.types.a2a_pb2 import (
    ROLE_USER,
    TASK_STATE_CANCELED,
    TASK_STATE_COMPLETED,
    TASK_STATE_INPUT_REQUIRED,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    SendMessageRequest,
    StreamResponse,
)
from aiohttp import web
from aiohttp.test_utils import TestClient
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Value

from penguiflow_a2a import A2AServerAdapter

VERSIONS = [pytest.param("1.0", id="a2a-1.0"), pytest.param("0.3", id="a2a-0.3")]
ASK = {"op": "ask", "question": {"approve": "order-17"}}

SdkFactory = Callable[..., Any]


@pytest.fixture
async def sdk(client: TestClient[Any, Any]) -> AsyncIterator[SdkFactory]:
    """``await sdk(version, streaming=...)`` -> an official SDK client."""
    http = httpx.AsyncClient(timeout=30)
    made: list[Client] = []

    async def factory(version: str, *, streaming: bool = False) -> Client:
        async with asyncio.timeout(5):
            card = await A2ACardResolver(http, str(client.make_url("/"))).get_agent_card()
        if version == "0.3":
            keep = [i for i in card.supported_interfaces if i.protocol_version == "0.3"]
            del card.supported_interfaces[:]
            card.supported_interfaces.extend(keep)
        sdk_client = ClientFactory(ClientConfig(httpx_client=http, streaming=streaming)).create(
            card
        )
        made.append(sdk_client)
        return sdk_client

    yield factory
    for sdk_client in made:
        await sdk_client.close()
    await http.aclose()


def request(data: Any, *, task_id: str | None = None, message_id: str = "m1") -> SendMessageRequest:
    message = Message(
        message_id=message_id,
        role=ROLE_USER,
        parts=[Part(data=ParseDict(data, Value()))],
        metadata={"headers": {"tenant": "acme"}},
    )
    if task_id is not None:
        message.task_id = task_id
    return SendMessageRequest(message=message)


async def responses(client: Client, send: SendMessageRequest) -> list[StreamResponse]:
    async with asyncio.timeout(10):
        return [event async for event in client.send_message(send)]


def status_data(status: Any) -> Any:
    return MessageToDict(status.message.parts[0])["data"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_send_returns_an_input_required_task_with_the_payload(
    sdk: SdkFactory, version: str
) -> None:
    events = await responses(await sdk(version), request(ASK))
    task = events[-1].task
    assert task.status.state == TASK_STATE_INPUT_REQUIRED
    assert status_data(task.status) == {"approve": "order-17"}


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_message_with_the_task_id_resumes_it_to_completed(
    sdk: SdkFactory, version: str
) -> None:
    sdk_client = await sdk(version)
    asked = (await responses(sdk_client, request(ASK)))[-1].task
    answer = request({"approved": True}, task_id=asked.id, message_id="m2")
    done = (await responses(sdk_client, answer))[-1].task
    assert done.id == asked.id
    assert done.status.state == TASK_STATE_COMPLETED
    assert MessageToDict(done.artifacts[-1].parts[0])["data"] == {"answer": {"approved": True}}
    async with asyncio.timeout(5):
        fetched = await sdk_client.get_task(GetTaskRequest(id=asked.id))
    assert fetched.status.state == TASK_STATE_COMPLETED


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_stream_ends_with_the_input_required_update_and_resumes_streaming(
    sdk: SdkFactory, version: str
) -> None:
    sdk_client = await sdk(version, streaming=True)
    first = await responses(sdk_client, request(ASK))
    assert first[0].WhichOneof("payload") == "task"
    last = first[-1].status_update
    assert last.status.state == TASK_STATE_INPUT_REQUIRED
    assert status_data(last.status) == {"approve": "order-17"}
    task_id = first[0].task.id
    second = await responses(sdk_client, request("yes", task_id=task_id, message_id="m2"))
    assert second[0].task.id == task_id
    assert second[-1].status_update.status.state == TASK_STATE_COMPLETED


@pytest.mark.parametrize("version", VERSIONS)
async def test_an_input_required_task_can_be_cancelled(sdk: SdkFactory, version: str) -> None:
    sdk_client = await sdk(version)
    asked = (await responses(sdk_client, request(ASK)))[-1].task
    async with asyncio.timeout(5):
        cancelled = await sdk_client.cancel_task(CancelTaskRequest(id=asked.id))
    assert cancelled.status.state == TASK_STATE_CANCELED


# -- REST and principals, over raw HTTP --------------------------------------------------

REST_ASK = {
    "messageId": "m1",
    "role": "ROLE_USER",
    "parts": [{"data": ASK}],
    "metadata": {"headers": {"tenant": "acme"}},
}


def answer(task_id: str, text: str = "ok") -> dict[str, Any]:
    return {"messageId": "m2", "role": "ROLE_USER", "parts": [{"text": text}], "taskId": task_id}


async def test_rest_send_resumes_an_input_required_task(client: TestClient[Any, Any]) -> None:
    async with asyncio.timeout(10):
        asked = (await (await client.post("/message:send", json={"message": REST_ASK})).json())[
            "task"
        ]
        assert asked["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
        reply = await client.post("/message:send", json={"message": answer(asked["id"])})
        done = (await reply.json())["task"]
    assert done["status"]["state"] == "TASK_STATE_COMPLETED"
    assert done["artifacts"][-1]["parts"] == [{"data": {"answer": "ok"}}]


async def test_rest_stream_ends_after_the_input_required_update(
    client: TestClient[Any, Any],
) -> None:
    async with asyncio.timeout(10):
        response = await client.post("/message:stream", json={"message": REST_ASK})
        text = (await response.read()).decode()
    events = [json.loads(f.removeprefix("data: ")) for f in text.split("\n\n") if f]
    assert "task" in events[0]
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"


async def test_a_second_answer_is_refused_once_the_task_resumed(
    client: TestClient[Any, Any],
) -> None:
    async with asyncio.timeout(10):
        asked = (await (await client.post("/message:send", json={"message": REST_ASK})).json())[
            "task"
        ]
        await client.post("/message:send", json={"message": answer(asked["id"])})
        again = await client.post("/message:send", json={"message": answer(asked["id"])})
    assert again.status == 400


def by_user(request: web.Request) -> str | None:
    return request.headers.get("X-User")


@pytest.mark.parametrize("method", ["SendMessage", "message/send"])
async def test_a_task_of_another_principal_cannot_be_resumed(
    make_adapter: Callable[..., A2AServerAdapter], make_client: Callable[..., Any], method: str
) -> None:
    served = await make_client(make_adapter(emit_errors_to_rookery=True), auth=by_user)

    async def rpc(name: str, params: Any, user: str) -> Any:
        body = {"jsonrpc": "2.0", "id": 1, "method": name, "params": params}
        async with asyncio.timeout(10):
            return await (await served.post("/", json=body, headers={"X-User": user})).json()

    asked = (await rpc("SendMessage", {"message": REST_ASK}, "alice"))["result"]["task"]
    if method == "SendMessage":
        resume = answer(asked["id"])
    else:
        resume = {"kind": "message", **answer(asked["id"]), "role": "user"}
        resume["parts"] = [{"kind": "text", "text": "ok"}]
    other = await rpc(method, {"message": resume}, "bob")
    assert other["error"]["code"] == -32001  # task not found
    still = await rpc("GetTask", {"id": asked["id"]}, "alice")
    assert still["result"]["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    mine = await rpc(method, {"message": resume}, "alice")
    assert "error" not in mine


# -- the 2.2.5 routes cannot answer an interrupt: the trace is cancelled ----------------

LEGACY_ASK = {"payload": ASK, "headers": {"tenant": "acme"}}


async def test_legacy_send_of_an_interrupting_flow_fails_with_input_required(
    client: TestClient[Any, Any],
) -> None:
    async with asyncio.timeout(10):
        reply = await (await client.post("/message/send", json=LEGACY_ASK)).json()
    assert reply["status"] == "failed"
    assert reply["error"]["code"] == "INPUT_REQUIRED"
    assert reply["error"]["trace_id"] == reply["traceId"]


async def test_legacy_stream_of_an_interrupting_flow_ends_with_an_error_event(
    client: TestClient[Any, Any],
) -> None:
    async with asyncio.timeout(10):
        text = (await (await client.post("/message/stream", json=LEGACY_ASK)).read()).decode()
    frames = [frame for frame in text.split("\n\n") if frame]
    assert frames[-2].startswith("event: error")
    assert "INPUT_REQUIRED" in frames[-2]
    assert frames[-1].startswith("event: done")
