"""run(), stop(), registry coverage and the compat attributes (runtime.md §4, §15)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pydantic
import pytest
from core_support import Recorder, fetch, idle, message, run_state

from penguiflow.core import PenguiFlow, create
from penguiflow.node import Node, NodePolicy
from penguiflow.registry import ModelRegistry
from penguiflow.testkit import trace_counts

MakeFlow = Callable[..., PenguiFlow]


async def echo(msg: Any, ctx: Any) -> Any:
    return msg


def test_run_requires_a_running_loop() -> None:
    flow = create(Node(echo).to())
    with pytest.raises(RuntimeError):
        flow.run()
    assert flow.running is False


async def test_run_twice_raises(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to())
    flow.run()
    with pytest.raises(RuntimeError, match=r"^PenguiFlow already running$"):
        flow.run()


async def test_registry_coverage_lists_missing_nodes_sorted(make_flow: MakeFlow) -> None:
    b, a = Node(echo, name="b"), Node(echo, name="a")
    skip = Node(echo, name="skip", policy=NodePolicy(validate="none"))
    flow = make_flow(b.to(a), a.to(skip))
    with pytest.raises(RuntimeError) as info:
        flow.run(registry=ModelRegistry())
    assert str(info.value) == (
        "ModelRegistry is missing entries for nodes requiring validation: a, b"
    )
    assert flow.running is False
    assert flow.supervisor is None


async def test_registry_property(make_flow: MakeFlow) -> None:
    class M(pydantic.BaseModel):
        v: int

    registry = ModelRegistry()
    registry.register("echo", M, M)
    flow = make_flow(Node(echo).to())
    assert flow.registry is None
    flow.run(registry=registry)
    assert flow.registry is registry


async def test_stop_is_a_noop_when_not_running() -> None:
    flow = create(Node(echo).to())
    await flow.stop()
    assert flow.running is False


async def test_running_flag_and_tasks(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo, name="a").to(Node(echo, name="b")))
    flow.run()
    assert flow.running is True
    assert len(flow._tasks) == 2
    tasks = list(flow._tasks)
    await flow.stop()
    assert flow.running is False
    assert flow.supervisor is None
    assert all(task.done() for task in tasks)


async def test_stop_cancels_a_blocked_node(make_flow: MakeFlow) -> None:
    started = asyncio.Event()
    seen: list[str] = []

    async def block(msg: Any, ctx: Any) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    flow = make_flow(Node(block).to())
    flow.run()
    await flow.emit(message())
    async with asyncio.timeout(5):
        await started.wait()
    await flow.stop()
    assert seen == ["cancelled"]


async def test_stop_waits_for_a_cancelled_node_to_finish_its_cleanup(
    make_flow: MakeFlow,
) -> None:
    """A node's cleanup that awaits after the CancelledError runs to its end (runtime.md §4)."""
    started, cancelled, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def block(msg: Any, ctx: Any) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            cancelled.set()
            await release.wait()  # cleanup that suspends: stop() cancels only once
            seen.append("cleaned up")
            raise

    flow = make_flow(Node(block).to())
    flow.run()
    await flow.emit(message())
    async with asyncio.timeout(5):
        await started.wait()
    stopping = asyncio.ensure_future(flow.stop())
    async with asyncio.timeout(5):
        await cancelled.wait()
    assert not stopping.done()
    release.set()
    async with asyncio.timeout(5):
        await stopping
    assert seen == ["cancelled", "cleaned up"]
    assert flow.running is False


async def test_stop_right_after_cancel_lets_the_node_finish_its_cleanup(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    """A trace cancel then stop(): the node's awaiting cleanup ends, the cancel is reported."""
    started = asyncio.Event()
    seen: list[str] = []

    async def block(msg: Any, ctx: Any) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0)  # a cleanup that suspends
            seen.append("cleaned up")
            raise

    flow = make_flow(Node(block, name="block").to())
    flow.run()
    m = message()
    await flow.emit(m)
    async with asyncio.timeout(5):
        await started.wait()
        assert await flow.cancel(m.trace_id) is True
        await flow.stop()
    assert seen == ["cleaned up"]
    assert [e.event_type for e in recorder.events if e.trace_id == m.trace_id] == [
        "node_start",
        "trace_cancel_start",
        "node_trace_cancelled",
        "trace_cancel_finish",
    ]


async def test_concurrent_stops_both_wait_for_the_same_cleanup(
    make_flow: MakeFlow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two stop() calls at once share the wait for the cancelled node (no grace wait)."""
    from penguiflow._runtime import run_tree

    monkeypatch.setattr(run_tree, "UNWIND_GRACE_S", 3600.0)
    started = asyncio.Event()

    async def block(msg: Any, ctx: Any) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(0)
            raise

    flow = make_flow(Node(block, name="block").to())
    flow.run()
    await flow.emit(message())
    async with asyncio.timeout(5):
        await started.wait()
        await asyncio.gather(flow.stop(), flow.stop())
    assert flow.running is False


async def test_a_node_failing_while_stopped_is_not_retried(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    """stop() ends the invocation: an error raised on the way out starts no retry."""
    started = asyncio.Event()
    calls: list[int] = []

    async def block(msg: Any, ctx: Any) -> None:
        calls.append(1)
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise ValueError("cleanup failed") from None

    policy = NodePolicy(max_retries=2, backoff_base=0.0)
    flow = make_flow(Node(block, name="block", policy=policy).to())
    flow.run()
    await flow.emit(message())
    async with asyncio.timeout(5):
        await started.wait()
        await flow.stop()
    assert calls == [1]
    assert recorder.of("node_retry") == []


async def test_each_started_worker_emits_node_cancelled_on_stop(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(b))
    flow.run()
    await flow.emit(message())
    await fetch(flow)
    await flow.stop()
    cancelled = recorder.of("node_cancelled")
    assert sorted(e.node_name for e in cancelled) == ["a", "b"]  # type: ignore[type-var]
    assert all(e.trace_id is None and e.trace_pending is None for e in cancelled)


async def test_stop_then_run_resumes_queued_items(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to())
    flow.run()
    await flow.stop()
    await flow.emit("queued while stopped")
    flow.run()
    assert await fetch(flow) == "queued while stopped"


async def test_emit_before_run_waits_for_workers(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to())
    await flow.emit("early")
    flow.run()
    assert await fetch(flow) == "early"


async def test_rookery_items_stay_fetchable_after_stop(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(echo).to())
    flow.run()
    await flow.emit("x")
    await idle(flow)
    await flow.stop()
    assert flow.context(flow.edges[-1].target).fetch_nowait() == "x"


async def test_stop_leaves_no_task_behind(make_flow: MakeFlow) -> None:
    before = asyncio.all_tasks()
    flow = make_flow(Node(echo, name="a").to(Node(echo, name="b")))
    flow.run()
    await flow.emit(message())
    await fetch(flow)
    await flow.stop()
    assert asyncio.all_tasks() - before == set()


async def test_per_trace_counts_return_to_zero(make_flow: MakeFlow) -> None:
    a, b, c = Node(echo, name="a"), Node(echo, name="b"), Node(echo, name="c")
    flow = make_flow(a.to(b, c), b.to(), c.to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    await fetch(flow)
    await fetch(flow)
    await idle(flow)
    assert trace_counts(flow) == {}
    assert run_state(flow).traces.invoking(msg.trace_id) == 0


async def test_stop_drops_the_in_flight_item_and_keeps_queued_ones(make_flow: MakeFlow) -> None:
    started = asyncio.Event()
    seen: list[Any] = []

    async def block_on_first(msg: Any, ctx: Any) -> Any:
        seen.append(msg)
        if msg == "stuck":
            started.set()
            await asyncio.Event().wait()
        return msg

    flow = make_flow(Node(block_on_first).to())
    flow.run()
    await flow.emit("stuck")
    await flow.emit("queued")
    async with asyncio.timeout(5):
        await started.wait()
    await flow.stop()
    assert flow.mailboxes()["block_on_first"].items == ("queued",)
    flow.run()
    assert await fetch(flow) == "queued"
    assert seen == ["stuck", "queued"]  # the cancelled invocation is not redelivered
