"""A2AServerAdapter without HTTP: lifecycle, send, stream, cancel, trace isolation."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from a2a_support import AGENT_URL, Gates, build_flow, make_card

from penguiflow.state import RemoteBinding
from penguiflow.testkit import InMemoryStateStore
from penguiflow_a2a import A2AMessagePayload, A2AServerAdapter, A2ATaskCancelRequest
from penguiflow_a2a.server import A2ARequestError

TENANT = {"tenant": "acme"}


def payload(value: Any, **kwargs: Any) -> A2AMessagePayload:
    return A2AMessagePayload(payload=value, headers=TENANT, **kwargs)


def parse_events(frames: list[bytes]) -> list[tuple[str, list[str]]]:
    """(event name, data lines) per SSE frame."""
    parsed = []
    for frame in frames:
        text = frame.decode()
        assert text.endswith("\n\n")
        lines = text[:-2].split("\n")
        name = lines[0].removeprefix("event: ")
        data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
        parsed.append((name, data))
    return parsed


async def bounded(awaitable: Any) -> Any:
    """Await with the suite's safety net."""
    async with asyncio.timeout(5):
        return await awaitable


async def collect(events: Any) -> list[bytes]:
    async with asyncio.timeout(5):
        return [frame async for frame in events]


# -- lifecycle ------------------------------------------------------------------------------


async def test_agent_card_mapping_is_validated_into_a_card(gates: Gates) -> None:
    adapter = A2AServerAdapter(
        build_flow(gates), agent_card={"name": "n", "description": "d"}, agent_url=AGENT_URL
    )
    assert adapter.agent_card.name == "n"
    assert adapter.agent_url == AGENT_URL


async def test_start_and_stop_are_idempotent(make_adapter: Any) -> None:
    adapter = make_adapter()
    await adapter.start()
    await adapter.start()
    assert adapter.started
    await adapter.stop()
    await adapter.stop()
    assert not adapter.started


async def test_adapter_can_start_again_after_stop(make_adapter: Any) -> None:
    adapter = make_adapter()
    await adapter.start()
    await adapter.stop()
    await adapter.start()
    reply = await bounded(adapter.handle_send(payload({"value": 1})))
    assert reply["output"] == {"echo": 1}


async def test_requests_before_start_get_503(make_adapter: Any) -> None:
    adapter = make_adapter()
    with pytest.raises(A2ARequestError) as send_error:
        await bounded(adapter.handle_send(payload("x")))
    with pytest.raises(A2ARequestError) as stream_error:
        await bounded(adapter.stream(payload("x")))
    with pytest.raises(A2ARequestError) as cancel_error:
        await bounded(adapter.cancel(A2ATaskCancelRequest(task_id="t")))
    for error in (send_error.value, stream_error.value, cancel_error.value):
        assert (error.status_code, error.detail) == (503, "flow is not running")


# -- message/send ---------------------------------------------------------------------------


async def test_send_returns_bare_dict_output_without_meta(adapter: A2AServerAdapter) -> None:
    reply = await bounded(adapter.handle_send(payload({"value": "penguins"}, meta={"m": 1})))
    assert list(reply) == ["status", "taskId", "contextId", "traceId", "output"]
    assert reply["status"] == "succeeded"
    assert reply["output"] == {"echo": "penguins"}
    assert reply["taskId"] == reply["contextId"] == reply["traceId"]


async def test_send_returns_message_payload_and_meta(adapter: A2AServerAdapter) -> None:
    reply = await bounded(adapter.handle_send(payload({"op": "message"})))
    assert reply["output"] == {"wrapped": True}
    assert reply["meta"] == {"handled": True}
    assert list(reply)[-1] == "meta"


async def test_send_converts_a_final_answer(adapter: A2AServerAdapter) -> None:
    reply = await bounded(adapter.handle_send(payload({"op": "answer"})))
    assert reply["output"]["text"] == "done"
    assert reply["output"]["citations"] == ["c1"]


async def test_send_skips_stream_chunks(adapter: A2AServerAdapter) -> None:
    reply = await bounded(adapter.handle_send(payload({"op": "chunks", "texts": ["a", "b"]})))
    assert reply["output"] == {"final": "ab"}


async def test_send_uses_given_ids(adapter: A2AServerAdapter) -> None:
    reply = await bounded(
        adapter.handle_send(payload({"value": 1}, traceId="tr", contextId="ctx", taskId="tk"))
    )
    assert (reply["traceId"], reply["contextId"], reply["taskId"]) == ("tr", "ctx", "tk")


async def test_send_reports_a_flow_error_as_failed(adapter: A2AServerAdapter) -> None:
    reply = await bounded(adapter.handle_send(payload({"op": "fail"})))
    assert reply["status"] == "failed"
    assert reply["error"]["code"] == "NODE_EXCEPTION"
    assert reply["error"]["trace_id"] == reply["traceId"]
    assert reply["error"]["node_name"] == "work"


async def test_default_headers_are_merged_under_request_headers(make_adapter: Any) -> None:
    adapter = make_adapter(default_headers={"tenant": "default", "topic": "t"})
    await adapter.start()
    reply = await bounded(adapter.handle_send(A2AMessagePayload(payload={"value": 1})))
    assert reply["status"] == "succeeded"


async def test_missing_tenant_is_a_422(adapter: A2AServerAdapter) -> None:
    with pytest.raises(A2ARequestError) as error:
        await bounded(adapter.handle_send(A2AMessagePayload(payload=1)))
    assert error.value.status_code == 422
    assert "tenant" in error.value.detail


async def test_duplicate_task_id_is_a_409(adapter: A2AServerAdapter, gates: Gates) -> None:
    first = asyncio.create_task(
        adapter.handle_send(payload({"op": "hang", "gate": "g"}, taskId="t"))
    )
    await gates.wait_entered("g")
    with pytest.raises(A2ARequestError) as error:
        await bounded(adapter.handle_send(payload(1, taskId="t")))
    assert (error.value.status_code, error.value.detail) == (409, "task 't' already active")
    gates.open("g")
    async with asyncio.timeout(5):
        assert (await first)["status"] == "succeeded"


async def test_duplicate_trace_id_is_a_409_and_releases_the_task(
    adapter: A2AServerAdapter, gates: Gates
) -> None:
    first = asyncio.create_task(
        adapter.handle_send(payload({"op": "hang", "gate": "g"}, traceId="tr"))
    )
    await gates.wait_entered("g")
    with pytest.raises(A2ARequestError) as error:
        await bounded(adapter.handle_send(payload(1, traceId="tr", taskId="other")))
    assert (error.value.status_code, error.value.detail) == (409, "trace 'tr' already active")
    assert adapter.session_for_task("other") is None
    gates.open("g")
    async with asyncio.timeout(5):
        await first


async def test_binding_is_saved_before_emitting(gates: Gates) -> None:
    store = InMemoryStateStore()
    adapter = A2AServerAdapter(
        build_flow(gates, state_store=store), agent_card=make_card(), agent_url=AGENT_URL
    )
    await adapter.start()
    try:
        reply = await bounded(adapter.handle_send(payload(1, contextId="c")))
    finally:
        await adapter.stop()
    binding = RemoteBinding(reply["traceId"], "c", reply["traceId"], AGENT_URL)
    assert binding in store.bindings


async def test_cancel_while_waiting_returns_cancelled(
    adapter: A2AServerAdapter, gates: Gates
) -> None:
    send = asyncio.create_task(
        adapter.handle_send(payload({"op": "hang", "gate": "g"}, taskId="t"))
    )
    await gates.wait_entered("g")
    reply = await bounded(adapter.cancel(A2ATaskCancelRequest(task_id="t")))
    assert reply["cancelled"] is True
    assert list(reply) == ["taskId", "cancelled", "traceId", "contextId"]
    async with asyncio.timeout(5):
        result = await send
    assert result["status"] == "cancelled"
    assert list(result) == ["status", "taskId", "contextId", "traceId"]


async def test_cancel_of_unknown_task_is_not_cancelled(adapter: A2AServerAdapter) -> None:
    assert await adapter.cancel(A2ATaskCancelRequest(task_id="nope")) == {
        "taskId": "nope",
        "cancelled": False,
    }


async def test_stop_while_waiting_raises_503(adapter: A2AServerAdapter, gates: Gates) -> None:
    send = asyncio.create_task(adapter.handle_send(payload({"op": "hang", "gate": "g"})))
    await gates.wait_entered("g")
    await adapter.stop()
    with pytest.raises(A2ARequestError) as error:
        async with asyncio.timeout(5):
            await send
    assert (error.value.status_code, error.value.detail) == (503, "flow is shutting down")


# -- trace isolation -----------------------------------------------------------------------


async def test_concurrent_sends_finishing_in_reverse_order_get_their_own_bare_outputs(
    adapter: A2AServerAdapter, gates: Gates
) -> None:
    slow = asyncio.create_task(adapter.handle_send(payload({"lane": "slow", "gate": "s"})))
    await gates.wait_entered("s")
    fast = await bounded(adapter.handle_send(payload({"value": "fast"})))
    gates.open("s")
    async with asyncio.timeout(5):
        slow_reply = await slow
    assert fast["output"] == {"echo": "fast"}
    assert slow_reply["output"] == {"lane": "slow", "gate": "s"}


# -- message/stream --------------------------------------------------------------------------


async def test_stream_event_sequence(adapter: A2AServerAdapter) -> None:
    events, task_id, context_id = await adapter.stream(
        payload({"op": "chunks", "texts": ["a", "b"]}, contextId="c")
    )
    frames = await collect(events)
    ids = {"taskId": task_id, "contextId": "c"}
    assert context_id == "c"
    assert frames[0] == (
        b'event: status\ndata: {"status": "accepted", "taskId": "%s", "contextId": "c"}\n\n'
        % task_id.encode()
    )
    meta0 = json.dumps({"i": 0, **ids})
    meta1 = json.dumps({"i": 1, **ids})
    assert frames[1] == f"event: chunk\nid: 0\ndata: a\ndata: {meta0}\n\n".encode()
    assert frames[2] == f"event: done\nid: 1\ndata: b\ndata: {meta1}\n\n".encode()
    assert parse_events(frames[3:]) == [
        ("artifact", [json.dumps({**ids, "output": {"final": "ab"}})]),
        ("done", [json.dumps(ids)]),
    ]


async def test_stream_reports_flow_error_then_done(adapter: A2AServerAdapter) -> None:
    events, task_id, context_id = await bounded(adapter.stream(payload({"op": "fail"})))
    (name, data), done = parse_events(await collect(events))[1:]
    error = json.loads(data[0])
    assert name == "error"
    assert error["code"] == "NODE_EXCEPTION"
    assert (error["taskId"], error["contextId"]) == (task_id, context_id)
    assert done[0] == "done"


async def test_stream_cancel_sends_trace_cancelled(adapter: A2AServerAdapter, gates: Gates) -> None:
    events, task_id, context_id = await bounded(
        adapter.stream(payload({"op": "hang", "gate": "g"}))
    )
    reader = asyncio.create_task(collect(events))
    await gates.wait_entered("g")
    await bounded(adapter.cancel(A2ATaskCancelRequest(task_id=task_id)))
    frames = await reader
    assert parse_events(frames)[1:] == [
        (
            "error",
            [
                json.dumps(
                    {
                        "taskId": task_id,
                        "contextId": context_id,
                        "code": "TRACE_CANCELLED",
                        "message": "Trace cancelled",
                    }
                )
            ],
        ),
        ("done", [json.dumps({"taskId": task_id, "contextId": context_id})]),
    ]


async def test_stream_shutdown_sends_internal_error(
    adapter: A2AServerAdapter, gates: Gates
) -> None:
    events, _, _ = await bounded(adapter.stream(payload({"op": "hang", "gate": "g"})))
    reader = asyncio.create_task(collect(events))
    await gates.wait_entered("g")
    await adapter.stop()
    name, data = parse_events(await reader)[1]
    assert name == "error"
    assert json.loads(data[0])["code"] == "INTERNAL_ERROR"
    assert json.loads(data[0])["message"] == "flow is shutting down"


async def test_closing_an_unstarted_stream_releases_the_task(adapter: A2AServerAdapter) -> None:
    events, task_id, _ = await bounded(adapter.stream(payload(1, taskId="t")))
    assert adapter.session_for_task("t") is not None
    await events.aclose()  # type: ignore[attr-defined]
    assert adapter.session_for_task(task_id) is None


async def test_closing_a_started_stream_releases_the_task(
    adapter: A2AServerAdapter, gates: Gates
) -> None:
    events, task_id, _ = await bounded(adapter.stream(payload({"op": "hang", "gate": "g"})))
    async with asyncio.timeout(5):
        await anext(events)
    await events.aclose()  # type: ignore[attr-defined]
    assert adapter.session_for_task(task_id) is None


async def test_deadline_is_forwarded_to_the_message(adapter: A2AServerAdapter) -> None:
    reply = await bounded(adapter.handle_send(payload({"value": 1}, deadlineSeconds=1.0)))
    assert reply["output"]["text"] == "Deadline exceeded"


async def test_stop_while_saving_the_binding_is_a_503(gates: Gates) -> None:
    class SlowStore:
        def __init__(self) -> None:
            self.arrived = asyncio.Event()
            self.release = asyncio.Event()

        async def save_event(self, event: Any) -> None:
            return None

        async def load_history(self, trace_id: str) -> list[Any]:
            return []

        async def save_remote_binding(self, binding: Any) -> None:
            self.arrived.set()
            await self.release.wait()

    store = SlowStore()
    adapter = A2AServerAdapter(
        build_flow(gates, state_store=store), agent_card=make_card(), agent_url=AGENT_URL
    )
    await adapter.start()
    send = asyncio.create_task(adapter.handle_send(payload(1, taskId="t")))
    async with asyncio.timeout(5):
        await store.arrived.wait()
    await adapter.stop()
    store.release.set()
    with pytest.raises(A2ARequestError) as error:
        await bounded(send)
    assert (error.value.status_code, error.value.detail) == (503, "flow is shutting down")
    assert adapter.session_for_task("t") is None
