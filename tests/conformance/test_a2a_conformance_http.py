"""Conformance: spec/a2a.md "HTTP contract" — every 2.2.5 route, status code and error body.

The app runs in-process on 127.0.0.1 (aiohttp's test server); requests are made as a
2.2.5 client would.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import decimal
import enum
import inspect
import ipaddress
import json
import pathlib
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel, ValidationError

from penguiflow import Headers, Message, Node, NodePolicy, create
from penguiflow_a2a import A2AAgentCard, A2AServerAdapter, A2ASkill, create_a2a_app

CARD = A2AAgentCard(
    name="Main Agent",
    description="Primary entrypoint",
    version="2.1.0",
    skills=[A2ASkill(name="orchestrate", description="Handles orchestration")],
)


class Behaviour:
    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()

    async def main(self, message: Message, ctx: Any) -> Any:
        op = message.payload.get("op") if isinstance(message.payload, dict) else None
        if op == "stream":
            await ctx.emit_chunk(parent=message, text="thinking...")
            return {"result": "done"}
        if op == "fail":
            raise ValueError("boom")
        if op == "hang":
            self.entered.set()
            await self.gate.wait()
            return {"result": "late"}
        return {"result": message.payload}


class DuckFlow:
    """Counts lifecycle calls; emit may fail to provoke a 500."""

    def __init__(self) -> None:
        self.run_calls = 0
        self.stop_calls = 0
        self.emit_error: BaseException | None = None
        self._never = asyncio.Event()

    def run(self, *, registry: Any = None) -> None:
        self.run_calls += 1

    async def stop(self) -> None:
        self.stop_calls += 1

    async def emit(self, message: Any, to: Any = None) -> None:
        if self.emit_error is not None:
            raise self.emit_error

    async def fetch(self, from_: Any = None) -> Any:
        await self._never.wait()

    async def cancel(self, trace_id: str) -> bool:
        return False

    async def save_remote_binding(self, binding: Any) -> None:
        return None

    def ensure_trace_event(self, trace_id: str) -> asyncio.Event:
        return asyncio.Event()


@pytest.fixture
def behaviour() -> Behaviour:
    return Behaviour()


@pytest.fixture
async def make_client(
    behaviour: Behaviour,
) -> AsyncIterator[Callable[..., Any]]:
    clients: list[TestClient[Any, Any]] = []

    async def factory(adapter: A2AServerAdapter, **app_kwargs: Any) -> TestClient[Any, Any]:
        client: TestClient[Any, Any] = TestClient(
            TestServer(create_a2a_app(adapter, **app_kwargs), host="127.0.0.1")
        )
        clients.append(client)
        async with asyncio.timeout(5):
            await client.start_server()
        return client

    yield factory
    behaviour.gate.set()
    for client in clients:
        async with asyncio.timeout(10):
            await client.close()


def flow_adapter(behaviour: Behaviour) -> A2AServerAdapter:
    node = Node(behaviour.main, name="main", policy=NodePolicy(validate="none"))
    flow = create(node.to(), emit_errors_to_rookery=True)
    return A2AServerAdapter(flow, agent_card=CARD, agent_url="https://agent.example")


@pytest.fixture
async def client(make_client: Callable[..., Any], behaviour: Behaviour) -> TestClient[Any, Any]:
    made: TestClient[Any, Any] = await make_client(flow_adapter(behaviour))
    return made


async def post(client: TestClient[Any, Any], path: str, body: Any) -> tuple[int, Any]:
    async with asyncio.timeout(5):
        response = await client.post(path, json=body)
        return response.status, await response.json()


BODY = {"payload": {"q": 1}, "headers": {"tenant": "acme"}}


# -- app -----------------------------------------------------------------------------


def test_create_a2a_app_signature() -> None:
    params = inspect.signature(create_a2a_app).parameters
    assert next(iter(params)) == "adapter"
    assert params["include_docs"].default is True
    assert params["include_docs"].kind is inspect.Parameter.KEYWORD_ONLY


async def test_app_metadata_from_card(behaviour: Behaviour) -> None:
    app = create_a2a_app(flow_adapter(behaviour))
    assert app.title == "Main Agent"  # type: ignore[attr-defined]
    assert app.description == "Primary entrypoint"  # type: ignore[attr-defined]
    assert app.version == "2.1.0"  # type: ignore[attr-defined]


async def test_lifecycle_starts_and_stops_the_adapter_once(
    make_client: Callable[..., Any],
) -> None:
    flow = DuckFlow()
    adapter = A2AServerAdapter(flow, agent_card=CARD, agent_url="u")
    client = await make_client(adapter)
    assert flow.run_calls == 1
    assert flow.stop_calls == 0
    async with asyncio.timeout(10):
        await client.close()
    assert (flow.run_calls, flow.stop_calls) == (1, 1)


async def test_docs_routes_absent_without_docs(
    make_client: Callable[..., Any], behaviour: Behaviour
) -> None:
    client = await make_client(flow_adapter(behaviour), include_docs=False)
    async with asyncio.timeout(5):
        for path in ("/docs", "/openapi.json"):
            response = await client.get(path)
            assert response.status == 404, path


# -- GET /agent -----------------------------------------------------------------------


async def test_get_agent_returns_the_card(client: TestClient[Any, Any]) -> None:
    async with asyncio.timeout(5):
        response = await client.get("/agent")
        assert response.status == 200
        assert response.content_type == "application/json"
        assert await response.json() == CARD.to_payload()


# -- POST /message/send -----------------------------------------------------------------


async def test_send_success(client: TestClient[Any, Any]) -> None:
    status, body = await post(client, "/message/send", {**BODY, "taskId": "T", "meta": {"m": 1}})
    assert status == 200
    assert body == {
        "status": "succeeded",
        "taskId": "T",
        "contextId": body["traceId"],
        "traceId": body["traceId"],
        "output": {"result": {"q": 1}},
    }


async def test_send_accepts_field_names(client: TestClient[Any, Any]) -> None:
    status, body = await post(client, "/message/send", {**BODY, "task_id": "TT", "trace_id": "X"})
    assert status == 200
    assert (body["taskId"], body["traceId"]) == ("TT", "X")


async def test_send_failed_status_is_200(client: TestClient[Any, Any]) -> None:
    status, body = await post(client, "/message/send", {**BODY, "payload": {"op": "fail"}})
    assert status == 200
    assert body["status"] == "failed"
    assert body["error"]["code"] == "NODE_EXCEPTION"


async def test_send_cancelled_status_is_200(
    client: TestClient[Any, Any], behaviour: Behaviour
) -> None:
    pending = asyncio.create_task(
        post(client, "/message/send", {**BODY, "payload": {"op": "hang"}, "taskId": "C"})
    )
    async with asyncio.timeout(5):
        await behaviour.entered.wait()
        status, cancel = await post(client, "/tasks/cancel", {"taskId": "C"})
        send_status, body = await pending
    assert status == 200
    assert cancel["cancelled"] is True
    assert list(cancel) == ["taskId", "cancelled", "traceId", "contextId"]
    assert send_status == 200
    assert body == {
        "status": "cancelled",
        "taskId": "C",
        "contextId": body["traceId"],
        "traceId": body["traceId"],
    }


async def test_send_duplicate_task_is_409(
    client: TestClient[Any, Any], behaviour: Behaviour
) -> None:
    pending = asyncio.create_task(
        post(client, "/message/send", {**BODY, "payload": {"op": "hang"}, "taskId": "D"})
    )
    async with asyncio.timeout(5):
        await behaviour.entered.wait()
        status, body = await post(client, "/message/send", {**BODY, "taskId": "D"})
        stream_status, stream_body = await post(client, "/message/stream", {**BODY, "taskId": "D"})
        behaviour.gate.set()
        await pending
    assert (status, body) == (409, {"detail": "task 'D' already active"})
    assert (stream_status, stream_body) == (409, {"detail": "task 'D' already active"})


async def test_send_missing_tenant_is_422_with_text_detail(client: TestClient[Any, Any]) -> None:
    try:
        Headers(**{})
    except ValidationError as exc:
        expected = str(exc)
    status, body = await post(client, "/message/send", {"payload": 1})
    assert (status, body) == (422, {"detail": expected})
    stream_status, stream_body = await post(client, "/message/stream", {"payload": 1})
    assert (stream_status, stream_body) == (422, {"detail": expected})


@pytest.mark.parametrize("path", ["/message/send", "/message/stream", "/tasks/cancel"])
async def test_invalid_body_is_422_with_error_list(client: TestClient[Any, Any], path: str) -> None:
    status, body = await post(client, path, {"headers": {"tenant": "acme"}})
    assert status == 422
    assert list(body) == ["detail"]
    assert isinstance(body["detail"], list)
    assert body["detail"]
    assert all("loc" in error and "msg" in error for error in body["detail"])


@pytest.mark.parametrize("path", ["/message/send", "/message/stream", "/tasks/cancel"])
async def test_malformed_json_is_422(client: TestClient[Any, Any], path: str) -> None:
    async with asyncio.timeout(5):
        response = await client.post(
            path, data=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert response.status == 422
        body = await response.json()
    assert isinstance(body["detail"], list)


async def test_unexpected_failure_is_500(make_client: Callable[..., Any]) -> None:
    flow = DuckFlow()
    flow.emit_error = ValueError("kaput")
    client = await make_client(A2AServerAdapter(flow, agent_card=CARD, agent_url="u"))
    status, body = await post(client, "/message/send", BODY)
    assert (status, body) == (500, {"detail": "flow execution failed: kaput"})


async def test_routes_answer_503_when_the_adapter_is_stopped(
    make_client: Callable[..., Any], behaviour: Behaviour
) -> None:
    adapter = flow_adapter(behaviour)
    client = await make_client(adapter)
    await adapter.stop()
    expected = (503, {"detail": "flow is not running"})
    assert await post(client, "/message/send", BODY) == expected
    assert await post(client, "/message/stream", BODY) == expected
    assert await post(client, "/tasks/cancel", {"taskId": "x"}) == expected


# -- POST /message/stream ----------------------------------------------------------------


async def test_stream_response_headers_and_body(client: TestClient[Any, Any]) -> None:
    request = {**BODY, "payload": {"op": "stream"}, "taskId": "S", "contextId": "X"}
    async with asyncio.timeout(5):
        response = await client.post("/message/stream", json=request)
        raw = await response.read()
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-A2A-Task-Id"] == "S"
    assert response.headers["X-A2A-Context-Id"] == "X"
    ids = '"taskId": "S", "contextId": "X"'
    assert raw.decode() == (
        f'event: status\ndata: {{"status": "accepted", {ids}}}\n\n'
        f"event: chunk\nid: 0\ndata: thinking...\ndata: {{{ids}}}\n\n"
        f'event: artifact\ndata: {{{ids}, "output": {{"result": "done"}}}}\n\n'
        f"event: done\ndata: {{{ids}}}\n\n"
    )


async def test_stream_default_ids_are_the_trace_id(client: TestClient[Any, Any]) -> None:
    async with asyncio.timeout(5):
        response = await client.post("/message/stream", json={**BODY, "traceId": "TRX"})
        raw = await response.read()
    assert response.headers["X-A2A-Task-Id"] == "TRX"
    assert response.headers["X-A2A-Context-Id"] == "TRX"
    assert raw.decode().startswith(
        'event: status\ndata: {"status": "accepted", "taskId": "TRX", "contextId": "TRX"}\n\n'
    )


async def test_stream_cancel_over_http(client: TestClient[Any, Any], behaviour: Behaviour) -> None:
    request = {**BODY, "payload": {"op": "hang"}, "taskId": "K", "contextId": "Q"}
    async with asyncio.timeout(5):
        response = await client.post("/message/stream", json=request)
        first = await response.content.readuntil(b"\n\n")
        await behaviour.entered.wait()
        status, cancel = await post(client, "/tasks/cancel", {"taskId": "K"})
        rest = await response.read()
    assert (
        first == b'event: status\ndata: {"status": "accepted", "taskId": "K", "contextId": "Q"}\n\n'
    )
    assert (status, cancel["cancelled"]) == (200, True)
    assert rest.decode() == (
        'event: error\ndata: {"taskId": "K", "contextId": "Q", "code": "TRACE_CANCELLED", '
        '"message": "Trace cancelled"}\n\n'
        'event: done\ndata: {"taskId": "K", "contextId": "Q"}\n\n'
    )


# -- POST /tasks/cancel -------------------------------------------------------------------


async def test_cancel_unknown_task(client: TestClient[Any, Any]) -> None:
    assert await post(client, "/tasks/cancel", {"taskId": "nope"}) == (
        200,
        {"taskId": "nope", "cancelled": False},
    )


async def test_cancel_accepts_field_name(client: TestClient[Any, Any]) -> None:
    assert await post(client, "/tasks/cancel", {"task_id": "nope"}) == (
        200,
        {"taskId": "nope", "cancelled": False},
    )


async def test_json_bodies_are_plain_json(client: TestClient[Any, Any]) -> None:
    async with asyncio.timeout(5):
        response = await client.post("/tasks/cancel", json={"taskId": "z"})
        text = await response.text()
    assert json.loads(text) == {"taskId": "z", "cancelled": False}
    assert response.content_type == "application/json"


def test_missing_server_stack_raises_runtime_error(
    monkeypatch: pytest.MonkeyPatch, behaviour: Behaviour
) -> None:
    adapter = flow_adapter(behaviour)
    monkeypatch.setitem(sys.modules, "aiohttp", None)  # import aiohttp -> ImportError
    for name in [m for m in sys.modules if m.startswith("penguiflow_a2a.")]:
        if name not in ("penguiflow_a2a.server", "penguiflow_a2a.app", "penguiflow_a2a.adapter"):
            monkeypatch.delitem(sys.modules, name)
    with pytest.raises(RuntimeError, match=re.escape("penguiflow[a2a-server]")):
        create_a2a_app(adapter)


def test_package_imports_without_the_server_stack() -> None:
    code = (
        "import sys; sys.modules['aiohttp'] = None\n"
        "import penguiflow_a2a\n"
        "from penguiflow_a2a import A2AServerAdapter, A2AAgentCard\n"
        "from penguiflow_a2a.server import A2ARequestError\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


async def test_readme_a2a_snippet_serves_send_and_stream(make_client: Callable[..., Any]) -> None:
    """The seed README example, verbatim (default NodePolicy, no registry)."""

    async def orchestrate(message: Message, ctx: Any) -> Any:
        await ctx.emit_chunk(parent=message, text="thinking...")
        return {"result": "done"}

    node = Node(orchestrate, name="main")
    flow = create(node.to())
    card = A2AAgentCard(
        name="Main Agent",
        description="Primary entrypoint for orchestration",
        version="2.1.0",
        skills=[A2ASkill(name="orchestrate", description="Handles orchestration")],
    )
    adapter = A2AServerAdapter(flow, agent_card=card, agent_url="https://agent.example")
    client = await make_client(adapter)
    status, body = await post(client, "/message/send", {**BODY, "taskId": "R"})
    assert status == 200
    assert body["output"] == {"result": "done"}
    async with asyncio.timeout(5):
        response = await client.post("/message/stream", json={**BODY, "taskId": "R2"})
        raw = (await response.read()).decode()
    assert [line for line in raw.split("\n") if line.startswith("event: ")] == [
        "event: status",
        "event: chunk",
        "event: artifact",
        "event: done",
    ]


class Stamped(BaseModel):
    when: datetime.datetime
    ident: uuid.UUID
    day: datetime.date
    tags: set[str]


async def test_send_output_is_encoded_like_fastapi_did(make_client: Callable[..., Any]) -> None:
    """2.2.5 served handle_send's dict through FastAPI's jsonable_encoder."""
    ident = uuid.UUID("12345678-1234-5678-1234-567812345678")

    async def stamped(message: Message, ctx: Any) -> Stamped:
        return Stamped(
            when=datetime.datetime(2024, 5, 17, 12, 30, 5),
            ident=ident,
            day=datetime.date(2024, 5, 17),
            tags={"one"},
        )

    flow = create(Node(stamped, name="stamped", policy=NodePolicy(validate="none")).to())
    client = await make_client(A2AServerAdapter(flow, agent_card=CARD, agent_url="u"))
    status, body = await post(client, "/message/send", BODY)
    assert status == 200
    assert body["output"] == {
        "when": "2024-05-17T12:30:05",
        "ident": "12345678-1234-5678-1234-567812345678",
        "day": "2024-05-17",
        "tags": ["one"],
    }


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Plain:
    def __init__(self) -> None:
        self.a = 1


class Pairs:
    """Iterable of key/value pairs: FastAPI tried ``dict(obj)`` before ``vars``."""

    __slots__ = ()

    def __iter__(self) -> Any:
        return iter([("k", "v")])


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        pytest.param(Colour.RED, "red", id="enum"),
        pytest.param(pathlib.PurePosixPath("/a/b"), "/a/b", id="path"),
        pytest.param(Point(1, 2), {"x": 1, "y": 2}, id="dataclass"),
        pytest.param(b"bytes", "bytes", id="bytes"),
        pytest.param(datetime.timedelta(minutes=1, seconds=30), 90.0, id="timedelta"),
        pytest.param(decimal.Decimal("3"), 3, id="decimal-int"),
        pytest.param(decimal.Decimal("2.5"), 2.5, id="decimal-float"),
        pytest.param(datetime.time(1, 2, 3), "01:02:03", id="time"),
        pytest.param(ipaddress.ip_address("10.0.0.1"), "10.0.0.1", id="ip"),
        pytest.param(re.compile("a+b"), "a+b", id="pattern"),
        pytest.param(frozenset(), [], id="frozenset"),
        pytest.param(collections.deque([1]), [1], id="deque"),
        pytest.param((1, "é"), [1, "é"], id="tuple"),
        pytest.param({Colour.RED: 1}, {"red": 1}, id="enum-key"),
        pytest.param(Plain(), {"a": 1}, id="vars"),
        pytest.param(Pairs(), {"k": "v"}, id="pairs"),
    ],
)
async def test_send_output_encoding_per_type(
    make_client: Callable[..., Any], value: Any, encoded: Any
) -> None:
    async def returns(message: Message, ctx: Any) -> Any:
        return {"value": value}

    flow = create(Node(returns, name="returns", policy=NodePolicy(validate="none")).to())
    client = await make_client(A2AServerAdapter(flow, agent_card=CARD, agent_url="u"))
    status, body = await post(client, "/message/send", BODY)
    assert status == 200
    assert body["output"] == {"value": encoded}


async def test_unencodable_output_is_a_server_error(make_client: Callable[..., Any]) -> None:
    async def returns(message: Message, ctx: Any) -> Any:
        return {"value": object()}

    flow = create(Node(returns, name="returns", policy=NodePolicy(validate="none")).to())
    client = await make_client(A2AServerAdapter(flow, agent_card=CARD, agent_url="u"))
    async with asyncio.timeout(5):
        response = await client.post("/message/send", json=BODY)
    assert response.status == 500


async def test_json_text_is_compact_and_keeps_non_ascii(client: TestClient[Any, Any]) -> None:
    async with asyncio.timeout(5):
        response = await client.post("/tasks/cancel", json={"taskId": "pingüino"})
        raw = await response.read()
    assert raw == '{"taskId":"pingüino","cancelled":false}'.encode()
