"""Push-notification configs follow task isolation: another principal's task is "not found".

Bob naming Alice's task on any push-config method (A2A 1.0 and 0.3 JSON-RPC,
the HTTP+JSON routes) gets the answer for an id that does not exist, and
Alice's configs stay as they were: Bob can neither read her webhook (and its
token) nor point her task's updates at his own.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from a2a_support import Gates, message
from aiohttp import web
from aiohttp.test_utils import TestClient
from push_support import Receiver

from penguiflow_a2a import A2AServerAdapter

ALICE = {"X-User": "alice"}
BOB = {"X-User": "bob"}
UNKNOWN = "no-such-task-0123456789abcdef"

Client = TestClient[Any, Any]


def by_user(request: web.Request) -> str | None:
    return request.headers.get("X-User")


@pytest.fixture
async def served(
    make_adapter: Callable[..., A2AServerAdapter], make_client: Callable[..., Any]
) -> Client:
    client: Client = await make_client(
        make_adapter(emit_errors_to_rookery=True), auth=by_user, push_allow_hosts=["127.0.0.1"]
    )
    return client


async def rpc(client: Client, method: str, params: Any, headers: dict[str, str]) -> Any:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    async with asyncio.timeout(5):
        response = await client.post("/", json=body, headers=headers)
        assert response.status == 200
        return await response.json()


async def rest(
    client: Client, method: str, path: str, headers: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    async with asyncio.timeout(5):
        response = await client.request(method, path, json=body, headers=headers)
        return response.status, await response.json()


def masked(body: Any, task_id: str) -> str:
    return json.dumps(body, sort_keys=True).replace(task_id, "<id>")


async def alices_task_with_a_config(client: Client, gates: Gates, url: str) -> str:
    params = {
        "message": message({"data": {"op": "hang", "gate": "g"}}),
        "configuration": {"returnImmediately": True},
    }
    reply = await rpc(client, "SendMessage", params, ALICE)
    task_id = str(reply["result"]["task"]["id"])
    await gates.wait_entered("g")
    created = await rpc(
        client,
        "CreateTaskPushNotificationConfig",
        {"taskId": task_id, "id": "a", "url": url, "token": "alice-secret"},
        ALICE,
    )
    assert created["result"]["id"] == "a"
    return task_id


async def alices_configs(client: Client, task_id: str) -> list[dict[str, Any]]:
    listed = await rpc(client, "ListTaskPushNotificationConfigs", {"taskId": task_id}, ALICE)
    configs: list[dict[str, Any]] = listed["result"]["configs"]
    return configs


RPC_CASES: dict[str, Callable[[str, str], Any]] = {
    "CreateTaskPushNotificationConfig": lambda tid, url: {"taskId": tid, "id": "b", "url": url},
    "GetTaskPushNotificationConfig": lambda tid, url: {"taskId": tid, "id": "a"},
    "ListTaskPushNotificationConfigs": lambda tid, url: {"taskId": tid},
    "DeleteTaskPushNotificationConfig": lambda tid, url: {"taskId": tid, "id": "a"},
    "tasks/pushNotificationConfig/set": lambda tid, url: {
        "taskId": tid,
        "pushNotificationConfig": {"id": "b", "url": url},
    },
    "tasks/pushNotificationConfig/get": lambda tid, url: {
        "id": tid,
        "pushNotificationConfigId": "a",
    },
    "tasks/pushNotificationConfig/list": lambda tid, url: {"id": tid},
    "tasks/pushNotificationConfig/delete": lambda tid, url: {
        "id": tid,
        "pushNotificationConfigId": "a",
    },
}


@pytest.mark.parametrize("method", list(RPC_CASES))
async def test_jsonrpc_push_config_of_another_principals_task_is_not_found(
    served: Client, gates: Gates, receiver: Receiver, method: str
) -> None:
    task_id = await alices_task_with_a_config(served, gates, receiver.url)
    before = await alices_configs(served, task_id)
    other = await rpc(served, method, RPC_CASES[method](task_id, receiver.url), BOB)
    unknown = await rpc(served, method, RPC_CASES[method](UNKNOWN, receiver.url), BOB)
    assert other["error"]["code"] == -32001
    assert masked(other, task_id) == masked(unknown, UNKNOWN)
    assert "alice-secret" not in json.dumps(other)
    assert await alices_configs(served, task_id) == before


REST_CASES: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    "create": ("POST", "/tasks/{id}/pushNotificationConfigs", lambda url: {"id": "b", "url": url}),
    "list": ("GET", "/tasks/{id}/pushNotificationConfigs", lambda url: None),
    "get": ("GET", "/tasks/{id}/pushNotificationConfigs/a", lambda url: None),
    "delete": ("DELETE", "/tasks/{id}/pushNotificationConfigs/a", lambda url: None),
}


@pytest.mark.parametrize("case", list(REST_CASES))
async def test_rest_push_config_of_another_principals_task_is_not_found(
    served: Client, gates: Gates, receiver: Receiver, case: str
) -> None:
    task_id = await alices_task_with_a_config(served, gates, receiver.url)
    before = await alices_configs(served, task_id)
    method, path, body = REST_CASES[case]
    other = await rest(served, method, path.format(id=task_id), BOB, body(receiver.url))
    unknown = await rest(served, method, path.format(id=UNKNOWN), BOB, body(receiver.url))
    assert other[0] == unknown[0] == 404
    assert masked(other[1], task_id) == masked(unknown[1], UNKNOWN)
    assert await alices_configs(served, task_id) == before


async def test_inline_push_config_on_another_principals_task_is_not_found(
    served: Client, gates: Gates, receiver: Receiver
) -> None:
    task_id = await alices_task_with_a_config(served, gates, receiver.url)
    push = {"taskPushNotificationConfig": {"url": receiver.url}}
    params = {"message": message(taskId=task_id), "configuration": push}
    other = await rpc(served, "SendMessage", params, BOB)
    assert other["error"]["code"] == -32001
    assert [c["id"] for c in await alices_configs(served, task_id)] == ["a"]


async def test_owner_manages_her_push_configs(
    served: Client, gates: Gates, receiver: Receiver
) -> None:
    task_id = await alices_task_with_a_config(served, gates, receiver.url)
    got = await rpc(served, "GetTaskPushNotificationConfig", {"taskId": task_id, "id": "a"}, ALICE)
    assert got["result"]["token"] == "alice-secret"
    status, _ = await rest(served, "DELETE", f"/tasks/{task_id}/pushNotificationConfigs/a", ALICE)
    assert status == 200
    assert await alices_configs(served, task_id) == []
