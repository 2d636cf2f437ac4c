"""ctx.interrupt / flow.resume: a trace parks without holding its node (docs/interrupts.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from core_support import Recorder, fetch, idle, message

from penguiflow import Interrupt
from penguiflow.core import Context, PenguiFlow
from penguiflow.errors import InterruptTokenError, InterruptUnavailable
from penguiflow.node import Node, NodePolicy
from penguiflow.testkit import FakeClock, trace_counts
from penguiflow.types import Message

MakeFlow = Callable[..., PenguiFlow]


def approval_node(name: str = "n", log: list[Any] | None = None) -> Node:
    """Asks for approval on payloads starting with "ask"; passes others through."""

    async def fn(msg: Message, ctx: Any) -> Message:
        if isinstance(msg.payload, str) and msg.payload.startswith("ask"):
            answer = await ctx.interrupt({"question": msg.payload})
            if log is not None:
                log.append(answer)
            return msg.model_copy(update={"payload": f"{msg.payload}:{answer}"})
        return msg

    return Node(fn, name=name)


async def parked(flow: PenguiFlow) -> Interrupt:
    item = await fetch(flow)
    assert isinstance(item, Interrupt)
    return item


async def test_a_parked_trace_resumes_with_the_value(make_flow: MakeFlow) -> None:
    flow = make_flow(approval_node().to())
    flow.run()
    msg = message("ask-1")
    await flow.emit(msg)
    notice = await parked(flow)
    assert (notice.trace_id, notice.node, notice.payload) == (
        msg.trace_id,
        "n",
        {"question": "ask-1"},
    )
    await flow.resume(notice.token, "yes")
    result = await fetch(flow)
    assert result.payload == "ask-1:yes"
    assert trace_counts(flow) == {}


async def test_other_traces_pass_through_the_node_while_one_is_parked(
    make_flow: MakeFlow,
) -> None:
    flow = make_flow(approval_node().to(), queue_maxsize=1)
    flow.run()
    a = message("ask-a")
    await flow.emit(a)
    notice = await parked(flow)
    b, c = message("b"), message("c")
    await flow.emit(b)
    assert (await fetch(flow)).trace_id == b.trace_id
    await flow.emit(c)
    assert (await fetch(flow)).trace_id == c.trace_id
    assert trace_counts(flow) == {a.trace_id: 1}  # the parked trace is outstanding
    await flow.resume(notice.token, "ok")
    result = await fetch(flow)
    assert (result.trace_id, result.payload) == (a.trace_id, "ask-a:ok")
    assert trace_counts(flow) == {}


async def test_two_traces_park_in_the_same_node_and_resume_in_any_order(
    make_flow: MakeFlow,
) -> None:
    flow = make_flow(approval_node().to())
    flow.run()
    await flow.emit(message("ask-1"))
    await flow.emit(message("ask-2"))
    first, second = await parked(flow), await parked(flow)
    await flow.resume(second.token, "two")
    assert (await fetch(flow)).payload == "ask-2:two"
    await flow.resume(first.token, "one")
    assert (await fetch(flow)).payload == "ask-1:one"


async def test_a_node_may_interrupt_twice_in_one_invocation(make_flow: MakeFlow) -> None:
    async def twice(msg: Message, ctx: Any) -> Message:
        one = await ctx.interrupt("first?")
        two = await ctx.interrupt("second?")
        return msg.model_copy(update={"payload": [one, two]})

    flow = make_flow(Node(twice, name="twice").to())
    flow.run()
    await flow.emit(message())
    await flow.resume((await parked(flow)).token, 1)
    await flow.resume((await parked(flow)).token, 2)
    assert (await fetch(flow)).payload == [1, 2]
    assert trace_counts(flow) == {}


async def test_the_interrupt_is_fetched_traced_with_its_trace(make_flow: MakeFlow) -> None:
    flow = make_flow(approval_node().to())
    flow.run()
    msg = message("ask")
    await flow.emit(msg)
    async with asyncio.timeout(5):
        delivery = await flow.fetch_traced()
    assert isinstance(delivery.item, Interrupt)
    assert delivery.trace_id == msg.trace_id


async def test_resume_with_a_used_token_raises(make_flow: MakeFlow) -> None:
    flow = make_flow(approval_node().to())
    flow.run()
    await flow.emit(message("ask"))
    notice = await parked(flow)
    await flow.resume(notice.token, "yes")
    with pytest.raises(InterruptTokenError) as info:
        await flow.resume(notice.token, "again")
    assert info.value.token == notice.token


async def test_resume_with_an_unknown_token_raises(make_flow: MakeFlow) -> None:
    flow = make_flow(approval_node().to())
    with pytest.raises(InterruptTokenError):
        await flow.resume("nope", 1)
    flow.run()
    await flow.emit(message("ask"))
    await parked(flow)
    with pytest.raises(InterruptTokenError):
        await flow.resume("nope", 1)


async def test_tokens_are_fresh_and_long(make_flow: MakeFlow) -> None:
    flow = make_flow(approval_node().to())
    flow.run()
    await flow.emit(message("ask-1"))
    await flow.emit(message("ask-2"))
    first, second = await parked(flow), await parked(flow)
    assert first.token != second.token
    assert len(first.token) >= 32
    assert first.token not in repr(first)


async def test_cancelling_a_parked_trace_ends_it_and_withdraws_the_token(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    seen: list[str] = []

    async def fn(msg: Message, ctx: Any) -> Message:
        try:
            return await ctx.interrupt("?")  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    flow = make_flow(Node(fn, name="n").to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    notice = await parked(flow)
    assert await flow.cancel(msg.trace_id)
    with pytest.raises(InterruptTokenError):
        await flow.resume(notice.token, "late")
    await recorder.wait_for("trace_cancel_finish")
    assert seen == ["cancelled"]
    assert "node_trace_cancelled" in recorder.kinds("n")
    assert trace_counts(flow) == {}


async def test_cancelling_a_trace_with_its_interrupt_unfetched_finishes_it(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    flow = make_flow(approval_node().to())
    flow.run()
    msg = message("ask")
    await flow.emit(msg)
    await recorder.wait_for("node_start")
    while not flow.mailboxes()["Rookery"].depth:  # the Interrupt is on its way
        await asyncio.sleep(0)
    assert await flow.cancel(msg.trace_id)  # drops the Interrupt from Rookery too
    await recorder.wait_for("trace_cancel_finish")
    assert trace_counts(flow) == {}


async def test_stop_ends_parked_invocations(make_flow: MakeFlow) -> None:
    seen: list[str] = []

    async def fn(msg: Message, ctx: Any) -> Message:
        try:
            return await ctx.interrupt("?")  # type: ignore[no-any-return]
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    flow = make_flow(Node(fn, name="n").to())
    flow.run()
    await flow.emit(message())
    notice = await parked(flow)
    async with asyncio.timeout(5):
        await flow.stop()
    assert seen == ["cancelled"]
    with pytest.raises(InterruptTokenError):
        await flow.resume(notice.token, 1)


async def test_wait_idle_does_not_wait_for_a_parked_trace(make_flow: MakeFlow) -> None:
    flow = make_flow(approval_node().to())
    flow.run()
    await flow.emit(message("ask"))
    notice = await parked(flow)
    await idle(flow)
    assert not flow.mailboxes()["n"].busy
    await flow.resume(notice.token, "y")
    assert (await fetch(flow)).payload == "ask:y"


async def test_a_parked_wait_counts_against_the_node_timeout(
    make_flow: MakeFlow, clock: FakeClock, recorder: Recorder
) -> None:
    node = Node(approval_node().func, name="n", policy=NodePolicy(timeout_s=1.0, max_retries=0))
    flow = make_flow(node.to(), clock=clock, emit_errors_to_rookery=True)
    flow.run()
    await flow.emit(message("ask"))
    notice = await parked(flow)
    clock.advance(2.0)
    error = await fetch(flow)
    assert error.code == "NODE_TIMEOUT"
    with pytest.raises(InterruptTokenError):
        await flow.resume(notice.token, "late")
    assert trace_counts(flow) == {}


async def test_interrupt_outside_a_node_invocation_raises(make_flow: MakeFlow) -> None:
    node = approval_node()
    with pytest.raises(InterruptUnavailable):
        await Context(node).interrupt("?")
    flow = make_flow(node.to())
    flow.run()
    with pytest.raises(InterruptUnavailable) as info:
        await flow.context(node).interrupt("?")
    assert info.value.node == "n"


async def test_a_resumed_trace_goes_on_downstream(make_flow: MakeFlow) -> None:
    async def after(msg: Message, ctx: Any) -> Message:
        return msg.model_copy(update={"payload": f"{msg.payload}!"})

    first = approval_node("first")
    second = Node(after, name="second")
    flow = make_flow(first.to(second), second.to())
    flow.run()
    await flow.emit(message("ask"))
    notice = await parked(flow)
    assert notice.node == "first"
    await flow.resume(notice.token, "go")
    assert (await fetch(flow)).payload == "ask:go!"


def test_interrupt_is_importable_from_the_top_level_but_not_in_all() -> None:
    import penguiflow
    import penguiflow.interrupts

    assert penguiflow.Interrupt is Interrupt
    assert "Interrupt" not in penguiflow.__all__  # __all__ is the 2.2.5 list
    assert "Interrupt" in dir(penguiflow)
    assert penguiflow.interrupts.__all__ == ["Interrupt", "ParkedInterrupt"]


def test_interrupt_errors_are_in_the_one_hierarchy() -> None:
    import penguiflow.errors as errors

    assert {"InterruptTokenError", "InterruptUnavailable"} <= set(errors.__all__)
    assert issubclass(InterruptUnavailable, errors.PenguiFlowError)
    assert issubclass(InterruptUnavailable, RuntimeError)
    assert issubclass(InterruptTokenError, errors.PenguiFlowError)


async def test_an_interrupt_from_a_child_task_of_the_node_still_resumes(
    make_flow: MakeFlow,
) -> None:
    async def fn(msg: Message, ctx: Any) -> Message:
        answer = await asyncio.gather(ctx.interrupt("from a child task"))
        return msg.model_copy(update={"payload": answer[0]})

    flow = make_flow(Node(fn, name="n").to())
    flow.run()
    await flow.emit(message())
    notice = await parked(flow)
    assert notice.payload == "from a child task"
    await flow.resume(notice.token, "ok")
    assert (await fetch(flow)).payload == "ok"


async def test_a_parked_trace_of_a_bare_payload_keeps_its_trace(make_flow: MakeFlow) -> None:
    async def unwrap(msg: Message, ctx: Any) -> str:
        return str(msg.payload)

    async def ask(text: str, ctx: Any) -> str:
        return f"{text}:{await ctx.interrupt(text)}"

    first, second = Node(unwrap, name="unwrap"), Node(ask, name="ask")
    flow = make_flow(first.to(second), second.to())
    flow.run()
    msg = message("bare")
    await flow.emit(msg)
    notice = await parked(flow)
    assert notice.trace_id == msg.trace_id
    await flow.resume(notice.token, "yes")
    async with asyncio.timeout(5):
        delivery = await flow.fetch_traced()
    assert (delivery.item, delivery.trace_id) == ("bare:yes", msg.trace_id)


async def test_cancelling_a_resumed_trace_still_running_detached_ends_it(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    after = asyncio.Event()
    never = asyncio.Event()

    async def fn(msg: Message, ctx: Any) -> Message:
        await ctx.interrupt("?")
        after.set()
        await never.wait()
        return msg

    flow = make_flow(Node(fn, name="n").to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    await flow.resume((await parked(flow)).token, None)
    async with asyncio.timeout(5):
        await after.wait()
    assert await flow.cancel(msg.trace_id)
    await recorder.wait_for("trace_cancel_finish")
    assert "node_trace_cancelled" in recorder.kinds("n")
    assert trace_counts(flow) == {}


async def test_a_flow_that_refuses_interrupts_fails_the_node(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    from penguiflow import hosting

    flow = make_flow(approval_node().to(), emit_errors_to_rookery=True)
    hosting.refuse_interrupts(flow, "workers cannot park")
    flow.run()
    await flow.emit(message("ask"))
    error = await fetch(flow)
    assert error.code == "NODE_EXCEPTION"
    assert isinstance(error.unwrap(), InterruptUnavailable)
    assert "workers cannot park" in str(error.unwrap())


# -- hosting.parked_interrupts ---------------------------------------------------------
async def test_parked_interrupts_lists_what_waits_with_its_time(
    make_flow: MakeFlow, clock: FakeClock
) -> None:
    from penguiflow import hosting

    flow = make_flow(approval_node().to(), clock=clock)
    assert hosting.parked_interrupts(flow) == []
    flow.run()
    msg = message("ask-1")
    await flow.emit(msg)
    notice = await parked(flow)
    (entry,) = hosting.parked_interrupts(flow)
    assert (entry.trace_id, entry.node, entry.payload, entry.token, entry.since) == (
        msg.trace_id,
        "n",
        {"question": "ask-1"},
        notice.token,
        clock.time(),
    )
    assert notice.token not in repr(entry)
    await flow.resume(notice.token, "yes")
    assert hosting.parked_interrupts(flow) == []


async def test_parked_interrupts_are_listed_oldest_first(make_flow: MakeFlow) -> None:
    from penguiflow import hosting

    flow = make_flow(approval_node().to())
    flow.run()
    first, second = message("ask-1"), message("ask-2")
    await flow.emit(first)
    await parked(flow)
    await flow.emit(second)
    await parked(flow)
    listed = [entry.trace_id for entry in hosting.parked_interrupts(flow)]
    assert listed == [first.trace_id, second.trace_id]


async def test_a_cancelled_or_timed_out_interrupt_leaves_the_list(
    make_flow: MakeFlow, clock: FakeClock
) -> None:
    from penguiflow import hosting

    node = Node(approval_node().func, name="n", policy=NodePolicy(timeout_s=1.0, max_retries=0))
    flow = make_flow(node.to(), clock=clock, emit_errors_to_rookery=True)
    flow.run()
    cancelled, timed_out = message("ask-c"), message("ask-t")
    await flow.emit(cancelled)
    await parked(flow)
    assert await flow.cancel(cancelled.trace_id) is True
    assert hosting.parked_interrupts(flow) == []
    await flow.emit(timed_out)
    await parked(flow)
    clock.advance(2.0)
    assert (await fetch(flow)).code == "NODE_TIMEOUT"
    assert hosting.parked_interrupts(flow) == []


async def test_stop_empties_the_list_of_a_flow_that_is_not_durable(make_flow: MakeFlow) -> None:
    from penguiflow import hosting

    flow = make_flow(approval_node().to())
    flow.run()
    await flow.emit(message("ask"))
    await parked(flow)
    await flow.stop()
    assert hosting.parked_interrupts(flow) == []
