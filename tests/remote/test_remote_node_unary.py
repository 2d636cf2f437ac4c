"""RemoteNode with streaming=False: one send per invocation, result forwarded as-is."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest

from penguiflow import FlowError, Headers, Message, NodePolicy, RemoteNode
from penguiflow.core import OPEN_SEA, Context
from penguiflow.remote import RemoteCallRequest, RemoteCallResult
from penguiflow.state import RemoteBinding
from penguiflow.testkit._remote import InMemoryRemoteTransport
from penguiflow.testkit._stores import InMemoryStateStore

AGENT = "http://agent.test/a2a"


async def fetch(flow: Any) -> Any:
    async with asyncio.timeout(5):
        return await flow.fetch()


NONE = NodePolicy(validate="none")
BASE_KEYS = [
    "remote_skill",
    "remote_transport",
    "remote_streaming",
    "remote_request_bytes",
    "remote_agent_url",
]


def _message(**meta: Any) -> Message:
    return Message(payload={"q": "penguins"}, headers=Headers(tenant="acme"), meta=meta)


def _node(transport: InMemoryRemoteTransport, **kwargs: Any) -> Any:
    kwargs.setdefault("policy", NONE)
    return RemoteNode(transport=transport, skill="search", agent_url=AGENT, name="remote", **kwargs)


def _extras(store: InMemoryStateStore, kind: str) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in e.payload.items() if k.startswith("remote_")}
        for e in store.events
        if e.kind == kind
    ]


async def test_result_reaches_rookery_unchanged(
    transport: InMemoryRemoteTransport, remote_flow: Callable[..., Any]
) -> None:
    transport.add_result(RemoteCallResult(result={"answer": 42}))
    flow = remote_flow(_node(transport).to())
    await flow.emit(_message())
    assert await fetch(flow) == {"answer": 42}


async def test_request_carries_the_message_itself(
    transport: InMemoryRemoteTransport, remote_flow: Callable[..., Any]
) -> None:
    transport.add_result(RemoteCallResult(result=None))
    card = {"name": "searcher"}
    policy = NodePolicy(validate="none", timeout_s=7.5)
    flow = remote_flow(_node(transport, agent_card=card, policy=policy).to())
    message = _message(user="u1")
    await flow.emit(message)
    async with asyncio.timeout(5):
        (request,) = await transport.wait_requests(1)
    assert isinstance(request, RemoteCallRequest)
    assert request.message is message
    assert request.metadata is message.meta
    assert (request.skill, request.agent_url, request.agent_card, request.timeout_s) == (
        "search",
        AGENT,
        card,
        7.5,
    )


async def test_binding_is_saved_with_the_reported_agent_url(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.add_result(
        RemoteCallResult("ok", context_id="c1", task_id="t1", agent_url="http://b")
    )
    flow = remote_flow(_node(transport).to())
    message = _message()
    await flow.emit(message)
    await fetch(flow)
    assert store.bindings == (RemoteBinding(message.trace_id, "c1", "t1", "http://b"),)


async def test_binding_falls_back_to_the_configured_agent_url(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.add_result(RemoteCallResult("ok", context_id="c1", task_id="t1"))
    flow = remote_flow(_node(transport).to())
    message = _message()
    await flow.emit(message)
    await fetch(flow)
    assert store.bindings == (RemoteBinding(message.trace_id, "c1", "t1", AGENT),)


@pytest.mark.parametrize(
    ("result", "record_binding"),
    [
        pytest.param(RemoteCallResult("ok", context_id="c1"), True, id="task-id-missing"),
        pytest.param(RemoteCallResult("ok", task_id="t1"), True, id="context-id-missing"),
        pytest.param(RemoteCallResult("ok", "c1", "t1"), False, id="record-binding-off"),
    ],
)
async def test_no_binding_is_saved(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
    result: RemoteCallResult,
    record_binding: bool,
) -> None:
    transport.add_result(result)
    flow = remote_flow(_node(transport, record_binding=record_binding).to())
    await flow.emit(_message())
    assert await fetch(flow) == "ok"
    assert store.bindings == ()


async def test_flow_without_state_store_still_runs_remote_calls(
    transport: InMemoryRemoteTransport, remote_flow: Callable[..., Any]
) -> None:
    transport.add_result(RemoteCallResult("ok", context_id="c1", task_id="t1"))
    flow = remote_flow(_node(transport).to(), state_store=None)
    await flow.emit(_message())
    assert await fetch(flow) == "ok"


async def test_start_and_success_events_carry_the_telemetry(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.add_result(RemoteCallResult({"answer": 42}, context_id="c1", task_id="t1"))
    flow = remote_flow(_node(transport).to())
    message = _message()
    await flow.emit(message)
    await fetch(flow)
    assert store.kinds(message.trace_id) == [
        "node_start",
        "remote_call_start",
        "remote_call_success",
        "node_success",
    ]
    (start,) = _extras(store, "remote_call_start")
    (success,) = _extras(store, "remote_call_success")
    assert list(start) == BASE_KEYS
    assert start["remote_skill"] == "search"
    assert start["remote_transport"] == "InMemoryRemoteTransport"
    assert start["remote_streaming"] is False
    assert start["remote_request_bytes"] > 0
    assert start["remote_agent_url"] == AGENT
    assert list(success) == [
        *BASE_KEYS,
        "remote_context_id",
        "remote_task_id",
        "remote_response_bytes",
        "remote_stream_events",
        "remote_status",
    ]
    assert (success["remote_context_id"], success["remote_task_id"]) == ("c1", "t1")
    assert success["remote_response_bytes"] > 0
    assert success["remote_stream_events"] == 0
    assert success["remote_status"] == "success"


async def test_remote_events_are_node_events_with_latency(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.add_result(RemoteCallResult("ok"))
    flow = remote_flow(_node(transport).to())
    message = _message()
    await flow.emit(message)
    await fetch(flow)
    start, success = (e for e in store.events if e.kind.startswith("remote_"))
    assert {start.node_name, success.node_name} == {"remote"}
    assert {start.trace_id, success.trace_id} == {message.trace_id}
    assert start.payload["latency_ms"] == 0.0
    assert success.payload["latency_ms"] >= 0.0
    assert success.payload["attempt"] == 0


async def test_remote_events_are_logged_at_their_levels(
    transport: InMemoryRemoteTransport,
    remote_flow: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    transport.add_result(RemoteCallResult("ok"))
    transport.add_result(ConnectionError("refused"))
    caplog.set_level(logging.DEBUG, logger="penguiflow.core")
    flow = remote_flow(_node(transport).to(), emit_errors_to_rookery=True)
    await flow.emit(_message())
    await fetch(flow)
    await flow.emit(_message())
    await fetch(flow)
    levels = {
        r.getMessage(): r.levelno for r in caplog.records if r.getMessage().startswith("remote_")
    }
    assert levels == {
        "remote_call_start": logging.DEBUG,
        "remote_call_success": logging.INFO,
        "remote_call_error": logging.ERROR,
    }


async def test_transport_error_is_reported_then_handled_like_any_node_error(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.add_result(ConnectionError("refused"))
    transport.add_result(ConnectionError("refused again"))
    policy = NodePolicy(validate="none", max_retries=1, backoff_base=0.0)
    flow = remote_flow(_node(transport, policy=policy).to(), emit_errors_to_rookery=True)
    message = _message()
    await flow.emit(message)
    error = await fetch(flow)
    assert isinstance(error, FlowError)
    assert isinstance(error.unwrap(), ConnectionError)
    assert len(transport.requests) == 2
    kinds = store.kinds(message.trace_id)
    assert kinds.count("remote_call_error") == 2
    assert "remote_call_success" not in kinds
    assert kinds[-1] == "node_failed"
    first_error = _extras(store, "remote_call_error")[0]
    assert first_error["remote_error"] == "ConnectionError('refused')"
    assert first_error["remote_status"] == "error"


async def test_successful_call_cancels_its_watcher(
    transport: InMemoryRemoteTransport,
    store: InMemoryStateStore,
    remote_flow: Callable[..., Any],
) -> None:
    transport.add_result(RemoteCallResult("ok", context_id="c1", task_id="t1"))
    flow = remote_flow(_node(transport).to())
    message = _message()
    await flow.emit(message)
    await fetch(flow)
    async with asyncio.timeout(5):
        await flow.wait_idle()
    assert await flow.cancel(message.trace_id) is False
    assert transport.cancels == []


async def test_non_message_input_is_a_type_error(transport: InMemoryRemoteTransport) -> None:
    node = _node(transport)
    with pytest.raises(
        TypeError, match=re.escape("Remote nodes require penguiflow.types.Message inputs")
    ):
        await node.invoke({"q": 1}, Context(OPEN_SEA), registry=None)


async def test_detached_context_is_a_runtime_error(transport: InMemoryRemoteTransport) -> None:
    node = _node(transport)
    with pytest.raises(RuntimeError, match="Context is not bound to a running PenguiFlow"):
        await node.invoke(_message(), Context(OPEN_SEA), registry=None)


def test_default_policy_validates_both_ways(transport: InMemoryRemoteTransport) -> None:
    node = RemoteNode(transport=transport, skill="s", agent_url=AGENT, name="r")
    assert node.name == "r"
    assert node.policy == NodePolicy()
