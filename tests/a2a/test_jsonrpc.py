"""The JSON-RPC binding on POST /: A2A 1.0 and 0.3 methods, shapes and error codes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from a2a_support import Gates, SSEReader
from aiohttp.test_utils import TestClient

TENANT_META = {"headers": {"tenant": "acme"}}


def message(*parts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "messageId": "m1",
        "role": "ROLE_USER",
        "parts": list(parts) or [{"text": "hi"}],
        "metadata": TENANT_META,
        **extra,
    }


def message03(*parts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "kind": "message",
        "messageId": "m1",
        "role": "user",
        "parts": list(parts) or [{"kind": "text", "text": "hi"}],
        "metadata": TENANT_META,
        **extra,
    }


async def rpc(
    client: TestClient[Any, Any],
    method: str,
    params: Any,
    *,
    request_id: Any = 1,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    async with asyncio.timeout(5):
        response = await client.post("/", json=body, headers=headers)
        assert response.status == 200
        return await response.json()  # type: ignore[no-any-return]


async def rpc_stream(
    client: TestClient[Any, Any], method: str, params: Any, *, request_id: Any = 7
) -> list[dict[str, Any]]:
    body = {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}
    async with asyncio.timeout(5):
        response = await client.post("/", json=body)
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        text = (await response.read()).decode()
    events = []
    for frame in text.split("\n\n"):
        if frame:
            assert frame.startswith("data: ")
            events.append(json.loads(frame.removeprefix("data: ")))
    return events


async def send_running(client: TestClient[Any, Any], gates: Gates, gate: str) -> str:
    """Start a task that waits on ``gate``; return its id once the node is inside."""
    params = {
        "message": message({"data": {"op": "hang", "gate": gate}}),
        "configuration": {"returnImmediately": True},
    }
    reply = await rpc(client, "SendMessage", params)
    await gates.wait_entered(gate)
    return str(reply["result"]["task"]["id"])


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


# -- envelope errors -----------------------------------------------------------------------


async def post_raw(client: TestClient[Any, Any], data: bytes, content_type: str) -> Any:
    response = await client.post("/", data=data, headers={"Content-Type": content_type})
    assert response.status == 200
    return await response.json()


async def test_malformed_json_is_parse_error_with_null_id(client: TestClient[Any, Any]) -> None:
    reply = await post_raw(client, b"{nope", "application/json")
    assert reply["id"] is None
    assert reply["error"]["code"] == -32700


async def test_wrong_content_type_is_invalid_request(client: TestClient[Any, Any]) -> None:
    reply = await post_raw(client, b"{}", "text/plain")
    assert reply["error"]["code"] == -32600


async def test_oversized_body_is_invalid_request(make_adapter: Any, make_client: Any) -> None:
    client = await make_client(make_adapter(), max_body_bytes=32)
    reply = await post_raw(client, json.dumps({"x": "y" * 64}).encode(), "application/json")
    assert reply["error"]["code"] == -32600


@pytest.mark.parametrize(
    ("body", "code"),
    [
        pytest.param([], -32600, id="batch"),
        pytest.param("text", -32600, id="not-an-object"),
        pytest.param({"jsonrpc": "2.0", "id": [1], "method": "GetTask"}, -32600, id="bad-id"),
        pytest.param({"id": 1, "method": "GetTask"}, -32600, id="no-jsonrpc"),
        pytest.param({"jsonrpc": "2.0", "id": 1}, -32600, id="no-method"),
        pytest.param({"jsonrpc": "2.0", "id": 1, "method": "Nope"}, -32601, id="unknown-method"),
        pytest.param({"jsonrpc": "2.0", "id": 1, "method": "GetTask"}, -32602, id="no-params"),
        pytest.param(
            {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": 1}},
            -32602,
            id="bad-task-id",
        ),
        pytest.param(
            {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tasks/get",
                "params": {"id": "x", "historyLength": "2"},
            },
            -32602,
            id="bad-history-length",
        ),
    ],
)
async def test_envelope_errors(client: TestClient[Any, Any], body: Any, code: int) -> None:
    reply = await post_raw(client, json.dumps(body).encode(), "application/json")
    assert reply["error"]["code"] == code


@pytest.mark.parametrize(
    "params",
    [
        pytest.param("x", id="params-not-object"),
        pytest.param({}, id="no-message"),
        pytest.param({"message": {"parts": [{"text": "x"}]}}, id="no-message-id"),
        pytest.param({"message": {"messageId": "m", "parts": []}}, id="no-parts"),
        pytest.param({"message": {"messageId": "m", "parts": ["x"]}}, id="part-not-object"),
        pytest.param({"message": {"messageId": "m", "parts": [{"text": 1}]}}, id="text-not-str"),
        pytest.param({"message": {"messageId": "m", "parts": [{"weird": 1}]}}, id="unknown-part"),
        pytest.param(
            {"message": {"messageId": "m", "parts": [{"text": "x"}], "contextId": 3}},
            id="context-not-str",
        ),
        pytest.param(
            {"message": {"messageId": "m", "parts": [{"text": "x"}], "metadata": []}},
            id="metadata-not-object",
        ),
        pytest.param(
            {"message": {"messageId": "m", "parts": [{"text": "x"}], "metadata": {"headers": 1}}},
            id="headers-not-object",
        ),
        pytest.param({"message": {"messageId": "m", "parts": [{"text": "x"}]}}, id="no-tenant"),
    ],
)
async def test_invalid_send_params(client: TestClient[Any, Any], params: Any) -> None:
    reply = await rpc(client, "SendMessage", params)
    assert reply["error"]["code"] == -32602


async def test_unsupported_version_header(client: TestClient[Any, Any]) -> None:
    reply = await rpc(client, "GetTask", {"id": "x"}, headers={"A2A-Version": "2.0"})
    assert reply["error"]["code"] == -32009


@pytest.mark.parametrize("version", ["1.0", "0.3", "0.3.0", ""])
async def test_supported_version_headers(client: TestClient[Any, Any], version: str) -> None:
    reply = await rpc(client, "GetTask", {"id": "x"}, headers={"A2A-Version": version})
    assert reply["error"]["code"] == -32001


async def test_garbage_version_header(client: TestClient[Any, Any]) -> None:
    reply = await rpc(client, "GetTask", {"id": "x"}, headers={"A2A-Version": "one"})
    assert reply["error"]["code"] == -32009


async def test_full_store_refuses_new_tasks(
    make_adapter: Any, make_client: Any, gates: Gates
) -> None:
    client = await make_client(make_adapter(), max_tasks=1)
    await send_running(client, gates, "g")
    reply = await rpc(client, "SendMessage", {"message": message()})
    assert reply["error"]["code"] == -32603
    assert "too many active tasks" in reply["error"]["message"]


async def test_store_evicts_the_oldest_finished_task(make_adapter: Any, make_client: Any) -> None:
    client = await make_client(make_adapter(), max_tasks=1)
    first = await rpc(client, "SendMessage", {"message": message()})
    await rpc(client, "SendMessage", {"message": message()})
    reply = await rpc(client, "GetTask", {"id": first["result"]["task"]["id"]})
    assert reply["error"]["code"] == -32001


# -- shutdown and internal failures ---------------------------------------------------------


async def test_adapter_shutdown_fails_running_tasks(
    client: TestClient[Any, Any], gates: Gates
) -> None:
    from penguiflow_a2a._aiohttp_app import ADAPTER_KEY

    task_id = await send_running(client, gates, "g")
    stream = await SSEReader.open(client, "SubscribeToTask", {"id": task_id})
    await stream.next()
    await client.app[ADAPTER_KEY].stop()
    final = (await stream.rest())[-1]["result"]["statusUpdate"]["status"]
    assert final["state"] == "TASK_STATE_FAILED"
    assert final["message"]["parts"] == [{"text": "flow is shutting down"}]


async def test_unexpected_service_failure_is_internal_error() -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from penguiflow_a2a.jsonrpc import JsonRpcRoutes

    class ExplodingService:
        def get(self, params: Any) -> Any:
            raise RuntimeError("secret")

    app = web.Application()
    JsonRpcRoutes(ExplodingService(), max_body_bytes=1024, heartbeat_s=None).add_to(app)  # type: ignore[arg-type]
    async with TestClient(TestServer(app)) as raw:
        reply = await rpc(raw, "GetTask", {"id": "x"})
    assert reply["error"] == {
        "code": -32603,
        "message": "Internal error",
        "data": reply["error"]["data"],
    }
    assert "secret" not in json.dumps(reply)


class GatedBindingStore:
    """A state store whose ``save_remote_binding`` waits until the test opens it."""

    def __init__(self) -> None:
        self.arrived: asyncio.Queue[None] = asyncio.Queue()
        self.release = asyncio.Event()

    async def save_event(self, event: Any) -> None:
        return None

    async def load_history(self, trace_id: str) -> list[Any]:
        return []

    async def save_remote_binding(self, binding: Any) -> None:
        self.arrived.put_nowait(None)
        await self.release.wait()


async def test_store_filling_up_during_admission_releases_the_reservation(
    make_adapter: Any, make_client: Any
) -> None:
    store = GatedBindingStore()
    adapter = make_adapter(state_store=store)
    client = await make_client(adapter, max_tasks=1)
    first = asyncio.create_task(rpc(client, "SendMessage", {"message": message()}))
    second = asyncio.create_task(rpc(client, "SendMessage", {"message": message()}))
    async with asyncio.timeout(5):
        for _ in range(2):
            await store.arrived.get()  # both passed the capacity check
    store.release.set()
    replies = [await first, await second]
    codes = sorted(reply.get("error", {}).get("code", 0) for reply in replies)
    assert codes == [-32603, 0]
    assert adapter._by_task == {}  # the refused request's reservation was given back
