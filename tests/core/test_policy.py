"""NodePolicy at run time: retries, backoff, timeouts, FlowError (runtime.md §7)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pydantic
import pytest
from core_support import Recorder, fetch, idle, message

from penguiflow.core import PenguiFlow
from penguiflow.errors import FlowError
from penguiflow.node import Node, NodePolicy
from penguiflow.registry import ModelRegistry
from penguiflow.testkit import FakeClock, trace_counts
from penguiflow.types import Message

MakeFlow = Callable[..., PenguiFlow]


def failing(times: int, exc: Callable[[], Exception] = lambda: ValueError("boom")) -> Any:
    calls = {"n": 0}

    async def flaky(msg: Any, ctx: Any) -> Any:
        calls["n"] += 1
        if calls["n"] <= times:
            raise exc()
        return msg

    return flaky


async def test_success_sequence(make_flow: MakeFlow, recorder: Recorder) -> None:
    flow = make_flow(Node(failing(0), name="n").to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    await fetch(flow)
    await recorder.wait_for("node_success")
    start, success = recorder.of("node_start")[0], recorder.of("node_success")[0]
    assert recorder.kinds("n") == ["node_start", "node_success"]
    assert (start.attempt, start.latency_ms) == (0, 0.0)
    assert success.latency_ms is not None
    assert success.latency_ms >= 0.0
    assert success.trace_id == msg.trace_id


async def test_one_retry_sequence_and_backoff(
    make_flow: MakeFlow, recorder: Recorder, clock: FakeClock
) -> None:
    policy = NodePolicy(validate="none", max_retries=1, backoff_base=0.25)
    flow = make_flow(Node(failing(1), name="n", policy=policy).to(), clock=clock)
    flow.run()
    await flow.emit(message())
    await clock.wait_for_timers(1)
    (retry,) = recorder.of("node_retry")
    assert retry.attempt == 1
    assert retry.latency_ms is None
    assert retry.extra["sleep_s"] == 0.25
    assert retry.extra["exception"] == "ValueError('boom')"
    clock.advance(0.25)
    await fetch(flow)
    await recorder.wait_for("node_success")
    assert recorder.kinds("n") == [
        "node_start",
        "node_error",
        "node_retry",
        "node_start",
        "node_success",
    ]
    assert [e.attempt for e in recorder.events if e.node_name == "n"] == [0, 0, 1, 1, 1]


async def test_backoff_grows_and_is_capped(
    make_flow: MakeFlow, recorder: Recorder, clock: FakeClock
) -> None:
    policy = NodePolicy(
        validate="none", max_retries=3, backoff_base=1.0, backoff_mult=3.0, max_backoff=5.0
    )
    flow = make_flow(Node(failing(3), name="n", policy=policy).to(), clock=clock)
    flow.run()
    await flow.emit(message())
    for _ in range(3):
        await clock.wait_for_timers(1)
        clock.advance_to_next()
    await fetch(flow)
    assert [e.extra["sleep_s"] for e in recorder.of("node_retry")] == [1.0, 3.0, 5.0]


async def test_exhausted_retries_sequence_and_flow_error(
    make_flow: MakeFlow, recorder: Recorder, clock: FakeClock
) -> None:
    error = ValueError("boom")
    policy = NodePolicy(validate="none", max_retries=1, backoff_base=0.1)
    flow = make_flow(
        Node(failing(5, lambda: error), name="bad", policy=policy).to(),
        clock=clock,
        emit_errors_to_rookery=True,
    )
    flow.run()
    msg = message()
    await flow.emit(msg)
    await clock.wait_for_timers(1)
    clock.advance(0.1)
    result = await fetch(flow)
    assert recorder.kinds("bad") == [
        "node_start",
        "node_error",
        "node_retry",
        "node_start",
        "node_error",
        "node_failed",
    ]
    assert isinstance(result, FlowError)
    assert result.unwrap() is error
    assert result.code == "NODE_EXCEPTION"
    assert result.message == "Node 'bad' raised ValueError: boom"
    assert result.trace_id == msg.trace_id
    assert result.node_name == "bad"
    assert result.node_id == flow.nodes[0].node_id
    assert list(result.metadata) == ["attempt", "latency_ms", "exception_repr"]
    assert result.metadata["attempt"] == 1
    assert result.metadata["exception_repr"] == "ValueError('boom')"
    (failed,) = recorder.of("node_failed")
    assert failed.attempt == 1
    assert failed.extra["exception"] == "ValueError('boom')"
    assert failed.extra["flow_error"] == result.to_payload()
    assert failed.error_payload is not None


async def test_failure_without_rookery_flag_delivers_nothing(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    flow = make_flow(Node(failing(5), name="bad").to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    await recorder.wait_for("node_failed")
    await idle(flow)
    assert flow.mailboxes()["Rookery"].depth == 0
    assert trace_counts(flow) == {}


async def test_traceless_failure_is_not_sent_to_rookery(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    flow = make_flow(Node(failing(5), name="bad").to(), emit_errors_to_rookery=True)
    flow.run()
    await flow.emit("no trace")
    (failed,) = await recorder.wait_for("node_failed")
    assert failed.trace_id is None
    await idle(flow)
    assert flow.mailboxes()["Rookery"].depth == 0


async def test_policy_timeout(make_flow: MakeFlow, recorder: Recorder, clock: FakeClock) -> None:
    cancelled = asyncio.Event()

    async def hang(msg: Any, ctx: Any) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    policy = NodePolicy(validate="none", timeout_s=1.5)
    flow = make_flow(
        Node(hang, name="slow", policy=policy).to(), clock=clock, emit_errors_to_rookery=True
    )
    flow.run()
    await flow.emit(message())
    await clock.wait_for_timers(1)
    clock.advance(1.5)
    result = await fetch(flow)
    assert cancelled.is_set()
    assert recorder.kinds("slow") == ["node_start", "node_timeout", "node_failed"]
    (timeout,) = recorder.of("node_timeout")
    assert timeout.extra["exception"] == "TimeoutError()"
    assert result.code == "NODE_TIMEOUT"
    assert result.message == "Node 'slow' timed out after 1.50s"
    assert result.metadata["attempt"] == 0
    assert result.metadata["timeout_s"] == 1.5
    assert list(result.metadata) == ["attempt", "latency_ms", "timeout_s"]


async def test_timeout_error_raised_by_node_code(make_flow: MakeFlow, recorder: Recorder) -> None:
    flow = make_flow(
        Node(failing(5, lambda: TimeoutError("late")), name="n").to(), emit_errors_to_rookery=True
    )
    flow.run()
    await flow.emit(message())
    result = await fetch(flow)
    assert recorder.kinds("n")[:2] == ["node_start", "node_timeout"]
    assert result.code == "NODE_TIMEOUT"
    assert result.message == "late"
    assert result.metadata["timeout_s"] is None


async def test_bare_timeout_error_message_falls_back_to_type_name(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(failing(5, TimeoutError), name="n").to(), emit_errors_to_rookery=True)
    flow.run()
    await flow.emit(message())
    assert (await fetch(flow)).message == "TimeoutError"


async def test_validation_error_is_a_retried_node_error(
    make_flow: MakeFlow, recorder: Recorder, clock: FakeClock
) -> None:
    class In(pydantic.BaseModel):
        x: int

    async def use(msg: In, ctx: Any) -> In:
        return msg

    registry = ModelRegistry()
    registry.register("use", In, In)
    policy = NodePolicy(max_retries=1, backoff_base=0.0)
    flow = make_flow(Node(use, policy=policy).to(), clock=clock, emit_errors_to_rookery=True)
    flow.run(registry=registry)
    await flow.emit(message("not a model"))
    result = await fetch(flow)
    assert isinstance(result.unwrap(), pydantic.ValidationError)
    assert len(recorder.of("node_start")) == 2


async def test_validated_output_is_forwarded(make_flow: MakeFlow) -> None:
    class M(pydantic.BaseModel):
        x: int

    async def passthrough(msg: Any, ctx: Any) -> Any:
        return {"x": msg.x + 1}

    registry = ModelRegistry()
    registry.register("passthrough", M, M)
    flow = make_flow(Node(passthrough).to())
    flow.run(registry=registry)
    await flow.emit({"x": 1})
    assert await fetch(flow) == M(x=2)


async def test_message_output_warning(make_flow: MakeFlow) -> None:
    async def bare(msg: Any, ctx: Any) -> Any:
        return "bare"

    registry = ModelRegistry()
    registry.register("bare", Message, Message)
    flow = make_flow(Node(bare, policy=NodePolicy(validate="none")).to())
    flow.run(registry=registry)
    await flow.emit(message())
    with pytest.warns(RuntimeWarning, match=r"Message -> Message") as record:
        result = await fetch(flow)
    assert result == "bare"
    assert str(record[0].message) == (
        "Node 'bare' is registered for Message -> Message outputs but returned str. "
        "Return a penguiflow.types.Message to preserve headers, trace_id, and meta."
    )


async def test_no_warning_when_a_message_is_returned(make_flow: MakeFlow) -> None:
    async def keep(msg: Any, ctx: Any) -> Any:
        return msg

    registry = ModelRegistry()
    registry.register("keep", Message, Message)
    flow = make_flow(Node(keep).to())
    flow.run(registry=registry)
    msg = message()
    await flow.emit(msg)
    assert await fetch(flow) is msg  # filterwarnings=error would have raised


async def test_retries_reuse_the_same_input_object(make_flow: MakeFlow, clock: FakeClock) -> None:
    seen: list[Any] = []

    async def flaky(msg: Any, ctx: Any) -> Any:
        seen.append(msg)
        if len(seen) == 1:
            raise ValueError("once")
        return msg

    policy = NodePolicy(validate="none", max_retries=1, backoff_base=0.0)
    flow = make_flow(Node(flaky, policy=policy).to(), clock=clock)
    flow.run()
    msg = message()
    await flow.emit(msg)
    await fetch(flow)
    assert seen[0] is seen[1] is msg
