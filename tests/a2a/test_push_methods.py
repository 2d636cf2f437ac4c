"""Push-notification config methods: JSON-RPC 1.0 and 0.3, the HTTP+JSON routes, inline configs."""

from __future__ import annotations

from typing import Any

import pytest
from a2a_support import Gates, message, message03, rpc, send_running
from aiohttp.test_utils import TestClient
from push_support import Receiver


def config10(task_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"taskId": task_id, "url": url, **extra}


def config03(task_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"taskId": task_id, "pushNotificationConfig": {"url": url, **extra}}


# -- JSON-RPC 1.0 ----------------------------------------------------------------------------


async def test_create_returns_the_config_with_the_task_id_as_default_id(
    push_client: TestClient[Any, Any], gates: Gates, receiver: Receiver
) -> None:
    task_id = await send_running(push_client, gates, "g")
    reply = await rpc(
        push_client,
        "CreateTaskPushNotificationConfig",
        config10(
            task_id,
            receiver.url,
            token="t1",
            authentication={"scheme": "Bearer", "credentials": "c1"},
        ),
    )
    assert reply["result"] == {
        "taskId": task_id,
        "id": task_id,
        "url": receiver.url,
        "token": "t1",
        "authentication": {"scheme": "Bearer", "credentials": "c1"},
    }


async def test_get_list_and_delete_round_trip_in_1_0(
    push_client: TestClient[Any, Any], gates: Gates, receiver: Receiver
) -> None:
    task_id = await send_running(push_client, gates, "g")
    for config_id in ("a", "b"):
        await rpc(
            push_client,
            "CreateTaskPushNotificationConfig",
            config10(task_id, receiver.url, id=config_id),
        )
    got = await rpc(push_client, "GetTaskPushNotificationConfig", {"taskId": task_id, "id": "b"})
    assert got["result"] == {"taskId": task_id, "id": "b", "url": receiver.url}
    listed = await rpc(push_client, "ListTaskPushNotificationConfigs", {"taskId": task_id})
    assert [c["id"] for c in listed["result"]["configs"]] == ["a", "b"]
    assert listed["result"]["nextPageToken"] == ""
    deleted = await rpc(
        push_client, "DeleteTaskPushNotificationConfig", {"taskId": task_id, "id": "a"}
    )
    assert deleted["result"] is None
    listed = await rpc(push_client, "ListTaskPushNotificationConfigs", {"taskId": task_id})
    assert [c["id"] for c in listed["result"]["configs"]] == ["b"]


async def test_list_pages_configs_in_1_0(
    push_client: TestClient[Any, Any], gates: Gates, receiver: Receiver
) -> None:
    task_id = await send_running(push_client, gates, "g")
    for config_id in ("a", "b", "c"):
        await rpc(
            push_client,
            "CreateTaskPushNotificationConfig",
            config10(task_id, receiver.url, id=config_id),
        )
    first = await rpc(
        push_client, "ListTaskPushNotificationConfigs", {"taskId": task_id, "pageSize": 2}
    )
    assert [c["id"] for c in first["result"]["configs"]] == ["a", "b"]
    token = first["result"]["nextPageToken"]
    second = await rpc(
        push_client,
        "ListTaskPushNotificationConfigs",
        {"taskId": task_id, "pageSize": 2, "pageToken": token},
    )
    assert [c["id"] for c in second["result"]["configs"]] == ["c"]
    assert second["result"]["nextPageToken"] == ""


async def test_create_with_the_same_id_replaces_the_config(
    push_client: TestClient[Any, Any], gates: Gates, receiver: Receiver
) -> None:
    task_id = await send_running(push_client, gates, "g")
    await rpc(
        push_client,
        "CreateTaskPushNotificationConfig",
        config10(task_id, receiver.url, id="x", token="old"),
    )
    await rpc(
        push_client,
        "CreateTaskPushNotificationConfig",
        config10(task_id, receiver.url, id="x", token="new"),
    )
    listed = await rpc(push_client, "ListTaskPushNotificationConfigs", {"taskId": task_id})
    assert [(c["id"], c["token"]) for c in listed["result"]["configs"]] == [("x", "new")]


@pytest.mark.parametrize(
    ("method", "params"),
    [
        ("CreateTaskPushNotificationConfig", {"taskId": "nope", "url": "http://127.0.0.1/"}),
        ("GetTaskPushNotificationConfig", {"taskId": "nope", "id": "x"}),
        ("ListTaskPushNotificationConfigs", {"taskId": "nope"}),
        ("DeleteTaskPushNotificationConfig", {"taskId": "nope", "id": "x"}),
        ("tasks/pushNotificationConfig/set", config03("nope", "http://127.0.0.1/")),
        ("tasks/pushNotificationConfig/get", {"id": "nope"}),
        ("tasks/pushNotificationConfig/list", {"id": "nope"}),
        ("tasks/pushNotificationConfig/delete", {"id": "nope", "pushNotificationConfigId": "x"}),
    ],
)
async def test_every_push_method_answers_task_not_found_for_an_unknown_task(
    push_client: TestClient[Any, Any], method: str, params: dict[str, Any]
) -> None:
    reply = await rpc(push_client, method, params)
    assert reply["error"]["code"] == -32001


async def test_an_unknown_config_is_an_invalid_params_error(
    push_client: TestClient[Any, Any], gates: Gates
) -> None:
    task_id = await send_running(push_client, gates, "g")
    got = await rpc(push_client, "GetTaskPushNotificationConfig", {"taskId": task_id, "id": "x"})
    assert got["error"]["code"] == -32602
    assert "not found" in got["error"]["message"]
    deleted = await rpc(
        push_client, "DeleteTaskPushNotificationConfig", {"taskId": task_id, "id": "x"}
    )
    assert deleted["error"]["code"] == -32602


@pytest.mark.parametrize(
    "params",
    [
        {"url": "http://127.0.0.1/"},
        {"taskId": 5, "url": "http://127.0.0.1/"},
        {"taskId": "T"},
        {"taskId": "T", "url": 7},
        {"taskId": "T", "url": "http://127.0.0.1/", "token": "a\r\nX-Evil: 1"},
        {"taskId": "T", "url": "http://127.0.0.1/", "authentication": "Bearer x"},
        {"taskId": "T", "url": "http://127.0.0.1/", "authentication": {"scheme": 3}},
        {"taskId": "T", "url": "http://127.0.0.1/", "id": ["x"]},
        "not an object",
    ],
)
async def test_create_refuses_malformed_configs(
    push_client: TestClient[Any, Any], gates: Gates, params: Any
) -> None:
    task_id = await send_running(push_client, gates, "g")
    if isinstance(params, dict) and params.get("taskId") == "T":
        params = {**params, "taskId": task_id}
    reply = await rpc(push_client, "CreateTaskPushNotificationConfig", params)
    assert reply["error"]["code"] == -32602


async def test_a_private_webhook_is_refused_with_a_clear_error(
    client: TestClient[Any, Any], gates: Gates
) -> None:
    task_id = await send_running(client, gates, "g")
    reply = await rpc(
        client, "CreateTaskPushNotificationConfig", config10(task_id, "http://127.0.0.1:9/h")
    )
    error = reply["error"]
    assert error["code"] == -32602
    assert error["message"].startswith("push notification URL refused")
    assert "loopback" in error["message"]
    listed = await rpc(client, "ListTaskPushNotificationConfigs", {"taskId": task_id})
    assert listed["result"]["configs"] == []


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest", "http://10.0.0.1/h"])
async def test_metadata_and_private_webhooks_stay_refused_with_an_allow_list(
    push_client: TestClient[Any, Any], gates: Gates, url: str
) -> None:
    task_id = await send_running(push_client, gates, "g")
    reply = await rpc(push_client, "CreateTaskPushNotificationConfig", config10(task_id, url))
    assert reply["error"]["code"] == -32602


async def test_a_task_holds_a_bounded_number_of_configs(
    make_adapter: Any, make_client: Any, gates: Gates, receiver: Receiver
) -> None:
    from penguiflow_a2a.push import PushSettings

    client = await make_client(
        make_adapter(emit_errors_to_rookery=True),
        push_allow_hosts=["127.0.0.1"],
        push_settings=PushSettings(max_configs_per_task=2),
    )
    task_id = await send_running(client, gates, "g")
    replies = [
        await rpc(
            client, "CreateTaskPushNotificationConfig", config10(task_id, receiver.url, id=str(i))
        )
        for i in range(3)
    ]
    assert ["error" in r for r in replies] == [False, False, True]
    assert "at most 2" in replies[2]["error"]["message"]
    # Replacing an existing one is still allowed at the limit.
    again = await rpc(
        client, "CreateTaskPushNotificationConfig", config10(task_id, receiver.url, id="1")
    )
    assert "result" in again


# -- JSON-RPC 0.3 ----------------------------------------------------------------------------


async def test_set_get_list_and_delete_round_trip_in_0_3(
    push_client: TestClient[Any, Any], gates: Gates, receiver: Receiver
) -> None:
    task_id = await send_running(push_client, gates, "g")
    auth = {"schemes": ["Bearer"], "credentials": "c1"}
    reply = await rpc(
        push_client,
        "tasks/pushNotificationConfig/set",
        config03(task_id, receiver.url, token="t1", authentication=auth),
    )
    expected = {
        "taskId": task_id,
        "pushNotificationConfig": {
            "id": task_id,
            "url": receiver.url,
            "token": "t1",
            "authentication": auth,
        },
    }
    assert reply["result"] == expected
    got = await rpc(push_client, "tasks/pushNotificationConfig/get", {"id": task_id})
    assert got["result"] == expected
    got = await rpc(
        push_client,
        "tasks/pushNotificationConfig/get",
        {"id": task_id, "pushNotificationConfigId": task_id},
    )
    assert got["result"] == expected
    listed = await rpc(push_client, "tasks/pushNotificationConfig/list", {"id": task_id})
    assert listed["result"] == [expected]
    deleted = await rpc(
        push_client,
        "tasks/pushNotificationConfig/delete",
        {"id": task_id, "pushNotificationConfigId": task_id},
    )
    assert deleted["result"] is None
    listed = await rpc(push_client, "tasks/pushNotificationConfig/list", {"id": task_id})
    assert listed["result"] == []


async def test_0_3_get_without_configs_is_an_error(
    push_client: TestClient[Any, Any], gates: Gates
) -> None:
    task_id = await send_running(push_client, gates, "g")
    got = await rpc(push_client, "tasks/pushNotificationConfig/get", {"id": task_id})
    assert got["error"]["code"] == -32602


@pytest.mark.parametrize(
    "inner",
    [
        None,
        {"url": "http://127.0.0.1/", "authentication": {"schemes": "Bearer"}},
        {"url": "http://127.0.0.1/", "authentication": []},
    ],
)
async def test_0_3_set_refuses_malformed_configs(
    push_client: TestClient[Any, Any], gates: Gates, inner: Any
) -> None:
    task_id = await send_running(push_client, gates, "g")
    reply = await rpc(
        push_client,
        "tasks/pushNotificationConfig/set",
        {"taskId": task_id, "pushNotificationConfig": inner},
    )
    assert reply["error"]["code"] == -32602


async def test_0_3_set_of_a_private_webhook_is_refused(
    client: TestClient[Any, Any], gates: Gates
) -> None:
    task_id = await send_running(client, gates, "g")
    reply = await rpc(
        client, "tasks/pushNotificationConfig/set", config03(task_id, "http://10.0.0.1/h")
    )
    assert reply["error"]["code"] == -32602
    assert "private" in reply["error"]["message"]


# -- inline configs in message/send ----------------------------------------------------------


async def test_send_with_an_inline_private_webhook_is_refused_before_the_task_starts(
    client: TestClient[Any, Any],
) -> None:
    params = {
        "message": message({"data": {"value": 1}}),
        "configuration": {"taskPushNotificationConfig": {"url": "http://192.168.0.1/"}},
    }
    reply = await rpc(client, "SendMessage", params)
    assert reply["error"]["code"] == -32602
    listed = await rpc(client, "ListTasks", {})
    assert listed["result"]["tasks"] == []


async def test_0_3_send_with_an_inline_config_registers_it(
    push_client: TestClient[Any, Any], gates: Gates, receiver: Receiver
) -> None:
    params = {
        "message": message03({"kind": "data", "data": {"op": "hang", "gate": "g"}}),
        "configuration": {
            "blocking": False,
            "pushNotificationConfig": {"url": receiver.url, "id": "inline"},
        },
    }
    reply = await rpc(push_client, "message/send", params)
    task_id = reply["result"]["id"]
    listed = await rpc(push_client, "tasks/pushNotificationConfig/list", {"id": task_id})
    assert [c["pushNotificationConfig"]["id"] for c in listed["result"]] == ["inline"]


# -- HTTP+JSON -------------------------------------------------------------------------------


async def test_rest_push_config_routes_round_trip(
    push_client: TestClient[Any, Any], gates: Gates, receiver: Receiver
) -> None:
    task_id = await send_running(push_client, gates, "g")
    base = f"/tasks/{task_id}/pushNotificationConfigs"
    # The path names the task, whatever the body says.
    created = await push_client.post(base, json={"taskId": "other", "id": "r", "url": receiver.url})
    assert created.status == 200
    assert await created.json() == {"taskId": task_id, "id": "r", "url": receiver.url}
    got = await push_client.get(f"{base}/r")
    assert (await got.json())["id"] == "r"
    listed = await push_client.get(base, params={"pageSize": "5"})
    assert [c["id"] for c in (await listed.json())["configs"]] == ["r"]
    deleted = await push_client.delete(f"{base}/r")
    assert deleted.status == 200
    missing = await push_client.get(f"{base}/r")
    assert missing.status == 400


async def test_rest_push_routes_answer_404_for_an_unknown_task(
    push_client: TestClient[Any, Any],
) -> None:
    base = "/tasks/nope/pushNotificationConfigs"
    for response in (
        await push_client.post(base, json={"url": "http://127.0.0.1/"}),
        await push_client.get(base),
        await push_client.get(f"{base}/x"),
        await push_client.delete(f"{base}/x"),
    ):
        assert response.status == 404
        assert (await response.json())["error"]["status"] == "NOT_FOUND"


async def test_rest_create_refuses_a_private_webhook_and_bad_bodies(
    client: TestClient[Any, Any], gates: Gates
) -> None:
    task_id = await send_running(client, gates, "g")
    base = f"/tasks/{task_id}/pushNotificationConfigs"
    refused = await client.post(base, json={"url": "http://127.0.0.1:1/"})
    assert refused.status == 400
    assert "refused" in (await refused.json())["error"]["message"]
    for bad in (await client.post(base, json=[1]), await client.post(base, data=b"{")):
        assert bad.status == 400
    paged = await client.get(base, params={"pageSize": "x"})
    assert paged.status == 400


@pytest.mark.parametrize(
    "extra", [{"pageToken": "x"}, {"pageSize": 101}, {"pageSize": "2"}, {"pageToken": 3}]
)
async def test_list_refuses_bad_paging(
    push_client: TestClient[Any, Any], gates: Gates, extra: dict[str, Any]
) -> None:
    task_id = await send_running(push_client, gates, "g")
    reply = await rpc(push_client, "ListTaskPushNotificationConfigs", {"taskId": task_id, **extra})
    assert reply["error"]["code"] == -32602


@pytest.mark.parametrize("config_id", [5, "", None])
async def test_get_and_delete_need_a_config_id_in_1_0(
    push_client: TestClient[Any, Any], gates: Gates, config_id: Any
) -> None:
    task_id = await send_running(push_client, gates, "g")
    for method in ("GetTaskPushNotificationConfig", "DeleteTaskPushNotificationConfig"):
        reply = await rpc(push_client, method, {"taskId": task_id, "id": config_id})
        assert reply["error"]["code"] == -32602
