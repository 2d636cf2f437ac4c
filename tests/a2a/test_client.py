"""A2AHttpTransport against our server, and RemoteNode calling a served flow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from a2a_support import Gates
from aiohttp.test_utils import TestClient

from penguiflow import Headers, Message, NodePolicy, StreamChunk, create
from penguiflow.remote import RemoteCallRequest, RemoteNode
from penguiflow.testkit import InMemoryStateStore
from penguiflow_a2a.client import A2AHttpTransport, A2ARemoteError

TENANT = Headers(tenant="acme")


def request(
    payload: Any, url: str, *, card: dict[str, Any] | None = None, timeout_s: float | None = None
) -> RemoteCallRequest:
    message = Message(payload=payload, headers=TENANT, meta={"m": 1})
    return RemoteCallRequest(
        message=message,
        skill="echo",
        agent_url=url,
        agent_card=card,
        metadata=message.meta,
        timeout_s=timeout_s,
    )


def url_of(client: TestClient[Any, Any]) -> str:
    return str(client.make_url("/"))


@pytest.fixture
async def transport() -> AsyncIterator[A2AHttpTransport]:
    async with A2AHttpTransport() as opened:
        yield opened


async def collect(events: AsyncIterator[Any]) -> list[Any]:
    async with asyncio.timeout(5):
        return [event async for event in events]


# -- unary ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", "0.3"])
async def test_send_returns_result_and_remote_ids(
    client: TestClient[Any, Any], version: str
) -> None:
    async with A2AHttpTransport(version=version) as transport:
        async with asyncio.timeout(5):
            result = await transport.send(request({"value": 4}, url_of(client)))
    assert result.result == {"echo": 4}
    assert result.task_id
    assert result.context_id
    assert result.agent_url == url_of(client)


async def test_send_text_payload(client: TestClient[Any, Any], transport: A2AHttpTransport) -> None:
    async with asyncio.timeout(5):
        result = await transport.send(request("hello", url_of(client), timeout_s=5))
    assert result.result == {"echo": "hello"}


async def test_send_result_meta_comes_from_the_result_artifact(
    client: TestClient[Any, Any], transport: A2AHttpTransport
) -> None:
    async with asyncio.timeout(5):
        result = await transport.send(request({"op": "message"}, url_of(client)))
    assert result.result == {"wrapped": True}
    assert result.meta == {"handled": True}


async def test_send_to_a_failing_task_raises(
    client: TestClient[Any, Any], transport: A2AHttpTransport
) -> None:
    with pytest.raises(A2ARemoteError) as error:
        async with asyncio.timeout(5):
            await transport.send(request({"op": "fail"}, url_of(client)))
    assert error.value.state == "failed"
    assert "boom" in str(error.value)


async def test_http_error_raises_with_status(make_adapter: Any, make_client: Any) -> None:
    client = await make_client(make_adapter(), bearer_token="t")
    async with A2AHttpTransport() as transport:
        with pytest.raises(A2ARemoteError) as error:
            async with asyncio.timeout(5):
                await transport.send(request(1, url_of(client)))
    assert error.value.code == 401


async def test_bearer_token_is_sent(make_adapter: Any, make_client: Any) -> None:
    client = await make_client(make_adapter(), bearer_token="t")
    async with A2AHttpTransport(bearer_token="t") as transport:
        async with asyncio.timeout(5):
            result = await transport.send(request(1, url_of(client)))
    assert result.result == {"echo": 1}


async def test_agent_card_selects_the_endpoint(
    client: TestClient[Any, Any], transport: A2AHttpTransport
) -> None:
    card = await (await client.get("/.well-known/agent-card.json")).json()
    card_03 = {**card, "supportedInterfaces": card["supportedInterfaces"][1:2]}
    async with asyncio.timeout(5):
        result = await transport.send(request(2, "http://unused.invalid/", card=card_03))
    assert result.result == {"echo": 2}
    assert result.agent_url == url_of(client)


def test_unsupported_version_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported A2A version"):
        A2AHttpTransport(version="0.2")


# -- streaming --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1.0", "0.3"])
async def test_stream_yields_ids_chunks_and_result(
    client: TestClient[Any, Any], version: str
) -> None:
    async with A2AHttpTransport(version=version) as transport:
        events = await collect(
            transport.stream(request({"op": "chunks", "texts": ["a", "b"]}, url_of(client)))
        )
    first = events[0]
    assert (first.text, first.result) == (None, None)
    assert first.task_id
    assert first.context_id
    chunks = [(e.text, e.done) for e in events if e.text is not None]
    assert chunks == [("a", False), ("b", True)]
    assert events[-1].result == {"final": "ab"}


async def test_stream_of_a_failing_task_raises(
    client: TestClient[Any, Any], transport: A2AHttpTransport
) -> None:
    with pytest.raises(A2ARemoteError):
        await collect(transport.stream(request({"op": "fail"}, url_of(client))))


async def test_stream_upfront_error_raises(make_adapter: Any, make_client: Any) -> None:
    client = await make_client(make_adapter(default_headers=None))
    async with A2AHttpTransport() as transport:
        bad = request(1, url_of(client))
        bad.message.headers = Headers.model_construct(tenant=None)  # type: ignore[arg-type]
        with pytest.raises(A2ARemoteError) as error:
            await collect(transport.stream(bad))
    assert error.value.code == -32602


async def test_cancel_ends_the_remote_task(
    client: TestClient[Any, Any], transport: A2AHttpTransport, gates: Gates
) -> None:
    stream = transport.stream(request({"op": "hang", "gate": "g"}, url_of(client)))
    async with asyncio.timeout(5):
        first = await anext(stream)
        await gates.wait_entered("g")
        await transport.cancel(agent_url=url_of(client), task_id=first.task_id)
    with pytest.raises(A2ARemoteError) as error:
        await collect(stream)
    assert error.value.state == "canceled"


async def test_cancel_of_a_finished_task_is_quiet(
    client: TestClient[Any, Any], transport: A2AHttpTransport
) -> None:
    async with asyncio.timeout(5):
        result = await transport.send(request(1, url_of(client)))
        await transport.cancel(agent_url=url_of(client), task_id=result.task_id or "")


async def test_cancel_of_an_unknown_task_raises(
    client: TestClient[Any, Any], transport: A2AHttpTransport
) -> None:
    with pytest.raises(A2ARemoteError) as error:
        async with asyncio.timeout(5):
            await transport.cancel(agent_url=url_of(client), task_id="nope")
    assert error.value.code == -32001


# -- RemoteNode end to end -------------------------------------------------------------------


async def run_caller(node: Any, message: Message) -> list[Any]:
    """Run a one-node caller flow; return every Rookery item up to the first non-chunk."""
    flow = create(node.to())
    flow.run()
    items: list[Any] = []
    try:
        async with asyncio.timeout(5):
            await flow.emit(message)
            while True:
                item = await flow.fetch()
                items.append(item)
                if not isinstance(getattr(item, "payload", None), StreamChunk):
                    return items
    finally:
        await flow.stop()


async def test_remote_node_unary_call(
    client: TestClient[Any, Any], transport: A2AHttpTransport
) -> None:
    node = RemoteNode(
        transport=transport,
        skill="echo",
        agent_url=url_of(client),
        name="remote",
        policy=NodePolicy(validate="none"),
    )
    items = await run_caller(node, Message(payload={"value": "x"}, headers=TENANT))
    assert items == [{"echo": "x"}]


async def test_remote_node_streams_remote_chunks(
    client: TestClient[Any, Any], transport: A2AHttpTransport
) -> None:
    node = RemoteNode(
        transport=transport,
        skill="echo",
        agent_url=url_of(client),
        name="remote",
        policy=NodePolicy(validate="none"),
        streaming=True,
    )
    message = Message(payload={"op": "chunks", "texts": ["p", "q"]}, headers=TENANT)
    items = await run_caller(node, message)
    assert [item.payload.text for item in items[:-1]] == ["p", "q"]
    assert items[-1] == {"final": "pq"}


async def test_cancelling_the_caller_trace_cancels_the_remote_task(
    client: TestClient[Any, Any], transport: A2AHttpTransport, gates: Gates
) -> None:
    node = RemoteNode(
        transport=transport,
        skill="echo",
        agent_url=url_of(client),
        name="remote",
        policy=NodePolicy(validate="none"),
        streaming=True,
    )
    store = InMemoryStateStore()
    flow = create(node.to(), state_store=store)
    flow.run()
    message = Message(payload={"op": "hang", "gate": "g"}, headers=TENANT)
    try:
        async with asyncio.timeout(5):
            await flow.emit(message)
            await gates.wait_entered("g")
            # Cancellation can be mirrored once the remote task id is known.
            binding = await store.wait_for_binding(message.trace_id)
            assert await flow.cancel(message.trace_id)
            await gates.cancelled("g").wait()
    finally:
        await flow.stop()
    assert binding.agent_url == url_of(client)
    assert "remote_call_cancelled" in store.kinds(message.trace_id)


def test_transport_satisfies_the_remote_transport_protocol() -> None:
    from penguiflow.remote import RemoteTransport

    assert isinstance(A2AHttpTransport(), RemoteTransport)
