"""Per-trace cancellation (runtime.md §11)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from core_support import Recorder, fetch, idle, message

from penguiflow import hosting
from penguiflow.core import PenguiFlow, TraceCancelled, create
from penguiflow.node import Node
from penguiflow.testkit import trace_counts

MakeFlow = Callable[..., PenguiFlow]


class Blocker:
    """A node function that parks until released, recording cancellations."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled: list[str] = []

    async def __call__(self, msg: Any, ctx: Any) -> Any:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.append(msg.trace_id)
            raise
        return msg

    async def wait_started(self) -> None:
        async with asyncio.timeout(5):
            await self.started.wait()


def blocking_node(name: str = "n") -> tuple[Node, Blocker]:
    blocker = Blocker()

    async def fn(msg: Any, ctx: Any) -> Any:
        return await blocker(msg, ctx)

    return Node(fn, name=name), blocker


def test_trace_cancelled_exception() -> None:
    exc = TraceCancelled("abc")
    assert str(exc) == "trace cancelled: abc"
    assert exc.trace_id == "abc"
    assert isinstance(exc, Exception)


async def test_cancel_requires_a_running_flow() -> None:
    flow = create(blocking_node()[0].to())
    with pytest.raises(RuntimeError, match=r"^PenguiFlow is not running$"):
        await flow.cancel("t")


async def test_cancel_unknown_trace_returns_false(make_flow: MakeFlow, recorder: Recorder) -> None:
    flow = make_flow(blocking_node()[0].to())
    flow.run()
    assert await flow.cancel("nobody") is False
    assert recorder.events == []


async def test_cancel_running_trace_event_sequence(make_flow: MakeFlow, recorder: Recorder) -> None:
    node, blocker = blocking_node()
    flow = make_flow(node.to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    await blocker.wait_started()
    assert await flow.cancel(msg.trace_id) is True
    await recorder.wait_for("trace_cancel_finish")
    kinds = [k for k in recorder.kinds() if k.startswith(("trace_", "node_trace"))]
    assert kinds == ["trace_cancel_start", "node_trace_cancelled", "trace_cancel_finish"]
    assert blocker.cancelled == [msg.trace_id]
    start = recorder.of("trace_cancel_start")[0]
    assert start.node_name == "OpenSea"
    assert start.trace_cancelled is True
    assert start.trace_pending is not None
    assert start.trace_pending >= 1
    assert start.trace_inflight >= 1
    assert start.outgoing_edges == 1
    assert start.extra["pending"] == start.trace_pending
    finish = recorder.of("trace_cancel_finish")[0]
    assert finish.node_name == "Rookery"
    assert (finish.trace_pending, finish.trace_inflight, finish.trace_cancelled) == (0, 0, False)
    assert "node_failed" not in recorder.kinds()
    assert trace_counts(flow) == {}
    assert msg.trace_id not in flow._trace_events


async def test_second_cancel_while_active_returns_true_silently(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    node, blocker = blocking_node()
    flow = make_flow(node.to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    await blocker.wait_started()
    flag = flow.ensure_trace_event(msg.trace_id)
    flag.set()  # already flagged: cancel() must not emit a second start
    assert await flow.cancel(msg.trace_id) is True
    await recorder.wait_for("trace_cancel_finish")
    assert recorder.of("trace_cancel_start") == []
    assert await flow.cancel(msg.trace_id) is False


async def test_cancel_purges_queued_items_and_keeps_other_traces(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    node, blocker = blocking_node()
    flow = make_flow(node.to())
    flow.run()
    doomed, kept, doomed_again = message(), message(), None
    await flow.emit(doomed)
    await blocker.wait_started()
    doomed_again = doomed.model_copy()
    await flow.emit(kept)
    await flow.emit(doomed_again)
    assert await flow.cancel(doomed.trace_id) is True
    assert flow.mailboxes()[node.name].items == (kept,)
    blocker.release.set()
    assert await fetch(flow) is kept
    await recorder.wait_for("trace_cancel_finish")
    assert trace_counts(flow) == {}


async def test_cancel_removes_queued_rookery_items(make_flow: MakeFlow) -> None:
    async def echo(msg: Any, ctx: Any) -> Any:
        return msg

    flow = make_flow(Node(echo).to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    await idle(flow)
    await hosting.deliver_to_rookery(flow, msg)  # a second Rookery item of the same trace
    assert flow.mailboxes()["Rookery"].depth == 2
    assert await flow.cancel(msg.trace_id) is True
    assert flow.mailboxes()["Rookery"].depth == 0
    assert trace_counts(flow) == {}


async def test_late_item_of_cancelled_trace_is_dropped(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    release = asyncio.Event()
    started = asyncio.Event()

    async def first(msg: Any, ctx: Any) -> Any:
        started.set()
        await release.wait()
        return msg

    calls: list[Any] = []

    async def second(msg: Any, ctx: Any) -> Any:
        calls.append(msg)
        return msg

    a, b = Node(first, name="a"), Node(second, name="b")
    flow = make_flow(a.to(), b.to())
    flow.run()
    msg = message()
    await flow.emit(msg, to=a)
    async with asyncio.timeout(5):
        await started.wait()
    flow.ensure_trace_event(msg.trace_id).set()  # flag only, nothing purged yet
    await flow.emit(msg, to=b)
    await recorder.wait_for("trace_cancel_drop")
    assert calls == []
    drop = recorder.of("trace_cancel_drop")[0]
    assert (drop.node_name, drop.attempt, drop.latency_ms) == ("b", 0, None)


async def test_other_traces_keep_flowing(make_flow: MakeFlow) -> None:
    node, blocker = blocking_node()
    flow = make_flow(node.to())
    flow.run()
    doomed, other = message(), message()
    await flow.emit(doomed)
    await blocker.wait_started()
    await flow.emit(other)
    await flow.cancel(doomed.trace_id)
    blocker.release.set()
    assert await fetch(flow) is other


async def test_trace_cancelled_escaping_a_node_is_not_an_error(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    async def give_up(msg: Any, ctx: Any) -> Any:
        raise TraceCancelled(msg.trace_id)

    flow = make_flow(Node(give_up, name="n").to())
    flow.run()
    await flow.emit(message())
    await recorder.wait_for("node_trace_cancelled")
    await idle(flow)
    assert recorder.kinds("n") == ["node_start", "node_trace_cancelled"]
    assert trace_counts(flow) == {}


@pytest.mark.parametrize("item", [pytest.param("traceless", id="traceless"), "traced"])
async def test_cancelled_error_raised_by_node_code(
    make_flow: MakeFlow, recorder: Recorder, item: str
) -> None:
    async def quit_(msg: Any, ctx: Any) -> Any:
        if msg == "again":
            return msg
        raise asyncio.CancelledError

    flow = make_flow(Node(quit_, name="n").to())
    flow.run()
    await flow.emit(message("traced") if item == "traced" else item)
    await recorder.wait_for("node_trace_cancelled")
    await flow.emit("again")  # the worker survived and serves the next item
    assert await fetch(flow) == "again"


async def test_cancel_during_backoff_ends_the_item(
    make_flow: MakeFlow, recorder: Recorder, clock: Any
) -> None:
    from penguiflow.node import NodePolicy

    async def boom(msg: Any, ctx: Any) -> Any:
        raise ValueError("x")

    policy = NodePolicy(validate="none", max_retries=3, backoff_base=10.0)
    flow = make_flow(Node(boom, name="n", policy=policy).to(), clock=clock)
    flow.run()
    msg = message()
    await flow.emit(msg)
    await clock.wait_for_timers(1)
    assert await flow.cancel(msg.trace_id) is True
    await recorder.wait_for("trace_cancel_finish")
    assert "node_failed" not in recorder.kinds()
    assert recorder.kinds("n")[-1] == "node_trace_cancelled"


def test_trace_cancelled_pickles() -> None:
    import pickle

    copy = pickle.loads(pickle.dumps(TraceCancelled("abc")))
    assert (copy.trace_id, str(copy)) == ("abc", "trace cancelled: abc")


async def test_cancel_purges_queued_controller_hops(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    from penguiflow.node import NodePolicy
    from penguiflow.types import WM

    release = asyncio.Event()
    started = asyncio.Event()

    async def ctl(msg: Any, ctx: Any) -> Any:
        started.set()
        await release.wait()
        return msg

    node = Node(ctl, name="ctl", allow_cycle=True, policy=NodePolicy(validate="none"))
    flow = make_flow(node.to(node))
    flow.run()
    running = message(WM(query="q"))
    await flow.emit(running)
    async with asyncio.timeout(5):
        await started.wait()
    queued_hop = running.model_copy()
    flow.context(node).emit_nowait(queued_hop, to=node)  # a hop waiting on the self lane
    assert await flow.cancel(running.trace_id) is True
    await recorder.wait_for("trace_cancel_finish")
    assert recorder.of("trace_cancel_drop") == []  # purged, not dropped on arrival
    assert flow.mailboxes()["ctl"].depth == 0
