"""call_playbook and Context.call_playbook (runtime.md §12)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from core_support import Recorder, fetch, message

from penguiflow.core import PenguiFlow, TraceCancelled, call_playbook, create
from penguiflow.errors import FlowError
from penguiflow.node import Node
from penguiflow.types import Message

MakeFlow = Callable[..., PenguiFlow]


class Playbook:
    """A playbook factory remembering the flows it built."""

    def __init__(self, func: Callable[..., Any], **kwargs: Any) -> None:
        self.func = func
        self.kwargs = kwargs
        self.flows: list[PenguiFlow] = []

    def __call__(self) -> tuple[PenguiFlow, None]:
        flow = create(Node(self.func, name="sub").to(), **self.kwargs)
        self.flows.append(flow)
        return flow, None


async def upper(msg: Message, ctx: Any) -> Message:
    return msg.model_copy(update={"payload": str(msg.payload).upper()})


async def test_returns_the_payload_of_the_first_result() -> None:
    playbook = Playbook(upper)
    assert await call_playbook(playbook, message("hi")) == "HI"
    (sub,) = playbook.flows
    assert sub.running is False
    assert sub.supervisor is None


async def test_subflow_sees_the_parent_message_itself() -> None:
    seen: list[Any] = []

    async def spy(msg: Any, ctx: Any) -> Any:
        seen.append(msg)
        return "bare"

    parent = message()
    assert await call_playbook(Playbook(spy), parent) == "bare"
    assert seen == [parent]
    assert seen[0] is parent


async def test_flow_error_is_returned_not_raised() -> None:
    async def boom(msg: Any, ctx: Any) -> Any:
        raise ValueError("x")

    result = await call_playbook(Playbook(boom, emit_errors_to_rookery=True), message())
    assert isinstance(result, FlowError)


async def test_timeout_propagates_and_stops_the_subflow() -> None:
    async def hang(msg: Any, ctx: Any) -> Any:
        await asyncio.Event().wait()

    playbook = Playbook(hang)
    with pytest.raises(TimeoutError):
        await call_playbook(playbook, message(), 0.01)
    assert playbook.flows[0].running is False


async def test_pre_cancelled_parent_trace_raises(make_flow: MakeFlow) -> None:
    parent_flow = make_flow(Node(upper).to())
    parent_flow.run()
    msg = message()
    flag = asyncio.Event()
    flag.set()
    parent_flow._trace_events[msg.trace_id] = flag
    playbook = Playbook(upper)
    with pytest.raises(TraceCancelled) as info:
        await call_playbook(playbook, msg, runtime=parent_flow)
    assert info.value.trace_id == msg.trace_id
    assert playbook.flows[0].running is False


async def test_parent_cancel_reaches_the_subflow(make_flow: MakeFlow, recorder: Recorder) -> None:
    sub_started = asyncio.Event()
    sub_cancelled = asyncio.Event()

    async def sub_hang(msg: Any, ctx: Any) -> Any:
        sub_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            sub_cancelled.set()
            raise

    playbook = Playbook(sub_hang)

    async def controller(msg: Message, ctx: Any) -> Any:
        return await ctx.call_playbook(playbook, msg)

    flow = make_flow(Node(controller, name="parent").to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    async with asyncio.timeout(5):
        await sub_started.wait()
    assert await flow.cancel(msg.trace_id) is True
    async with asyncio.timeout(5):
        await sub_cancelled.wait()
    await recorder.wait_for("trace_cancel_finish")
    assert recorder.of("node_trace_cancelled")[0].node_name == "parent"
    assert playbook.flows[0].running is False


async def test_context_call_playbook_returns_result(make_flow: MakeFlow) -> None:
    async def controller(msg: Message, ctx: Any) -> Any:
        return await ctx.call_playbook(Playbook(upper), msg, timeout=5)

    flow = make_flow(Node(controller).to())
    flow.run()
    await flow.emit(message("abc"))
    assert await fetch(flow) == "ABC"
