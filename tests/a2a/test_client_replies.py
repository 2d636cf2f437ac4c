"""A2AHttpTransport reading replies of other agents: direct messages, odd and broken bodies."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from penguiflow import Headers, Message
from penguiflow.remote import RemoteCallRequest
from penguiflow_a2a.client import A2AHttpTransport, A2ARemoteError


class ScriptedAgent:
    """Answers each POST with the next scripted (content type, body)."""

    def __init__(self) -> None:
        self.replies: list[tuple[str, bytes]] = []
        self.requests: list[Any] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        content_type, body = self.replies.pop(0)
        return web.Response(body=body, content_type=content_type)


@pytest.fixture
async def agent() -> AsyncIterator[tuple[ScriptedAgent, str, A2AHttpTransport]]:
    scripted = ScriptedAgent()
    app = web.Application()
    app.router.add_post("/", scripted.handle)
    server = TestServer(app)
    await server.start_server()
    transport = A2AHttpTransport()
    try:
        yield scripted, str(server.make_url("/")), transport
    finally:
        await transport.aclose()
        await server.close()


def request(url: str) -> RemoteCallRequest:
    return RemoteCallRequest(
        message=Message(payload=[1, 2], headers=Headers(tenant="a")), skill="s", agent_url=url
    )


def rpc(result: Any) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": "1", "result": result}).encode()


def sse(*frames: str) -> tuple[str, bytes]:
    return "text/event-stream", "".join(frames).encode()


async def stream_all(transport: A2AHttpTransport, url: str) -> list[Any]:
    async with asyncio.timeout(5):
        return [event async for event in transport.stream(request(url))]


async def test_send_reads_a_direct_message_reply(agent: Any) -> None:
    scripted, url, transport = agent
    message = {"messageId": "r", "role": "ROLE_AGENT", "parts": [{"text": "hi"}], "taskId": "t"}
    scripted.replies.append(("application/json", rpc({"message": message})))
    async with asyncio.timeout(5):
        result = await transport.send(request(url))
    assert (result.result, result.task_id) == ("hi", "t")
    sent = scripted.requests[0]["params"]["message"]
    assert sent["parts"] == [{"data": [1, 2]}]
    assert sent["metadata"]["headers"]["tenant"] == "a"


async def test_0_3_send_wraps_scalar_data(agent: Any) -> None:
    scripted, url, _ = agent
    task = {"kind": "task", "id": "t", "contextId": "c", "status": {"state": "completed"}}
    scripted.replies.append(("application/json", rpc(task)))
    async with A2AHttpTransport(version="0.3") as transport, asyncio.timeout(5):
        result = await transport.send(request(url))
    assert result.task_id == "t"
    part = scripted.requests[0]["params"]["message"]["parts"][0]
    assert part == {"kind": "data", "data": {"value": [1, 2]}}
    assert scripted.requests[0]["method"] == "message/send"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        pytest.param(b"{not json", "invalid JSON", id="not-json"),
        pytest.param(b"[1]", "invalid JSON-RPC reply", id="not-object"),
        pytest.param(b'{"jsonrpc": "2.0", "id": 1}', "without result", id="no-result"),
    ],
)
async def test_send_rejects_broken_replies(agent: Any, body: bytes, text: str) -> None:
    scripted, url, transport = agent
    scripted.replies.append(("application/json", body))
    with pytest.raises(A2ARemoteError, match=text):
        async with asyncio.timeout(5):
            await transport.send(request(url))


async def test_stream_reads_a_direct_message_and_sse_details(agent: Any) -> None:
    scripted, url, transport = agent
    message = {"kind": "message", "messageId": "r", "parts": [{"kind": "text", "text": "yo"}]}
    scripted.replies.append(
        sse(
            ": a comment\n\n",
            "event: message\n",
            f"data: {json.dumps({'jsonrpc': '2.0', 'id': 1, 'result': message})}",
        )
    )
    events = await stream_all(transport, url)
    assert [(e.result, e.done) for e in events] == [("yo", True)]


async def test_stream_error_event_raises(agent: Any) -> None:
    scripted, url, transport = agent
    error = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32001, "message": "gone"}}
    scripted.replies.append(sse(f"event: error\ndata: {json.dumps(error)}\n\n"))
    with pytest.raises(A2ARemoteError) as raised:
        await stream_all(transport, url)
    assert raised.value.code == -32001


async def test_stream_skips_updates_without_content(agent: Any) -> None:
    scripted, url, transport = agent
    working = {"statusUpdate": {"taskId": "t", "status": {"state": "TASK_STATE_WORKING"}}}
    scripted.replies.append(sse(f"data: {json.dumps({'result': working})}\n\n"))
    assert await stream_all(transport, url) == []


async def test_stream_with_a_plain_json_success_ends_quietly(agent: Any) -> None:
    scripted, url, transport = agent
    scripted.replies.append(("application/json", rpc({"task": {"id": "t", "status": {}}})))
    assert await stream_all(transport, url) == []
