"""Interoperability: the official a2a-sdk client drives our server, over A2A 1.0 and 0.3."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.types.a2a_pb2 import (
    ROLE_USER,
    TASK_STATE_CANCELED,
    TASK_STATE_COMPLETED,
    TASK_STATE_FAILED,
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    SendMessageRequest,
    StreamResponse,
)
from a2a.utils.errors import TaskNotCancelableError, TaskNotFoundError
from a2a_support import Gates
from aiohttp.test_utils import TestClient
from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.struct_pb2 import Value

VERSIONS = [pytest.param("1.0", id="a2a-1.0"), pytest.param("0.3", id="a2a-0.3")]

SdkFactory = Callable[..., Any]


@pytest.fixture
async def sdk(
    client: TestClient[Any, Any], request: pytest.FixtureRequest
) -> AsyncIterator[SdkFactory]:
    """``await sdk(version, streaming=..., polling=...)`` -> an official SDK client."""
    http = httpx.AsyncClient(timeout=30)
    made: list[Client] = []

    async def factory(version: str, *, streaming: bool = False, polling: bool = False) -> Client:
        async with asyncio.timeout(5):
            card = await A2ACardResolver(http, str(client.make_url("/"))).get_agent_card()
        if version == "0.3":
            # Leave only the 0.3 interface: the SDK then speaks its 0.3 compat transport.
            keep = [i for i in card.supported_interfaces if i.protocol_version == "0.3"]
            del card.supported_interfaces[:]
            card.supported_interfaces.extend(keep)
        config = ClientConfig(httpx_client=http, streaming=streaming, polling=polling)
        sdk_client = ClientFactory(config).create(card)
        made.append(sdk_client)
        return sdk_client

    yield factory
    for sdk_client in made:
        await sdk_client.close()
    await http.aclose()


def send_request(data: dict[str, Any]) -> SendMessageRequest:
    message = Message(
        message_id="m1",
        role=ROLE_USER,
        parts=[Part(data=ParseDict(data, Value()))],
        metadata={"headers": {"tenant": "acme"}},
    )
    return SendMessageRequest(message=message)


async def responses(client: Client, data: dict[str, Any]) -> list[StreamResponse]:
    async with asyncio.timeout(10):
        return [event async for event in client.send_message(send_request(data))]


def result_data(task: Any) -> Any:
    return MessageToDict(task.artifacts[-1].parts[0])["data"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_sdk_resolves_the_card(client: TestClient[Any, Any], version: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        card = await A2ACardResolver(http, str(client.make_url("/"))).get_agent_card()
    assert card.name == "Penguin Agent"
    assert card.capabilities.streaming
    assert {i.protocol_version for i in card.supported_interfaces} >= {"1.0", "0.3"}


@pytest.mark.parametrize("version", VERSIONS)
async def test_sdk_send_returns_completed_task(sdk: SdkFactory, version: str) -> None:
    events = await responses(await sdk(version), {"value": 7})
    assert len(events) == 1
    task = events[0].task
    assert task.status.state == TASK_STATE_COMPLETED
    assert result_data(task) == {"echo": 7.0}


@pytest.mark.parametrize("version", VERSIONS)
async def test_sdk_send_of_failing_flow_gives_failed_task(sdk: SdkFactory, version: str) -> None:
    events = await responses(await sdk(version), {"op": "fail"})
    assert events[0].task.status.state == TASK_STATE_FAILED


@pytest.mark.parametrize("version", VERSIONS)
async def test_sdk_stream_ends_with_completed_status(sdk: SdkFactory, version: str) -> None:
    events = await responses(
        await sdk(version, streaming=True), {"op": "chunks", "texts": ["a", "b"]}
    )
    kinds = [event.WhichOneof("payload") for event in events]
    assert kinds[0] == "task"
    assert kinds[-1] == "status_update"
    assert events[-1].status_update.status.state == TASK_STATE_COMPLETED
    texts = [
        part.text
        for event in events
        if event.HasField("artifact_update")
        for part in event.artifact_update.artifact.parts
        if part.text
    ]
    assert texts == ["a", "b"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_sdk_get_task_after_send(sdk: SdkFactory, version: str) -> None:
    sdk_client = await sdk(version)
    sent = (await responses(sdk_client, {"value": 1}))[0].task
    async with asyncio.timeout(5):
        fetched = await sdk_client.get_task(GetTaskRequest(id=sent.id))
    assert fetched.id == sent.id
    assert fetched.status.state == TASK_STATE_COMPLETED


@pytest.mark.parametrize("version", VERSIONS)
async def test_sdk_cancel_running_task(sdk: SdkFactory, gates: Gates, version: str) -> None:
    sdk_client = await sdk(version, polling=True)  # polling: the send returns at once
    running = (await responses(sdk_client, {"op": "hang", "gate": "g"}))[0].task
    await gates.wait_entered("g")
    async with asyncio.timeout(5):
        cancelled = await sdk_client.cancel_task(CancelTaskRequest(id=running.id))
    assert cancelled.status.state == TASK_STATE_CANCELED


@pytest.mark.parametrize("version", VERSIONS)
async def test_sdk_get_unknown_task_raises_task_not_found(sdk: SdkFactory, version: str) -> None:
    sdk_client = await sdk(version)
    with pytest.raises(TaskNotFoundError):
        async with asyncio.timeout(5):
            await sdk_client.get_task(GetTaskRequest(id="nope"))


@pytest.mark.parametrize("version", VERSIONS)
async def test_sdk_cancel_finished_task_raises_not_cancelable(
    sdk: SdkFactory, version: str
) -> None:
    sdk_client = await sdk(version)
    sent = (await responses(sdk_client, {"value": 1}))[0].task
    with pytest.raises(TaskNotCancelableError):
        async with asyncio.timeout(5):
            await sdk_client.cancel_task(CancelTaskRequest(id=sent.id))


async def test_sdk_list_tasks_1_0(sdk: SdkFactory) -> None:
    from a2a.types.a2a_pb2 import ListTasksRequest

    sdk_client = await sdk("1.0")
    sent = (await responses(sdk_client, {"value": 1}))[0].task
    async with asyncio.timeout(5):
        listed = await sdk_client.list_tasks(ListTasksRequest(page_size=10))
    assert [task.id for task in listed.tasks] == [sent.id]
    assert listed.total_size == 1
