"""``run_one`` and the 2.2.5 recording model (spec/testkit-viz.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from penguiflow import FlowError, Headers, Message, ModelRegistry, Node, NodePolicy, create
from penguiflow.testkit import get_recorded_events, run_one
from penguiflow.testkit._recorder import HISTORY_LIMIT, FlowRecorder


def make_message(payload: Any = "hi") -> Message:
    return Message(payload=payload, headers=Headers(tenant="t"))


async def echo(message: Any, _ctx: Any) -> Any:
    return message


async def to_upper(message: Message, _ctx: Any) -> str:
    return str(message.payload).upper()


async def explode(_message: Any, _ctx: Any) -> Any:
    raise ValueError("boom")


def starts(trace_id: str) -> list[str]:
    return [
        e.node_name or "" for e in get_recorded_events(trace_id) if e.event_type == "node_start"
    ]


async def test_rejects_anything_but_a_message() -> None:
    flow = create(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    with pytest.raises(TypeError, match=r"^run_one expects a penguiflow.types.Message instance$"):
        await run_one(flow, "not a message")  # type: ignore[arg-type]
    assert flow.running is False


async def test_returns_the_first_rookery_item_as_is() -> None:
    flow = create(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    message = make_message()
    result = await run_one(flow, message)
    assert result is message


async def test_returns_a_bare_payload_unchanged() -> None:
    flow = create(Node(to_upper, name="upper", policy=NodePolicy(validate="none")).to())
    assert await run_one(flow, make_message("abc")) == "ABC"


async def test_returns_the_flow_error_when_errors_go_to_rookery() -> None:
    node = Node(explode, name="bad", policy=NodePolicy(validate="none"))
    flow = create(node.to(), emit_errors_to_rookery=True)
    message = make_message()
    result = await run_one(flow, message)
    assert isinstance(result, FlowError)
    assert result.code == "NODE_EXCEPTION"
    assert result.trace_id == message.trace_id


async def test_stops_the_flow_after_returning() -> None:
    flow = create(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    await run_one(flow, make_message())
    assert flow.running is False
    assert flow.supervisor is None


async def test_fetch_timeout_raises_and_still_stops_the_flow() -> None:
    never = asyncio.Event()

    async def block(message: Any, _ctx: Any) -> Any:
        await never.wait()
        return message

    flow = create(Node(block, name="block", policy=NodePolicy(validate="none")).to())
    with pytest.raises(asyncio.TimeoutError):
        await run_one(flow, make_message(), timeout_s=0)
    assert flow.running is False


async def test_timeout_none_waits_for_the_result() -> None:
    flow = create(Node(to_upper, name="upper", policy=NodePolicy(validate="none")).to())
    async with asyncio.timeout(5):
        assert await run_one(flow, make_message("x"), timeout_s=None) == "X"


async def test_run_errors_propagate_without_emitting(running_flow: Any) -> None:
    calls: list[Any] = []

    async def record(message: Any, _ctx: Any) -> Any:
        calls.append(message)
        return message

    flow = running_flow(create(Node(record, name="rec", policy=NodePolicy(validate="none")).to()))
    with pytest.raises(RuntimeError, match="already running"):
        await run_one(flow, make_message())
    assert flow.running is True  # run_one did not stop a flow it did not start
    assert calls == []


async def test_registry_coverage_error_propagates_before_anything_runs() -> None:
    flow = create(Node(echo, name="typed").to())
    with pytest.raises(RuntimeError, match="missing entries"):
        await run_one(flow, make_message(), registry=ModelRegistry())


async def test_registry_is_passed_to_the_flow() -> None:
    class In(BaseModel):
        text: str

    class Out(BaseModel):
        size: int

    async def measure(item: In, _ctx: Any) -> dict[str, int]:
        return {"size": len(item.text)}

    registry = ModelRegistry()
    registry.register("measure", In, Out)
    flow = create(Node(measure, name="measure").to(), emit_errors_to_rookery=True)
    # The registry validates the raw Message against In: there is no unwrapping.
    result = await run_one(flow, make_message({"text": "abcd"}), registry=registry)
    assert flow.registry is registry
    assert isinstance(result, FlowError)
    assert result.exception_type == "ValidationError"


async def test_attaches_one_recorder_per_flow() -> None:
    flow = create(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    await run_one(flow, make_message())
    await run_one(flow, make_message())
    recorders = [m for m in flow._middlewares if isinstance(m, FlowRecorder)]
    assert len(recorders) == 1


async def test_records_the_trace_of_the_message() -> None:
    flow = create(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    message = make_message()
    await run_one(flow, message)
    kinds = [e.event_type for e in get_recorded_events(message.trace_id)]
    assert kinds[:2] == ["node_start", "node_success"]


async def test_keeps_recording_after_run_one_returns() -> None:
    flow = create(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    await run_one(flow, make_message())
    later = make_message()
    flow.run()
    try:
        await flow.emit(later)
        async with asyncio.timeout(5):
            await flow.fetch()
    finally:
        await flow.stop()
    assert starts(later.trace_id) == ["echo"]


async def test_rerunning_the_same_trace_replaces_its_history() -> None:
    flow = create(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    message = make_message()
    await run_one(flow, message)
    await run_one(flow, message)
    assert starts(message.trace_id) == ["echo"]


async def test_other_traces_restart_their_history_in_a_new_session() -> None:
    flow = create(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    other = make_message()

    async def pass_other_through() -> None:
        flow.run()
        try:
            await flow.emit(other)
            async with asyncio.timeout(5):
                await flow.fetch()
        finally:
            await flow.stop()

    await run_one(flow, make_message())
    await pass_other_through()
    await pass_other_through()  # same session: the history grows
    assert starts(other.trace_id) == ["echo", "echo"]
    await run_one(flow, make_message())  # new session
    await pass_other_through()
    assert starts(other.trace_id) == ["echo"]


async def test_history_keeps_only_the_most_recent_traces() -> None:
    flow = create(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    messages = [make_message(i) for i in range(HISTORY_LIMIT + 1)]
    await run_one(flow, messages[0])
    flow.run()
    try:
        for message in messages[1:]:
            await flow.emit(message)
            async with asyncio.timeout(5):
                await flow.fetch()
    finally:
        await flow.stop()
    assert get_recorded_events(messages[0].trace_id) == ()
    assert starts(messages[1].trace_id) == ["echo"]
    assert starts(messages[-1].trace_id) == ["echo"]
