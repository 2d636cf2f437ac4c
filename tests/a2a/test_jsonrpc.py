"""The JSON-RPC binding on POST /: A2A 1.0 and 0.3 methods and their shapes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from a2a_support import Gates, SSEReader, message, message03, rpc, rpc_stream, send_running
from aiohttp.test_utils import TestClient

# -- SendMessage ---------------------------------------------------------------------------


async def test_send_message_1_0_returns_completed_task(client: TestClient[Any, Any]) -> None:
    reply = await rpc(client, "SendMessage", {"message": message({"text": "hi"})})
    assert reply["jsonrpc"] == "2.0"
    assert reply["id"] == 1
    task = reply["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["status"]["timestamp"].endswith("Z")
    assert task["artifacts"][-1]["name"] == "result"
    assert task["artifacts"][-1]["parts"] == [{"data": {"echo": "hi"}}]
    assert task["history"][0]["role"] == "ROLE_USER"
    assert task["contextId"]


async def test_send_message_data_part_is_the_payload(client: TestClient[Any, Any]) -> None:
    reply = await rpc(client, "SendMessage", {"message": message({"data": {"value": 5}})})
    assert reply["result"]["task"]["artifacts"][-1]["parts"] == [{"data": {"echo": 5}}]


async def test_message_send_0_3_returns_task_with_kind(client: TestClient[Any, Any]) -> None:
    reply = await rpc(
        client, "message/send", {"message": message03({"kind": "data", "data": {"value": 5}})}
    )
    task = reply["result"]
    assert task["kind"] == "task"
    assert task["status"]["state"] == "completed"
    assert task["artifacts"][-1]["parts"] == [{"kind": "data", "data": {"echo": 5}}]
    assert task["history"][0]["kind"] == "message"
    assert task["history"][0]["role"] == "user"


async def test_tenant_param_becomes_the_tenant_header(client: TestClient[Any, Any]) -> None:
    msg = {"messageId": "m", "role": "ROLE_USER", "parts": [{"text": "x"}]}
    reply = await rpc(client, "SendMessage", {"message": msg, "tenant": "acme"})
    assert reply["result"]["task"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_failed_flow_gives_failed_task_with_error_message(
    client: TestClient[Any, Any],
) -> None:
    reply = await rpc(client, "SendMessage", {"message": message({"data": {"op": "fail"}})})
    status = reply["result"]["task"]["status"]
    assert status["state"] == "TASK_STATE_FAILED"
    assert "boom" in status["message"]["parts"][0]["text"]
    assert status["message"]["role"] == "ROLE_AGENT"


async def test_return_immediately_gives_running_task(
    client: TestClient[Any, Any], gates: Gates
) -> None:
    task_id = await send_running(client, gates, "g")
    reply = await rpc(client, "GetTask", {"id": task_id})
    assert reply["result"]["status"]["state"] == "TASK_STATE_WORKING"


async def test_non_blocking_0_3_send_gives_running_task(
    client: TestClient[Any, Any], gates: Gates
) -> None:
    params = {
        "message": message03({"kind": "data", "data": {"op": "hang", "gate": "g"}}),
        "configuration": {"blocking": False},
    }
    reply = await rpc(client, "message/send", params)
    assert reply["result"]["status"]["state"] in ("submitted", "working")


# -- GetTask / CancelTask ------------------------------------------------------------------


async def test_get_task_returns_bare_task(client: TestClient[Any, Any]) -> None:
    sent = await rpc(client, "SendMessage", {"message": message()})
    task_id = sent["result"]["task"]["id"]
    reply = await rpc(client, "GetTask", {"id": task_id})
    assert reply["result"] == sent["result"]["task"]


async def test_get_task_history_length_zero_omits_history(client: TestClient[Any, Any]) -> None:
    sent = await rpc(client, "SendMessage", {"message": message()})
    reply = await rpc(client, "tasks/get", {"id": sent["result"]["task"]["id"], "historyLength": 0})
    assert "history" not in reply["result"]
    assert reply["result"]["kind"] == "task"


async def test_cancel_task_cancels_a_running_task(
    client: TestClient[Any, Any], gates: Gates
) -> None:
    task_id = await send_running(client, gates, "g")
    reply = await rpc(client, "CancelTask", {"id": task_id})
    assert reply["result"]["id"] == task_id
    assert reply["result"]["status"]["state"] == "TASK_STATE_CANCELED"
    async with asyncio.timeout(5):
        await gates.cancelled("g").wait()


async def test_cancel_finished_task_is_not_cancelable(client: TestClient[Any, Any]) -> None:
    sent = await rpc(client, "SendMessage", {"message": message()})
    reply = await rpc(client, "CancelTask", {"id": sent["result"]["task"]["id"]})
    assert reply["error"]["code"] == -32002
    assert reply["error"]["data"][0]["reason"] == "TASK_NOT_CANCELABLE"


@pytest.mark.parametrize(
    ("method", "with_data"),
    [
        pytest.param("GetTask", True, id="1.0-get"),
        pytest.param("CancelTask", True, id="1.0-cancel"),
        pytest.param("tasks/get", False, id="0.3-get"),
        pytest.param("tasks/cancel", False, id="0.3-cancel"),
    ],
)
async def test_unknown_task_is_task_not_found(
    client: TestClient[Any, Any], method: str, with_data: bool
) -> None:
    reply = await rpc(client, method, {"id": "nope"})
    assert reply["error"]["code"] == -32001
    assert ("data" in reply["error"]) is with_data


async def test_task_id_of_unknown_task_is_task_not_found(client: TestClient[Any, Any]) -> None:
    reply = await rpc(client, "SendMessage", {"message": message(taskId="nope")})
    assert reply["error"]["code"] == -32001


async def test_task_id_of_finished_task_is_unsupported(client: TestClient[Any, Any]) -> None:
    sent = await rpc(client, "SendMessage", {"message": message()})
    task_id = sent["result"]["task"]["id"]
    reply = await rpc(client, "SendMessage", {"message": message(taskId=task_id)})
    assert reply["error"]["code"] == -32004


# -- streaming ------------------------------------------------------------------------------


async def test_send_streaming_message_1_0_event_order(client: TestClient[Any, Any]) -> None:
    params = {"message": message({"data": {"op": "chunks", "texts": ["a", "b"]}})}
    events = await rpc_stream(client, "SendStreamingMessage", params)
    assert all(event["id"] == 7 for event in events)
    results = [event["result"] for event in events]
    assert [next(iter(result)) for result in results] == [
        "task",
        "statusUpdate",
        "artifactUpdate",
        "artifactUpdate",
        "artifactUpdate",
        "statusUpdate",
    ]
    assert results[1]["statusUpdate"]["status"]["state"] == "TASK_STATE_WORKING"
    first, second, final = (r["artifactUpdate"] for r in results[2:5])
    assert (first["append"], first["lastChunk"], first["artifact"]["parts"]) == (
        False,
        False,
        [{"text": "a"}],
    )
    assert (second["append"], second["lastChunk"]) == (True, True)
    assert final["artifact"]["parts"] == [{"data": {"final": "ab"}}]
    assert results[5]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_message_stream_0_3_has_kinds_and_final(client: TestClient[Any, Any]) -> None:
    params = {"message": message03({"kind": "data", "data": {"value": 1}})}
    results = [e["result"] for e in await rpc_stream(client, "message/stream", params)]
    assert [r["kind"] for r in results] == [
        "task",
        "status-update",
        "artifact-update",
        "status-update",
    ]
    assert [r["final"] for r in results if r["kind"] == "status-update"] == [False, True]
    assert results[-1]["status"]["state"] == "completed"


async def test_cancel_ends_an_open_stream_with_canceled(
    client: TestClient[Any, Any], gates: Gates
) -> None:
    params = {"message": message({"data": {"op": "hang", "gate": "g"}})}
    stream = await SSEReader.open(client, "SendStreamingMessage", params)
    task_id = (await stream.next())["result"]["task"]["id"]
    await gates.wait_entered("g")
    await rpc(client, "CancelTask", {"id": task_id})
    events = await stream.rest()
    assert events[-1]["result"]["statusUpdate"]["status"]["state"] == "TASK_STATE_CANCELED"


async def test_subscribe_to_running_task_streams_until_done(
    client: TestClient[Any, Any], gates: Gates
) -> None:
    task_id = await send_running(client, gates, "g")
    stream = await SSEReader.open(client, "SubscribeToTask", {"id": task_id})
    first = await stream.next()
    gates.open("g")
    results = [e["result"] for e in await stream.rest()]
    assert first["result"]["task"]["id"] == task_id
    assert results[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_resubscribe_to_finished_task_is_unsupported(client: TestClient[Any, Any]) -> None:
    sent = await rpc(client, "SendMessage", {"message": message()})
    reply = await rpc(client, "tasks/resubscribe", {"id": sent["result"]["task"]["id"]})
    assert reply["error"]["code"] == -32004


async def test_stream_upfront_error_is_plain_json(client: TestClient[Any, Any]) -> None:
    body = {"jsonrpc": "2.0", "id": 3, "method": "SendStreamingMessage", "params": {}}
    response = await client.post("/", json=body)
    assert response.content_type == "application/json"
    assert (await response.json())["error"]["code"] == -32602


# -- ListTasks ------------------------------------------------------------------------------


async def test_list_tasks_pages_most_recent_first(client: TestClient[Any, Any]) -> None:
    ids = []
    for _ in range(3):
        sent = await rpc(client, "SendMessage", {"message": message()})
        ids.append(sent["result"]["task"]["id"])
    first = (await rpc(client, "ListTasks", {"pageSize": 2}))["result"]
    assert [t["id"] for t in first["tasks"]] == ids[:0:-1]
    assert (first["pageSize"], first["totalSize"], first["nextPageToken"]) == (2, 3, "2")
    assert "artifacts" not in first["tasks"][0]
    rest = (await rpc(client, "ListTasks", {"pageSize": 2, "pageToken": "2"}))["result"]
    assert [t["id"] for t in rest["tasks"]] == ids[:1]
    assert rest["nextPageToken"] == ""


async def test_list_tasks_filters_by_context_and_status(client: TestClient[Any, Any]) -> None:
    await rpc(client, "SendMessage", {"message": message(contextId="c1")})
    await rpc(client, "SendMessage", {"message": message({"data": {"op": "fail"}})})
    by_context = (await rpc(client, "ListTasks", {"contextId": "c1"}))["result"]
    assert [t["contextId"] for t in by_context["tasks"]] == ["c1"]
    failed = await rpc(
        client, "ListTasks", {"status": "TASK_STATE_FAILED", "includeArtifacts": True}
    )
    assert [t["status"]["state"] for t in failed["result"]["tasks"]] == ["TASK_STATE_FAILED"]


@pytest.mark.parametrize(
    "params",
    [
        pytest.param([], id="not-object"),
        pytest.param({"pageSize": 0}, id="page-size-zero"),
        pytest.param({"pageSize": True}, id="page-size-bool"),
        pytest.param({"pageToken": "x"}, id="bad-token"),
    ],
)
async def test_list_tasks_invalid_params(client: TestClient[Any, Any], params: Any) -> None:
    assert (await rpc(client, "ListTasks", params))["error"]["code"] == -32602


async def test_list_tasks_over_rest(client: TestClient[Any, Any]) -> None:
    await rpc(client, "SendMessage", {"message": message()})
    response = await client.get("/tasks?pageSize=1&historyLength=0&includeArtifacts=true")
    page = await response.json()
    assert page["totalSize"] == 1
    assert "history" not in page["tasks"][0]
    assert "artifacts" in page["tasks"][0]
    bad = await client.get("/tasks?pageSize=lots")
    assert bad.status == 400
