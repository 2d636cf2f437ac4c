"""The 2.2.5 routes over HTTP: /agent, /message/send, /message/stream, /tasks/cancel."""

from __future__ import annotations

import asyncio
from typing import Any

from a2a_support import Gates, make_card
from aiohttp.test_utils import TestClient

from penguiflow_a2a import create_a2a_app
from penguiflow_a2a._aiohttp_app import ADAPTER_KEY

BODY = {"payload": {"value": "penguins"}, "headers": {"tenant": "acme"}}


async def read_sse(response: Any) -> list[str]:
    async with asyncio.timeout(5):
        text = (await response.read()).decode()
    return [frame for frame in text.split("\n\n") if frame]


async def test_get_agent_returns_the_2_2_5_card(client: TestClient[Any, Any]) -> None:
    response = await client.get("/agent")
    assert response.status == 200
    assert await response.json() == make_card().to_payload()


async def test_send_returns_succeeded_reply(client: TestClient[Any, Any]) -> None:
    response = await client.post("/message/send", json=BODY)
    assert response.status == 200
    reply = await response.json()
    assert reply["status"] == "succeeded"
    assert reply["output"] == {"echo": "penguins"}


async def test_send_accepts_snake_case_fields(client: TestClient[Any, Any]) -> None:
    response = await client.post("/message/send", json={**BODY, "task_id": "t1"})
    assert (await response.json())["taskId"] == "t1"


async def test_send_failed_status_is_http_200(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/message/send", json={"payload": {"op": "fail"}, "headers": {"tenant": "a"}}
    )
    assert response.status == 200
    assert (await response.json())["status"] == "failed"


async def test_send_without_payload_is_a_422_with_body_location(
    client: TestClient[Any, Any],
) -> None:
    response = await client.post("/message/send", json={"headers": {"tenant": "a"}})
    assert response.status == 422
    detail = (await response.json())["detail"]
    assert detail[0]["type"] == "missing"
    assert detail[0]["loc"] == ["body", "payload"]


async def test_send_without_tenant_is_a_422_with_text_detail(client: TestClient[Any, Any]) -> None:
    response = await client.post("/message/send", json={"payload": 1})
    assert response.status == 422
    assert "tenant" in (await response.json())["detail"]


async def test_send_with_malformed_json_is_a_422(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/message/send", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status == 422
    assert (await response.json())["detail"][0]["type"] == "json_invalid"


async def test_send_with_wrong_content_type_is_a_422(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/message/send", data=b"payload=1", headers={"Content-Type": "text/plain"}
    )
    assert response.status == 422
    assert (await response.json())["detail"][0]["loc"] == ["body"]


async def test_oversized_body_is_a_413(make_adapter: Any, make_client: Any) -> None:
    client = await make_client(make_adapter(), max_body_bytes=64)
    response = await client.post("/message/send", json={**BODY, "meta": {"x": "y" * 100}})
    assert response.status == 413
    assert "exceeds 64 bytes" in (await response.json())["detail"]


async def test_oversized_chunked_body_is_a_413(make_adapter: Any, make_client: Any) -> None:
    client = await make_client(make_adapter(), max_body_bytes=64)

    async def body() -> Any:
        yield b'{"payload": "'
        yield b"x" * 100
        yield b'"}'

    response = await client.post(
        "/message/send", data=body(), headers={"Content-Type": "application/json"}
    )
    assert response.status == 413


async def test_duplicate_task_is_a_409(client: TestClient[Any, Any], gates: Gates) -> None:
    hang = {"payload": {"op": "hang", "gate": "g"}, "headers": {"tenant": "a"}, "taskId": "t"}
    first = asyncio.create_task(client.post("/message/send", json=hang))
    await gates.wait_entered("g")
    response = await client.post("/message/send", json={**BODY, "taskId": "t"})
    assert response.status == 409
    assert await response.json() == {"detail": "task 't' already active"}
    gates.open("g")
    async with asyncio.timeout(5):
        assert (await first).status == 200


async def test_stream_sends_sse_with_headers(client: TestClient[Any, Any]) -> None:
    body = {"payload": {"op": "chunks", "texts": ["a"]}, "headers": {"tenant": "a"}, "taskId": "t"}
    response = await client.post("/message/stream", json=body)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-A2A-Task-Id"] == "t"
    assert response.headers["X-A2A-Context-Id"]
    frames = await read_sse(response)
    assert [frame.split("\n")[0] for frame in frames] == [
        "event: status",
        "event: done",
        "event: artifact",
        "event: done",
    ]


async def test_stream_preparation_error_is_json(client: TestClient[Any, Any]) -> None:
    response = await client.post("/message/stream", json={"payload": 1})
    assert response.status == 422
    assert "tenant" in (await response.json())["detail"]


async def test_stream_with_invalid_body_is_a_422(client: TestClient[Any, Any]) -> None:
    response = await client.post("/message/stream", json={"headers": {}})
    assert response.status == 422


async def test_cancel_route_cancels_a_running_stream(
    client: TestClient[Any, Any], gates: Gates
) -> None:
    body = {"payload": {"op": "hang", "gate": "g"}, "headers": {"tenant": "a"}, "taskId": "t"}
    response = await client.post("/message/stream", json=body)
    await gates.wait_entered("g")
    cancel = await client.post("/tasks/cancel", json={"taskId": "t"})
    assert (await cancel.json())["cancelled"] is True
    frames = await read_sse(response)
    assert '"code": "TRACE_CANCELLED"' in frames[1]
    assert frames[2].startswith("event: done")


async def test_cancel_unknown_task(client: TestClient[Any, Any]) -> None:
    response = await client.post("/tasks/cancel", json={"taskId": "x"})
    assert await response.json() == {"taskId": "x", "cancelled": False}


async def test_cancel_with_invalid_body_is_a_422(client: TestClient[Any, Any]) -> None:
    response = await client.post("/tasks/cancel", json={})
    assert response.status == 422


async def test_routes_answer_503_when_the_adapter_is_stopped(
    client: TestClient[Any, Any],
) -> None:
    await client.app[ADAPTER_KEY].stop()
    response = await client.post("/message/send", json=BODY)
    assert response.status == 503
    assert await response.json() == {"detail": "flow is not running"}
    cancel = await client.post("/tasks/cancel", json={"taskId": "t"})
    assert cancel.status == 503


async def test_client_leaving_mid_stream_cancels_the_trace_and_releases_the_task(
    make_adapter: Any, make_client: Any, gates: Gates
) -> None:
    adapter = make_adapter()
    client = await make_client(adapter)
    body = {"payload": {"op": "hang", "gate": "g"}, "headers": {"tenant": "a"}, "taskId": "t"}
    response = await client.post("/message/stream", json=body)
    await gates.wait_entered("g")
    assert adapter.session_for_task("t") is not None
    response.close()  # the client goes away
    async with asyncio.timeout(5):
        await gates.cancelled("g").wait()
        await adapter.flow.wait_idle()
    assert adapter.session_for_task("t") is None


async def test_app_exposes_card_metadata(make_adapter: Any) -> None:
    app = create_a2a_app(make_adapter())
    assert (app.title, app.description, app.version) == (  # type: ignore[attr-defined]
        "Penguin Agent",
        "Answers penguin questions",
        "2.0.0",
    )


async def test_send_without_content_type_is_read_as_json(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/message/send",
        data=b'{"payload": 1, "headers": {"tenant": "a"}}',
        skip_auto_headers={"Content-Type"},
    )
    assert response.status == 200
    assert (await response.json())["output"] == {"echo": 1}


async def test_send_with_a_json_suffix_type_is_accepted(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/message/send",
        data=b'{"payload": 2, "headers": {"tenant": "a"}}',
        headers={"Content-Type": "application/a2a+json"},
    )
    assert (await response.json())["output"] == {"echo": 2}
