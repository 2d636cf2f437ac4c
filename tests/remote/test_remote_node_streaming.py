"""RemoteNode with streaming=True: partials mirrored as chunks, cancellation mirrored remotely."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from penguiflow import Headers, Message, Node, NodePolicy, RemoteNode, StreamChunk
from penguiflow.remote import RemoteCallRequest, RemoteCallResult, RemoteStreamEvent
from penguiflow.state import RemoteBinding
from penguiflow.testkit._remote import HOLD, InMemoryRemoteTransport, RemoteCancel
from penguiflow.testkit._stores import InMemoryStateStore

AGENT = "http://agent.test/a2a"
NONE = NodePolicy(validate="none")


async def fetch(flow: Any) -> Any:
    async with asyncio.timeout(5):
        return await flow.fetch()


def _message() -> Message:
    return Message(payload="write a poem", headers=Headers(tenant="acme"))


def _node(transport: Any, **kwargs: Any) -> Any:
    return RemoteNode(
        transport=transport,
        skill="poet",
        agent_url=AGENT,
        name="remote",
        policy=NONE,
        streaming=True,
        **kwargs,
    )


def _remote(store: InMemoryStateStore, kind: str) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in e.payload.items() if k.startswith("remote_")}
        for e in store.events
        if e.kind == kind
    ]


async def test_text_events_become_chunks_then_the_result_follows(
    transport: InMemoryRemoteTransport, remote_flow: Callable[..., Any]
) -> None:
    transport.add_stream(
        [
            RemoteStreamEvent(text="roses ", meta={"lang": "en"}),
            RemoteStreamEvent(text="are red", done=True),
            RemoteStreamEvent(result={"poem": "roses are red"}),
        ]
    )
    flow = remote_flow(_node(transport).to())
    message = _message()
    await flow.emit(message)
    first, second, final = [await fetch(flow) for _ in range(3)]
    chunks = [first.payload, second.payload]
    assert all(isinstance(c, StreamChunk) for c in chunks)
    assert [(c.text, c.seq, c.done) for c in chunks] == [("roses ", 0, False), ("are red", 1, True)]
    assert chunks[0].meta == {"lang": "en"}
    assert chunks[0].stream_id == message.trace_id
    assert first.trace_id == message.trace_id
    assert final == {"poem": "roses are red"}


async def test_chunks_go_to_the_successors(
    transport: InMemoryRemoteTransport, remote_flow: Callable[..., Any]
) -> None:
    transport.add_stream([RemoteStreamEvent(text="a"), RemoteStreamEvent(text="b", done=True)])
    seen: list[str] = []

    async def collect(message: Message, _ctx: Any) -> Any:
        seen.append(message.payload.text)
        return message if message.payload.done else None

    remote = _node(transport)
    sink = Node(collect, name="sink", policy=NONE)
    flow = remote_flow(remote.to(sink), sink.to())
    await flow.emit(_message())
    last = await fetch(flow)
    assert last.payload.text == "b"
    assert seen == ["a", "b"]


async def test_stream_without_result_forwards_only_chunks(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.add_stream([RemoteStreamEvent(text="only", done=True)])
    flow = remote_flow(_node(transport).to())
    message = _message()
    await flow.emit(message)
    assert (await fetch(flow)).payload.text == "only"
    async with asyncio.timeout(5):
        await store.wait_for_event("node_success", trace_id=message.trace_id)
        await flow.wait_idle()
    assert flow.mailboxes()["Rookery"].depth == 0


async def test_binding_comes_from_the_first_event_with_both_ids(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.add_stream(
        [
            RemoteStreamEvent(context_id="c0"),
            RemoteStreamEvent(task_id="t0"),
            RemoteStreamEvent(context_id="c1", task_id="t1", agent_url="http://b"),
            RemoteStreamEvent(context_id="c2", task_id="t2"),
            RemoteStreamEvent(result="done"),
        ]
    )
    flow = remote_flow(_node(transport).to())
    message = _message()
    await flow.emit(message)
    assert await fetch(flow) == "done"
    assert store.bindings == (RemoteBinding(message.trace_id, "c1", "t1", "http://b"),)
    events = _remote(store, "remote_stream_event")
    assert "remote_task_id" not in events[0]
    assert (events[1]["remote_context_id"], events[1]["remote_task_id"]) == ("c0", "t0")
    assert events[3]["remote_agent_url"] == "http://b"


async def test_stream_event_telemetry(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.add_stream(
        [
            RemoteStreamEvent(text="héllo", meta={"b": 1, "a": 2}),
            RemoteStreamEvent(text=""),
            RemoteStreamEvent(result={"n": 1}, done=True),
        ]
    )
    flow = remote_flow(_node(transport).to())
    await flow.emit(_message())
    for _ in range(3):
        await fetch(flow)
    first, empty, last = _remote(store, "remote_stream_event")
    assert first["remote_streaming"] is True
    assert first["remote_stream_seq"] == 0
    assert first["remote_chunk_bytes"] >= len("héllo".encode())
    assert first["remote_chunk_done"] is False
    assert first["remote_chunk_meta_keys"] == ["a", "b"]
    assert (empty["remote_stream_seq"], "remote_chunk_bytes" in empty) == (1, False)
    assert "remote_chunk_meta_keys" not in empty
    assert (last["remote_stream_seq"], last["remote_chunk_done"]) == (2, True)
    assert "remote_chunk_bytes" not in last
    (success,) = _remote(store, "remote_call_success")
    assert success["remote_stream_events"] == 3
    assert success["remote_response_bytes"] > first["remote_chunk_bytes"]


async def test_stream_error_is_reported_and_fails_the_node(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.add_stream([RemoteStreamEvent(text="par"), ConnectionResetError("lost")])
    flow = remote_flow(_node(transport).to(), emit_errors_to_rookery=True)
    message = _message()
    await flow.emit(message)
    assert (await fetch(flow)).payload.text == "par"
    error = await fetch(flow)
    assert error.code == "NODE_EXCEPTION"
    (reported,) = _remote(store, "remote_call_error")
    assert reported["remote_error"] == "ConnectionResetError('lost')"


# --- cancellation ---------------------------------------------------------------------


async def _cancel_mid_stream(
    transport: InMemoryRemoteTransport, store: InMemoryStateStore, flow: Any
) -> Message:
    message = _message()
    await flow.emit(message)
    async with asyncio.timeout(5):
        await transport.wait_held()
        assert await flow.cancel(message.trace_id) is True
        await store.wait_for_event("trace_cancel_finish", trace_id=message.trace_id)
    return message


async def test_trace_cancel_cancels_the_remote_task_once(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.add_stream([RemoteStreamEvent(text="wor", context_id="c1", task_id="t1"), HOLD])
    flow = remote_flow(_node(transport).to())
    message = await _cancel_mid_stream(transport, store, flow)
    assert transport.cancels == [RemoteCancel(AGENT, "t1")]
    kinds = store.kinds(message.trace_id)
    assert kinds.count("remote_call_cancelled") == 1
    assert "remote_call_success" not in kinds
    assert "node_trace_cancelled" in kinds
    (cancelled,) = _remote(store, "remote_call_cancelled")
    assert cancelled["remote_cancel_reason"] == "trace_cancel"
    assert cancelled["remote_status"] == "cancelled"
    assert cancelled["remote_task_id"] == "t1"


async def test_remote_cancel_is_recorded_before_the_node_finishes(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.add_stream([RemoteStreamEvent(context_id="c1", task_id="t1"), HOLD])
    flow = remote_flow(_node(transport).to())
    message = await _cancel_mid_stream(transport, store, flow)
    kinds = store.kinds(message.trace_id)
    assert kinds.index("remote_call_cancelled") < kinds.index("node_trace_cancelled")


async def test_failing_remote_cancel_is_reported_and_swallowed(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.cancel_error = TimeoutError("agent unreachable")
    transport.add_stream([RemoteStreamEvent(context_id="c1", task_id="t1"), HOLD])
    transport.add_stream([RemoteStreamEvent(text="next", done=True)])
    flow = remote_flow(_node(transport).to())
    await _cancel_mid_stream(transport, store, flow)
    (failed,) = _remote(store, "remote_cancel_error")
    assert failed["remote_cancel_reason"] == "trace_cancel"
    assert failed["remote_error"] == "TimeoutError('agent unreachable')"
    assert failed["remote_status"] == "cancel_error"
    await flow.emit(_message())  # the node keeps serving other traces
    assert (await fetch(flow)).payload.text == "next"


async def test_other_traces_keep_streaming_while_one_is_cancelled(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.add_stream([RemoteStreamEvent(context_id="c1", task_id="t1"), HOLD])
    transport.add_stream([RemoteStreamEvent(text="fine", done=True)])
    flow = remote_flow(_node(transport).to())
    await _cancel_mid_stream(transport, store, flow)
    other = _message()
    await flow.emit(other)
    chunk = await fetch(flow)
    assert (chunk.trace_id, chunk.payload.text) == (other.trace_id, "fine")
    assert transport.cancels == [RemoteCancel(AGENT, "t1")]


async def test_trace_found_cancelled_when_ids_arrive_cancels_at_once(
    store: InMemoryStateStore, remote_flow: Callable[..., Any]
) -> None:
    flows: list[Any] = []

    async def handler(request: RemoteCallRequest) -> RemoteCallResult:
        # The trace's cancel flag is set while the remote call is in flight, before
        # the runtime aborted the invocation: the ids arrive to a cancelled trace.
        flows[0].ensure_trace_event(request.message.trace_id).set()
        return RemoteCallResult("late", context_id="c1", task_id="t1")

    transport = InMemoryRemoteTransport(handler)
    node = RemoteNode(transport=transport, skill="s", agent_url=AGENT, name="remote", policy=NONE)
    flow = remote_flow(node.to())
    flows.append(flow)
    message = _message()
    await flow.emit(message)
    async with asyncio.timeout(5):
        await store.wait_for_event("node_trace_cancelled", trace_id=message.trace_id)
    assert transport.cancels == [RemoteCancel(AGENT, "t1")]
    (cancelled,) = _remote(store, "remote_call_cancelled")
    assert cancelled["remote_cancel_reason"] == "pre_cancelled"
    kinds = store.kinds(message.trace_id)
    assert "remote_call_success" not in kinds
    assert "remote_call_error" not in kinds
    assert store.bindings == (RemoteBinding(message.trace_id, "c1", "t1", AGENT),)


async def test_cancel_events_are_logged_at_their_levels(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="penguiflow.core")
    transport.add_stream([RemoteStreamEvent(text="x", context_id="c", task_id="t"), HOLD])
    flow = remote_flow(_node(transport).to())
    await _cancel_mid_stream(transport, store, flow)
    levels = {r.getMessage(): r.levelno for r in caplog.records}
    assert levels["remote_stream_event"] == logging.DEBUG
    assert levels["remote_call_cancelled"] == logging.INFO


async def test_transport_stream_is_closed_when_the_node_is_cancelled(
    store: InMemoryStateStore, remote_flow: Callable[..., Any]
) -> None:
    second_sent = asyncio.Event()
    closed = asyncio.Event()

    class Endless:
        async def send(self, request: RemoteCallRequest) -> RemoteCallResult:
            raise NotImplementedError

        async def stream(self, request: RemoteCallRequest) -> AsyncIterator[RemoteStreamEvent]:
            try:
                yield RemoteStreamEvent(text="one")
                second_sent.set()
                yield RemoteStreamEvent(text="two")
                yield RemoteStreamEvent(text="never requested")
            finally:
                closed.set()

        async def cancel(self, *, agent_url: str, task_id: str) -> None:
            return None

    async def stuck_sink(message: Message, _ctx: Any) -> None:
        await asyncio.Event().wait()

    remote = _node(Endless())
    sink = Node(stuck_sink, name="sink", policy=NONE)
    # queue_maxsize=1: the second chunk waits for per-trace capacity, so the node is
    # parked in emit_chunk (the stream suspended at a yield) when the trace is cancelled.
    flow = remote_flow(remote.to(sink), sink.to(), queue_maxsize=1)
    message = _message()
    await flow.emit(message)
    async with asyncio.timeout(5):
        await second_sent.wait()
        assert not closed.is_set()
        await flow.cancel(message.trace_id)
        await closed.wait()


async def test_any_async_iterator_works_as_a_stream(remote_flow: Callable[..., Any]) -> None:
    class Events:
        """An async iterator that is not a generator (no aclose)."""

        def __init__(self) -> None:
            self._events = iter(
                [RemoteStreamEvent(text="x", done=True), RemoteStreamEvent(result=1)]
            )

        def __aiter__(self) -> Events:
            return self

        async def __anext__(self) -> RemoteStreamEvent:
            try:
                return next(self._events)
            except StopIteration:
                raise StopAsyncIteration from None

    class IteratorTransport:
        async def send(self, request: RemoteCallRequest) -> RemoteCallResult:
            raise NotImplementedError

        def stream(self, request: RemoteCallRequest) -> Events:
            return Events()

        async def cancel(self, *, agent_url: str, task_id: str) -> None:
            return None

    flow = remote_flow(_node(IteratorTransport()).to())
    await flow.emit(_message())
    assert (await fetch(flow)).payload.text == "x"
    assert await fetch(flow) == 1


async def test_cancellation_is_mirrored_without_a_state_store(
    transport: InMemoryRemoteTransport, remote_flow: Callable[..., Any]
) -> None:
    transport.add_stream([RemoteStreamEvent(context_id="c1", task_id="t1"), HOLD])
    flow = remote_flow(_node(transport).to(), state_store=None)
    message = _message()
    await flow.emit(message)
    async with asyncio.timeout(5):
        await transport.wait_held()
        assert await flow.cancel(message.trace_id)
        assert await transport.wait_cancels(1) == [RemoteCancel(AGENT, "t1")]
