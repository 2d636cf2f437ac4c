"""The HTTP+JSON (REST) binding: /message:send, /message:stream, /tasks/{id}..."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from a2a_support import Gates
from aiohttp.test_utils import TestClient

MESSAGE = {
    "messageId": "m1",
    "role": "ROLE_USER",
    "parts": [{"data": {"value": 3}}],
    "metadata": {"headers": {"tenant": "acme"}},
}


def hang(gate: str) -> dict[str, Any]:
    return {**MESSAGE, "parts": [{"data": {"op": "hang", "gate": gate}}]}


async def start_running(client: TestClient[Any, Any], gates: Gates, gate: str) -> str:
    body = {"message": hang(gate), "configuration": {"returnImmediately": True}}
    reply = await (await client.post("/message:send", json=body)).json()
    await gates.wait_entered(gate)
    return str(reply["task"]["id"])


async def read_events(response: Any) -> list[Any]:
    async with asyncio.timeout(5):
        text = (await response.read()).decode()
    return [json.loads(f.removeprefix("data: ")) for f in text.split("\n\n") if f]


async def test_send_returns_wrapped_task(client: TestClient[Any, Any]) -> None:
    response = await client.post("/message:send", json={"message": MESSAGE})
    assert response.status == 200
    task = (await response.json())["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    assert task["artifacts"][-1]["parts"] == [{"data": {"echo": 3}}]


async def test_get_task_and_history_length(client: TestClient[Any, Any]) -> None:
    sent = await (await client.post("/message:send", json={"message": MESSAGE})).json()
    task_id = sent["task"]["id"]
    task = await (await client.get(f"/tasks/{task_id}?historyLength=0")).json()
    assert task["id"] == task_id
    assert "history" not in task


async def test_unknown_task_is_404_with_error_info(client: TestClient[Any, Any]) -> None:
    response = await client.get("/tasks/nope")
    assert response.status == 404
    error = (await response.json())["error"]
    assert (error["code"], error["status"]) == (404, "NOT_FOUND")
    assert error["details"][0]["reason"] == "TASK_NOT_FOUND"


async def test_bad_history_length_is_400(client: TestClient[Any, Any]) -> None:
    response = await client.get("/tasks/x?historyLength=many")
    assert response.status == 400
    assert (await response.json())["error"]["details"][0]["reason"] == "INVALID_PARAMS"


async def test_cancel_running_task(client: TestClient[Any, Any], gates: Gates) -> None:
    task_id = await start_running(client, gates, "g")
    response = await client.post(f"/tasks/{task_id}:cancel")
    assert response.status == 200
    assert (await response.json())["status"]["state"] == "TASK_STATE_CANCELED"


async def test_cancel_finished_task_is_400(client: TestClient[Any, Any]) -> None:
    sent = await (await client.post("/message:send", json={"message": MESSAGE})).json()
    response = await client.post(f"/tasks/{sent['task']['id']}:cancel")
    assert response.status == 400
    assert (await response.json())["error"]["details"][0]["reason"] == "TASK_NOT_CANCELABLE"


async def test_stream_sends_bare_stream_responses(client: TestClient[Any, Any]) -> None:
    response = await client.post("/message:stream", json={"message": MESSAGE})
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = await read_events(response)
    assert [next(iter(event)) for event in events] == [
        "task",
        "statusUpdate",
        "artifactUpdate",
        "statusUpdate",
    ]


async def test_stream_with_invalid_params_is_400(client: TestClient[Any, Any]) -> None:
    response = await client.post("/message:stream", json={"message": {}})
    assert response.status == 400


@pytest.mark.parametrize("method", ["get", "post"])
async def test_subscribe_to_running_task(
    client: TestClient[Any, Any], gates: Gates, method: str
) -> None:
    task_id = await start_running(client, gates, "g")
    response = await getattr(client, method)(f"/tasks/{task_id}:subscribe")
    first = await response.content.readuntil(b"\n\n")
    assert json.loads(first.decode().removeprefix("data: "))["task"]["id"] == task_id
    gates.open("g")
    events = await read_events(response)
    assert events[-1]["statusUpdate"]["status"]["state"] == "TASK_STATE_COMPLETED"


async def test_subscribe_to_unknown_task_is_404(client: TestClient[Any, Any]) -> None:
    assert (await client.post("/tasks/nope:subscribe")).status == 404


async def test_malformed_body_is_400_parse_error(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/message:send", data=b"{", headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert (await response.json())["error"]["details"][0]["reason"] == "PARSE_ERROR"


async def test_wrong_content_type_is_400(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/message:send", data=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert response.status == 400
    assert (await response.json())["error"]["details"][0]["reason"] == "INVALID_REQUEST"
