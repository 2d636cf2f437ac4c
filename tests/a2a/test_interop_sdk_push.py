"""Interoperability of push notifications: the official a2a-sdk client registers a webhook.

The webhook is a local aiohttp receiver; its bodies are parsed with the SDK's own
types (a 1.0 ``StreamResponse``, a 0.3 ``Task``), as an SDK-based receiver would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, Client, ClientConfig, ClientFactory
from a2a.compat.v0_3 import types as types_v03
from a2a.types.a2a_pb2 import (
    ROLE_USER,
    TASK_STATE_COMPLETED,
    AuthenticationInfo,
    DeleteTaskPushNotificationConfigRequest,
    GetTaskPushNotificationConfigRequest,
    ListTaskPushNotificationConfigsRequest,
    Message,
    Part,
    SendMessageConfiguration,
    SendMessageRequest,
    StreamResponse,
    TaskPushNotificationConfig,
    TaskState,
)
from a2a.utils.errors import A2AError, InvalidParamsError
from a2a_support import Gates
from aiohttp.test_utils import TestClient
from google.protobuf.json_format import ParseDict
from google.protobuf.struct_pb2 import Value
from push_support import Received, Receiver

VERSIONS = [
    pytest.param("1.0", id="a2a-1.0"),
    pytest.param("0.3", id="a2a-0.3"),
    pytest.param("rest", id="a2a-1.0-http-json"),
]


@pytest.fixture
async def sdk(push_client: TestClient[Any, Any]) -> AsyncIterator[Callable[..., Any]]:
    """``await sdk(version)`` -> an official SDK client of the push-enabled server."""
    http = httpx.AsyncClient(timeout=30)
    made: list[Client] = []

    async def factory(version: str, **config: Any) -> Client:
        async with asyncio.timeout(5):
            card = await A2ACardResolver(http, str(push_client.make_url("/"))).get_agent_card()
        assert card.capabilities.push_notifications
        if version == "0.3":
            keep = [i for i in card.supported_interfaces if i.protocol_version == "0.3"]
        elif version == "rest":
            keep = [i for i in card.supported_interfaces if i.protocol_binding == "HTTP+JSON"]
        else:
            keep = [i for i in card.supported_interfaces if i.protocol_version == "1.0"][:1]
        del card.supported_interfaces[:]
        card.supported_interfaces.extend(keep)
        config.setdefault("streaming", False)
        if version == "rest":
            config["supported_protocol_bindings"] = ["HTTP+JSON"]
        sdk_client = ClientFactory(ClientConfig(httpx_client=http, **config)).create(card)
        made.append(sdk_client)
        return sdk_client

    yield factory
    for sdk_client in made:
        await sdk_client.close()
    await http.aclose()


def request(data: dict[str, Any], **configuration: Any) -> SendMessageRequest:
    message = Message(
        message_id="m1",
        role=ROLE_USER,
        parts=[Part(data=ParseDict(data, Value()))],
        metadata={"headers": {"tenant": "acme"}},
    )
    if configuration:
        return SendMessageRequest(
            message=message, configuration=SendMessageConfiguration(**configuration)
        )
    return SendMessageRequest(message=message)


def states(version: str, received: list[Received]) -> list[str]:
    """The task state each notification carries (``working``), parsed with the SDK's types."""
    out: list[str] = []
    for item in received:
        if version == "0.3":
            out.append(types_v03.Task.model_validate(item.body).status.state.value)
            continue
        event = ParseDict(item.body, StreamResponse())
        kind = event.WhichOneof("payload")
        if kind == "task":
            state = event.task.status.state
        elif kind == "status_update":
            state = event.status_update.status.state
        else:
            continue
        out.append(TaskState.Name(state).removeprefix("TASK_STATE_").lower())
    return out


async def start_hanging(client: Client, gates: Gates, gate: str) -> str:
    """Send a task that waits on ``gate`` without blocking; return its id."""
    async with asyncio.timeout(10):
        events = [
            e
            async for e in client.send_message(
                request({"op": "hang", "gate": gate}, return_immediately=True)
            )
        ]
    await gates.wait_entered(gate)
    return str(events[0].task.id)


async def final_states(version: str, receiver: Receiver) -> list[str]:
    """Notifications until one carries the final state; their states."""
    final = "completed"
    count = 1
    while True:
        got = await receiver.wait_for(count)
        seen = states(version, got)
        if seen and seen[-1] == final:
            return seen
        count += 1


@pytest.mark.parametrize("version", VERSIONS)
async def test_sdk_registered_webhook_sees_every_state_change_in_order(
    sdk: Callable[..., Any], gates: Gates, receiver: Receiver, version: str
) -> None:
    client = await sdk(version)
    task_id = await start_hanging(client, gates, "g")
    created = await client.create_task_push_notification_config(
        TaskPushNotificationConfig(task_id=task_id, id="hook", url=receiver.url, token="tok")
    )
    assert (created.task_id, created.id, created.url) == (task_id, "hook", receiver.url)
    await receiver.wait_for(1)  # the task as it is now, before it goes on
    gates.open("g")
    assert await final_states(version, receiver) == ["working", "completed"]
    assert all(r.headers["X-A2A-Notification-Token"] == "tok" for r in receiver.accepted)


@pytest.mark.parametrize("version", VERSIONS)
async def test_sdk_inline_config_notifies_from_submitted_to_completed(
    sdk: Callable[..., Any], receiver: Receiver, version: str
) -> None:
    push = TaskPushNotificationConfig(
        url=receiver.url,
        token="inline",
        authentication=AuthenticationInfo(scheme="Bearer", credentials="s3cret"),
    )
    client = await sdk(version, push_notification_config=push)
    async with asyncio.timeout(10):
        events = [e async for e in client.send_message(request({"value": 1}))]
    assert events[-1].task.status.state == TASK_STATE_COMPLETED
    assert await final_states(version, receiver) == ["submitted", "working", "completed"]
    assert receiver.accepted[0].headers["Authorization"] == "Bearer s3cret"
    assert receiver.accepted[0].headers["X-A2A-Notification-Token"] == "inline"


@pytest.mark.parametrize("version", VERSIONS)
async def test_sdk_gets_lists_and_deletes_configs(
    sdk: Callable[..., Any], gates: Gates, receiver: Receiver, version: str
) -> None:
    client = await sdk(version)
    task_id = await start_hanging(client, gates, "g")
    for config_id in ("a", "b"):
        await client.create_task_push_notification_config(
            TaskPushNotificationConfig(task_id=task_id, id=config_id, url=receiver.url)
        )
    got = await client.get_task_push_notification_config(
        GetTaskPushNotificationConfigRequest(task_id=task_id, id="b")
    )
    assert (got.id, got.url) == ("b", receiver.url)
    listed = await client.list_task_push_notification_configs(
        ListTaskPushNotificationConfigsRequest(task_id=task_id)
    )
    assert [c.id for c in listed.configs] == ["a", "b"]
    await client.delete_task_push_notification_config(
        DeleteTaskPushNotificationConfigRequest(task_id=task_id, id="a")
    )
    listed = await client.list_task_push_notification_configs(
        ListTaskPushNotificationConfigsRequest(task_id=task_id)
    )
    assert [c.id for c in listed.configs] == ["b"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_sdk_sees_a_refused_webhook_as_an_error(
    sdk: Callable[..., Any], gates: Gates, version: str
) -> None:
    client = await sdk(version)
    task_id = await start_hanging(client, gates, "g")
    with pytest.raises(A2AError) as caught:
        await client.create_task_push_notification_config(
            TaskPushNotificationConfig(task_id=task_id, url="http://169.254.169.254/latest")
        )
    assert isinstance(caught.value, InvalidParamsError), repr(caught.value)
    assert "metadata" in str(caught.value)
