"""InMemoryRemoteTransport: the scripted fake used to test remote nodes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from penguiflow.remote import RemoteCallRequest, RemoteCallResult, RemoteStreamEvent
from penguiflow.testkit._remote import HOLD, InMemoryRemoteTransport, RemoteCancel


def _request() -> RemoteCallRequest:
    return RemoteCallRequest(message=object(), skill="s", agent_url="http://a")  # type: ignore[arg-type]


async def _collect(transport: InMemoryRemoteTransport) -> list[Any]:
    return [event async for event in transport.stream(_request())]


async def test_send_returns_scripted_results_in_order() -> None:
    transport = InMemoryRemoteTransport()
    transport.add_result(RemoteCallResult(result=1))
    transport.add_result(RemoteCallResult(result=2))
    assert (await transport.send(_request())).result == 1
    assert (await transport.send(_request())).result == 2
    assert len(transport.requests) == 2


async def test_send_raises_a_scripted_exception() -> None:
    transport = InMemoryRemoteTransport()
    transport.add_result(ConnectionError("refused"))
    with pytest.raises(ConnectionError, match="refused"):
        await transport.send(_request())


async def test_send_falls_back_to_the_handler() -> None:
    async def echo(request: RemoteCallRequest) -> RemoteCallResult:
        return RemoteCallResult(result=request.skill)

    assert (await InMemoryRemoteTransport(echo).send(_request())).result == "s"


async def test_send_without_script_or_handler_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="no scripted result"):
        await InMemoryRemoteTransport().send(_request())


async def test_stream_plays_events_then_raises_scripted_error() -> None:
    transport = InMemoryRemoteTransport()
    transport.add_stream([RemoteStreamEvent(text="a"), ValueError("mid-stream")])
    stream = transport.stream(_request())
    assert (await anext(stream)).text == "a"
    with pytest.raises(ValueError, match="mid-stream"):
        await anext(stream)


async def test_stream_without_script_is_a_lookup_error() -> None:
    with pytest.raises(LookupError, match="no scripted stream"):
        await _collect(InMemoryRemoteTransport())


async def test_hold_parks_the_stream_until_cancelled() -> None:
    transport = InMemoryRemoteTransport()
    transport.add_stream([RemoteStreamEvent(text="a"), HOLD, RemoteStreamEvent(text="never")])
    consumer = asyncio.create_task(_collect(transport))
    async with asyncio.timeout(5):
        await transport.wait_held()
    assert not consumer.done()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert repr(HOLD) == "HOLD"


async def test_cancel_records_calls_and_can_fail() -> None:
    transport = InMemoryRemoteTransport()
    await transport.cancel(agent_url="http://a", task_id="t1")
    transport.cancel_error = RuntimeError("gone")
    with pytest.raises(RuntimeError, match="gone"):
        await transport.cancel(agent_url="http://a", task_id="t2")
    async with asyncio.timeout(5):
        cancels = await transport.wait_cancels(2)
    assert cancels == [RemoteCancel("http://a", "t1"), RemoteCancel("http://a", "t2")]


async def test_wait_requests_returns_once_requests_arrived() -> None:
    transport = InMemoryRemoteTransport()
    transport.add_result(RemoteCallResult(result=None))
    waiter = asyncio.create_task(transport.wait_requests(1))
    await transport.send(_request())
    async with asyncio.timeout(5):
        assert len(await waiter) == 1
