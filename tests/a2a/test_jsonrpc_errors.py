"""The JSON-RPC binding: envelope and params errors, the task store, shutdown, disconnects."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from a2a_support import Gates, SSEReader, message, rpc, send_running
from aiohttp.test_utils import TestClient

from penguiflow_a2a.principals import SHARED_PRINCIPAL

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


async def test_stream_client_leaving_drops_only_its_subscription(
    make_adapter: Any, gates: Gates
) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    from penguiflow_a2a import create_a2a_app
    from penguiflow_a2a._aiohttp_app import SERVICE_KEY

    adapter = make_adapter()
    app = create_a2a_app(adapter)
    handler_done = asyncio.Event()

    @web.middleware
    async def mark_done(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        finally:
            handler_done.set()

    app.middlewares.append(mark_done)
    async with TestClient(TestServer(app)) as raw:
        params = {"message": message({"data": {"op": "hang", "gate": "g"}})}
        stream = await SSEReader.open(raw, "SendStreamingMessage", params)
        task_id = (await stream.next())["result"]["task"]["id"]
        await gates.wait_entered("g")
        stream.response.close()  # the client goes away mid-stream
        async with asyncio.timeout(5):
            await handler_done.wait()
        record = app[SERVICE_KEY].tasks.get(task_id, SHARED_PRINCIPAL)
        assert record is not None
        assert not record.subscribers
        assert not record.terminal  # the task itself keeps running
        gates.open("g")
        async with asyncio.timeout(5):
            await record.done.wait()
        assert record.state == "completed"
        assert adapter.session_for_task(task_id) is None


async def test_service_stop_cancels_running_tasks(make_adapter: Any, gates: Gates) -> None:
    from penguiflow_a2a.service import A2AService

    adapter = make_adapter()
    await adapter.start()
    service = A2AService(adapter)
    params = {
        "message": message({"data": {"op": "hang", "gate": "g"}}),
        "configuration": {"returnImmediately": True},
    }
    async with asyncio.timeout(5):
        record = await service.send(params, SHARED_PRINCIPAL, blocking_key="returnImmediately")
        await gates.wait_entered("g")
        await service.stop()
    assert record.state == "canceled"
    assert record.done.is_set()
    assert len(service.tasks) == 1


async def test_emit_failure_fails_the_task(gates: Gates) -> None:
    from a2a_support import AGENT_URL, build_flow, make_card

    from penguiflow import Node
    from penguiflow_a2a import A2AServerAdapter
    from penguiflow_a2a.service import A2AService

    async def stray(message: Any, ctx: Any) -> None:
        return None

    # The target is not an ingress node of the flow: emit raises KeyError.
    adapter = A2AServerAdapter(
        build_flow(gates), agent_card=make_card(), agent_url=AGENT_URL, target=Node(stray)
    )
    await adapter.start()
    try:
        service = A2AService(adapter)
        async with asyncio.timeout(5):
            record = await service.send(
                {"message": message()}, SHARED_PRINCIPAL, blocking_key="returnImmediately"
            )
    finally:
        await adapter.stop()
    assert record.state == "failed"
    assert record.status_message is not None
    assert record.status_message["parts"][0]["text"].startswith("flow execution failed:")


async def test_subscribing_to_a_finished_record_ends_at_once() -> None:
    from penguiflow_a2a.tasks import TaskRecord

    record = TaskRecord(id="t", context_id="c", state="completed", updated=0.0)
    assert record.subscribe().get_nowait() is None


async def test_deeply_nested_json_is_a_parse_error(client: TestClient[Any, Any]) -> None:
    reply = await post_raw(client, b"[" * 100_000 + b"]" * 100_000, "application/json")
    assert reply["error"]["code"] == -32700


async def test_a_request_id_with_a_lone_surrogate_is_not_echoed(
    client: TestClient[Any, Any],
) -> None:
    body = (
        b'{"jsonrpc":"2.0","id":"\\ud800","method":"SendMessage","params":{"message":'
        b'{"messageId":"m","role":"ROLE_USER","parts":[{"text":"hi"}]}}}'
    )
    async with asyncio.timeout(5):
        response = await client.post("/", data=body, headers={"Content-Type": "application/json"})
        raw = await response.read()
    reply = json.loads(raw)
    # The reply re-encodes as UTF-8 (strict JSON): no lone surrogate inside.
    json.dumps(reply, ensure_ascii=False).encode("utf-8")
    assert reply["id"] is None
    assert reply["error"]["code"] == -32602
