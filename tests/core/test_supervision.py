"""The actor mapping: flow supervisor, mailbox snapshots, wait_idle, embedding, crashes."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from core_support import Recorder, fetch, idle, run_state

from penguiflow._runtime.signals import CRASH_LIMIT
from penguiflow.core import MailboxSnapshot, PenguiFlow, create
from penguiflow.errors import FlowError
from penguiflow.node import Node
from penguiflow.supervision import Supervisor
from penguiflow.testkit import FakeClock, trace_counts
from penguiflow.types import FinalAnswer, Headers, Message

MakeFlow = Callable[..., PenguiFlow]


async def echo(msg: Any, ctx: Any) -> Any:
    return msg


async def test_supervisor_children_are_the_node_actors(make_flow: MakeFlow) -> None:
    a, b = Node(echo, name="a"), Node(echo, name="b")
    flow = make_flow(a.to(b))
    assert flow.supervisor is None
    flow.run()
    supervisor = flow.supervisor
    assert supervisor is not None
    assert [c.id for c in supervisor.which_children()] == ["a", "b"]
    await flow.stop()
    assert flow.supervisor is None


async def test_duplicate_node_names_get_distinct_child_ids(make_flow: MakeFlow) -> None:
    a, b = Node(echo, name="same"), Node(echo, name="same")
    flow = make_flow(a.to(b))
    flow.run()
    assert flow.supervisor is not None
    assert [c.id for c in flow.supervisor.which_children()] == ["same", "same#1"]


async def test_mailboxes_snapshot_is_a_copy(make_flow: MakeFlow) -> None:
    a = Node(echo, name="a")
    flow = make_flow(a.to(), queue_maxsize=4)
    await flow.emit("x")
    await flow.emit("y")
    snapshot = flow.mailboxes()
    assert snapshot["a"] == MailboxSnapshot("a", 2, 4, ("x", "y"), False)
    assert snapshot["Rookery"].depth == 0
    assert flow.mailboxes()["a"].items == ("x", "y")  # reading did not consume


async def test_wait_idle_returns_when_work_is_done(make_flow: MakeFlow) -> None:
    gate = asyncio.Event()

    async def slow(msg: Any, ctx: Any) -> Any:
        await gate.wait()
        return msg

    flow = make_flow(Node(slow).to())
    flow.run()
    await flow.emit("x")
    waiter = asyncio.create_task(flow.wait_idle())
    await asyncio.sleep(0)
    assert not waiter.done()
    gate.set()
    async with asyncio.timeout(5):
        await waiter
    assert flow.mailboxes()["Rookery"].items == ("x",)


async def test_run_under_a_parent_supervisor() -> None:
    parent = Supervisor(name="agent")
    flow = create(Node(echo).to())
    try:
        flow.run(supervisor=parent)
        assert any(c.ref is flow.supervisor for c in parent.which_children())
        await flow.emit("x")
        assert await fetch(flow) == "x"
    finally:
        await flow.stop()
        await parent.stop()


async def test_embed_sets_the_parent_for_later_runs() -> None:
    parent = Supervisor(name="agent")
    flow = create(Node(echo).to())
    assert flow.embed(parent) is flow
    try:
        flow.run()
        assert any(c.ref is flow.supervisor for c in parent.which_children())
    finally:
        await flow.stop()
        await parent.stop()


class FlakyCopy(Message):
    """A message whose first copy fails: a fault outside the node function."""

    def model_copy(self, *args: Any, **kwargs: Any) -> Any:
        if not self.meta.get("copied"):
            self.meta["copied"] = True
            raise OSError("copy failed")
        return super().model_copy(*args, **kwargs)


async def test_crash_outside_the_node_restarts_and_redelivers(
    make_flow: MakeFlow, clock: FakeClock
) -> None:
    node = Node(echo, name="n")
    flow = make_flow(node.to(), clock=clock)
    flow.run()
    expired = FlakyCopy(payload="x", headers=Headers(tenant="t"), deadline_s=clock.time() - 1)
    await flow.emit(expired)  # the deadline path copies it: the first copy crashes the actor
    await flow.emit("queued")
    first, second = await fetch(flow), await fetch(flow)
    assert first.payload == FinalAnswer(text="Deadline exceeded")
    assert first.trace_id == expired.trace_id
    assert second == "queued"
    assert flow.supervisor is not None
    (child,) = flow.supervisor.which_children()
    assert child.restarts == 1
    await idle(flow)
    assert trace_counts(flow) == {}


class AlwaysBadCopy(Message):
    """A message whose copies always fail."""

    def model_copy(self, *args: Any, **kwargs: Any) -> Any:
        raise OSError("copy failed")


async def test_item_that_keeps_crashing_the_actor_becomes_a_flow_error(
    make_flow: MakeFlow, clock: FakeClock, recorder: Recorder
) -> None:
    flow = make_flow(Node(echo, name="n").to(), clock=clock, emit_errors_to_rookery=True)
    flow.run()
    poison = AlwaysBadCopy(payload="x", headers=Headers(tenant="t"), deadline_s=clock.time() - 1)
    await flow.emit(poison)
    await flow.emit("next")
    error, following = await fetch(flow), await fetch(flow)
    assert isinstance(error, FlowError)
    assert error.trace_id == poison.trace_id
    assert error.metadata["reason"] == "crashed"
    assert isinstance(error.unwrap(), OSError)
    assert following == "next"
    assert recorder.of("node_failed")[0].extra["flow_error"] == error.to_payload()
    assert flow.supervisor is not None
    (child,) = flow.supervisor.which_children()
    assert child.restarts == CRASH_LIMIT - 1
    await idle(flow)
    assert trace_counts(flow) == {}
    assert run_state(flow).crashes == {}
