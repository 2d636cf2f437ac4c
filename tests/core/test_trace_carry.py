"""Every item carries its trace: bare payloads any number of hops after the Message.

A node that returns a bare payload (a dict) while handling a traced item hands
that trace to the payload; the node that handles the payload passes it on to
whatever it produces, and so on. ``fetch_traced`` names it at Rookery; nodes,
``fetch``, mailbox snapshots and the bus never see how it is carried.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable
from typing import Any

import pytest
from core_support import Recorder, idle, message

from penguiflow.core import ROOKERY, PenguiFlow
from penguiflow.errors import FlowError, FlowErrorCode
from penguiflow.node import Node, NodePolicy
from penguiflow.patterns import join_k, map_concurrent, predicate_router
from penguiflow.testkit import InMemoryMessageBus, inspect_mailboxes, trace_counts
from penguiflow.types import WM, Message, StreamChunk

MakeFlow = Callable[..., PenguiFlow]


async def fetch_traced(flow: PenguiFlow) -> tuple[Any, str | None]:
    async with asyncio.timeout(5):
        delivery = await flow.fetch_traced()
    return delivery.item, delivery.trace_id


async def first_hop(msg: Message, ctx: Any) -> Any:
    return {"req": msg.payload, "hops": 1}


async def bare_hop(item: dict[str, Any], ctx: Any) -> Any:
    return {"req": item["req"], "hops": item["hops"] + 1}


async def test_three_bare_hops_finishing_out_of_order_keep_their_traces(
    make_flow: MakeFlow,
) -> None:
    """Message -> dict -> dict -> dict, the last hop answering in a seeded random order."""
    count = 60
    release: dict[int, asyncio.Future[None]] = {}
    arrived: dict[int, asyncio.Event] = {i: asyncio.Event() for i in range(count)}
    workers: list[asyncio.Task[None]] = []

    async def last_hop(item: dict[str, Any], ctx: Any) -> None:
        # Answers later, from a task of its own: results leave in any order.
        req = item["req"]
        release[req] = asyncio.get_running_loop().create_future()

        async def answer() -> None:
            await release[req]
            await ctx.emit({"req": req, "hops": item["hops"] + 1})

        workers.append(asyncio.create_task(answer()))
        arrived[req].set()

    n1, n2, n3 = Node(first_hop, name="n1"), Node(bare_hop, name="n2"), Node(last_hop, name="n3")
    flow = make_flow(n1.to(n2), n2.to(n3), n3.to(), queue_maxsize=0)
    flow.run()
    sent = [message(i) for i in range(count)]
    for msg in sent:
        await flow.emit(msg)
    async with asyncio.timeout(5):
        for event in arrived.values():
            await event.wait()
    order = list(range(count))
    random.Random(1405).shuffle(order)
    got: dict[int, str | None] = {}
    for req in order:
        release[req].set_result(None)
        item, trace_id = await fetch_traced(flow)
        assert item == {"req": req, "hops": 3}
        got[req] = trace_id
    assert got == {i: sent[i].trace_id for i in range(count)}
    await asyncio.gather(*workers)


async def test_a_node_receives_the_bare_payload_itself(make_flow: MakeFlow) -> None:
    seen: list[Any] = []
    payload = {"req": 1, "hops": 1}

    async def one(msg: Message, ctx: Any) -> Any:
        return payload

    async def two(item: Any, ctx: Any) -> Any:
        seen.append(item)
        return item

    flow = make_flow(Node(one, name="one").to(n := Node(two, name="two")), n.to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    item, trace_id = await fetch_traced(flow)
    assert seen == [payload]
    assert seen[0] is payload
    assert item is payload
    assert trace_id == msg.trace_id


async def test_fetch_returns_the_bare_payload(make_flow: MakeFlow) -> None:
    n1, n2 = Node(first_hop, name="n1"), Node(bare_hop, name="n2")
    flow = make_flow(n1.to(n2), n2.to())
    flow.run()
    await flow.emit(message(7))
    async with asyncio.timeout(5):
        assert await flow.fetch() == {"req": 7, "hops": 2}


async def test_mailbox_snapshots_show_the_bare_payload(make_flow: MakeFlow) -> None:
    gate = asyncio.Event()

    async def blocked(item: Any, ctx: Any) -> Any:
        await gate.wait()
        return item

    n1, n2 = Node(first_hop, name="n1"), Node(blocked, name="n2")
    flow = make_flow(n1.to(n2), n2.to())
    flow.run()
    await flow.emit(message(1))
    await flow.emit(message(2))
    await flow.emit(message(3))
    async with asyncio.timeout(5):
        while inspect_mailboxes(flow)["n2"].depth < 2:
            await asyncio.sleep(0)
    assert inspect_mailboxes(flow)["n2"].items == ({"req": 2, "hops": 1}, {"req": 3, "hops": 1})
    gate.set()
    await idle(flow)
    assert inspect_mailboxes(flow)["Rookery"].items == tuple(
        {"req": i, "hops": 1} for i in (1, 2, 3)
    )


async def test_bus_envelope_names_the_carried_trace(make_flow: MakeFlow) -> None:
    bus = InMemoryMessageBus()
    n1, n2 = Node(first_hop, name="n1"), Node(bare_hop, name="n2")
    flow = make_flow(n1.to(n2), n2.to(), message_bus=bus)
    flow.run()
    msg = message(5)
    await flow.emit(msg)
    item, _ = await fetch_traced(flow)
    envelopes = {e.edge: e for e in bus.published}
    assert envelopes["n1->n2"].payload == {"req": 5, "hops": 1}
    assert envelopes["n1->n2"].trace_id == msg.trace_id
    assert envelopes["n2->Rookery"].payload is item
    assert envelopes["n2->Rookery"].trace_id == msg.trace_id


async def test_fan_out_of_a_bare_payload_keeps_the_trace_on_both_branches(
    make_flow: MakeFlow,
) -> None:
    async def left(item: Any, ctx: Any) -> Any:
        return {"req": item["req"], "side": "left"}

    async def right(item: Any, ctx: Any) -> Any:
        return {"req": item["req"], "side": "right"}

    n1, n2 = Node(first_hop, name="n1"), Node(bare_hop, name="n2")
    a, b = Node(left, name="left"), Node(right, name="right")
    flow = make_flow(n1.to(n2), n2.to(a, b), a.to(), b.to())
    flow.run()
    sent = [message(i) for i in range(10)]
    for msg in sent:
        await flow.emit(msg)
    got = set()
    for _ in range(20):
        item, trace_id = await fetch_traced(flow)
        got.add((item["req"], item["side"], trace_id))
    assert got == {(i, side, sent[i].trace_id) for i in range(10) for side in ("left", "right")}


async def test_a_join_then_bare_hops_keep_the_trace(make_flow: MakeFlow) -> None:
    async def branch(msg: Message, ctx: Any) -> Any:
        return msg

    async def unpack(msg: Message, ctx: Any) -> Any:
        return {"req": msg.payload[0], "hops": 1}

    a, b = Node(branch, name="a"), Node(branch, name="b")
    join = join_k("join", 2)
    u, n2 = Node(unpack, name="unpack"), Node(bare_hop, name="n2")
    flow = make_flow(a.to(join), b.to(join), join.to(u), u.to(n2), n2.to())
    flow.run()
    sent = [message(i) for i in range(5)]
    for msg in sent:
        await flow.emit(msg)
    got = {}
    for _ in range(5):
        item, trace_id = await fetch_traced(flow)
        got[item["req"]] = trace_id
    assert got == {i: sent[i].trace_id for i in range(5)}


async def test_a_controller_loop_hands_its_trace_to_a_bare_result(make_flow: MakeFlow) -> None:
    async def controller(msg: Message, ctx: Any) -> Any:
        wm = msg.payload
        if wm.hops >= 2:
            await ctx.emit({"req": wm.query, "hops": 1}, to=post)
            return None
        return msg

    ctl = Node(controller, name="ctl", allow_cycle=True)
    post = Node(bare_hop, name="post")
    flow = make_flow(ctl.to(ctl, post), post.to())
    flow.run()
    msg = message(WM(query="q", budget_hops=10))
    await flow.emit(msg)
    item, trace_id = await fetch_traced(flow)
    assert item == {"req": "q", "hops": 2}
    assert trace_id == msg.trace_id


async def test_bare_stream_chunks_from_a_bare_item_keep_the_trace(make_flow: MakeFlow) -> None:
    async def streamer(item: Any, ctx: Any) -> None:
        for seq in range(3):
            await ctx.emit(StreamChunk(stream_id=f"s{item['req']}", seq=seq, text="t"))

    n1, s = Node(first_hop, name="n1"), Node(streamer, name="stream")
    flow = make_flow(n1.to(s), s.to())
    flow.run()
    sent = [message(i) for i in range(3)]
    for msg in sent:
        await flow.emit(msg)
    for _ in range(9):
        item, trace_id = await fetch_traced(flow)
        assert isinstance(item, StreamChunk)
        assert trace_id == sent[int(item.stream_id[1:])].trace_id


async def test_a_retried_bare_item_keeps_its_trace(make_flow: MakeFlow) -> None:
    failed: set[int] = set()

    async def flaky(item: Any, ctx: Any) -> Any:
        if item["req"] not in failed:
            failed.add(item["req"])
            raise ValueError("first attempt fails")
        return {"req": item["req"], "retried": True}

    n1 = Node(first_hop, name="n1")
    n2 = Node(flaky, name="flaky", policy=NodePolicy(max_retries=1, backoff_base=0))
    flow = make_flow(n1.to(n2), n2.to())
    flow.run()
    sent = [message(i) for i in range(3)]
    for msg in sent:
        await flow.emit(msg)
    for i in range(3):
        item, trace_id = await fetch_traced(flow)
        assert item == {"req": i, "retried": True}
        assert trace_id == sent[i].trace_id


class Crash(BaseException):
    """Not an ``Exception``: escapes the attempt loop and crashes the node actor."""


async def test_a_bare_item_in_flight_during_a_restart_keeps_its_trace(
    make_flow: MakeFlow,
) -> None:
    handled: list[Any] = []

    async def crashes_once(item: Any, ctx: Any) -> Any:
        handled.append(item)
        if len(handled) == 1:
            raise Crash
        return {"req": item["req"], "after": "restart"}

    n1, n2 = Node(first_hop, name="n1"), Node(crashes_once, name="crashy")
    flow = make_flow(n1.to(n2), n2.to())
    flow.run()
    msg = message(4)
    await flow.emit(msg)
    item, trace_id = await fetch_traced(flow)
    assert item == {"req": 4, "after": "restart"}
    assert trace_id == msg.trace_id
    assert handled[0] is handled[1]  # the very same payload was redelivered
    assert flow.supervisor is not None
    assert [c.restarts for c in flow.supervisor.which_children()] == [0, 1]


async def test_cancel_removes_the_queued_bare_items_of_the_trace(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    gate = asyncio.Event()
    busy = asyncio.Event()
    seen: list[Any] = []

    async def produce(msg: Message, ctx: Any) -> None:
        # Hands one bare item on, then keeps the trace active.
        await ctx.emit({"req": msg.payload, "hops": 1})
        if msg.payload == "doomed":
            await asyncio.get_running_loop().create_future()

    async def consume(item: Any, ctx: Any) -> Any:
        seen.append(item["req"])
        if item["req"] == "first":
            busy.set()
            await gate.wait()
        return item

    n1, n2 = Node(produce, name="n1"), Node(consume, name="n2")
    flow = make_flow(n1.to(n2), n2.to())
    flow.run()
    first, doomed, after = message("first"), message("doomed"), message("after")
    await flow.emit(first)
    async with asyncio.timeout(5):
        await busy.wait()
    await flow.emit(doomed)
    async with asyncio.timeout(5):
        while inspect_mailboxes(flow)["n2"].depth < 1:
            await asyncio.sleep(0)
    assert await flow.cancel(doomed.trace_id)
    assert inspect_mailboxes(flow)["n2"].depth == 0
    await flow.emit(after)
    gate.set()
    got = [await fetch_traced(flow), await fetch_traced(flow)]
    assert got == [
        ({"req": "first", "hops": 1}, first.trace_id),
        ({"req": "after", "hops": 1}, after.trace_id),
    ]
    assert seen == ["first", "after"]
    await recorder.wait_for("trace_cancel_finish")


async def test_bare_items_do_not_count_for_their_trace(make_flow: MakeFlow) -> None:
    """runtime.md §10: trace-less items are not counted, carried trace or not."""
    gate = asyncio.Event()

    async def blocked(item: Any, ctx: Any) -> Any:
        await gate.wait()
        return item

    n1, n2 = Node(first_hop, name="n1"), Node(blocked, name="n2")
    flow = make_flow(n1.to(n2), n2.to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    await flow.emit(message())
    async with asyncio.timeout(5):
        while inspect_mailboxes(flow)["n2"].depth < 1:
            await asyncio.sleep(0)
    assert trace_counts(flow).get(msg.trace_id, 0) == 0
    gate.set()
    await idle(flow)
    assert trace_counts(flow) == {}


@pytest.mark.parametrize("hops", [1, 5], ids=["one-hop", "five-hops"])
async def test_stop_then_run_keeps_the_carried_trace_of_queued_items(
    make_flow: MakeFlow, hops: int
) -> None:
    n1 = Node(first_hop, name="n1")
    chain = [Node(bare_hop, name=f"b{i}") for i in range(hops)]
    adjacencies = [n1.to(chain[0])]
    adjacencies += [a.to(b) for a, b in itertools.pairwise(chain)]
    adjacencies.append(chain[-1].to())
    flow = make_flow(*adjacencies)
    flow.run()
    msg = message(9)
    await flow.emit(msg)
    await idle(flow)
    await flow.stop()
    flow.run()
    item, trace_id = await fetch_traced(flow)
    assert item == {"req": 9, "hops": hops + 1}
    assert trace_id == msg.trace_id


async def test_a_bare_item_from_outside_a_node_has_no_trace(make_flow: MakeFlow) -> None:
    flow = make_flow(Node(bare_hop, name="n").to())
    flow.run()
    await flow.emit({"req": 0, "hops": 0})
    assert await fetch_traced(flow) == ({"req": 0, "hops": 1}, None)


async def test_a_bare_item_of_a_cancelled_trace_is_dropped_on_arrival(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    gate = asyncio.Event()
    later: list[asyncio.Task[None]] = []
    seen: list[Any] = []

    async def produce(msg: Message, ctx: Any) -> None:
        async def emit_later() -> None:
            await gate.wait()
            await ctx.emit({"req": "late", "hops": 1})

        later.append(asyncio.create_task(emit_later()))

    async def consume(item: Any, ctx: Any) -> Any:
        seen.append(item)
        return item

    n1, n2 = Node(produce, name="n1"), Node(consume, name="n2")
    flow = make_flow(n1.to(n2), n2.to())
    flow.run()
    msg = message()
    await flow.emit(msg)
    await idle(flow)
    flag = asyncio.Event()
    flag.set()
    flow._trace_events[msg.trace_id] = flag  # compat surface: the trace is cancelled
    gate.set()
    async with asyncio.timeout(5):
        await asyncio.gather(*later)
    (drop,) = await recorder.wait_for("trace_cancel_drop")
    assert (drop.node_name, drop.trace_id) == ("n2", msg.trace_id)
    await idle(flow)
    assert seen == []


async def test_every_rookery_read_returns_the_bare_payload(make_flow: MakeFlow) -> None:
    n1, n2 = Node(first_hop, name="n1"), Node(bare_hop, name="n2")
    flow = make_flow(n1.to(n2), n2.to())
    flow.run()
    for req in (1, 2):
        await flow.emit(message(req))
    await idle(flow)
    async with asyncio.timeout(5):
        assert await flow.fetch_any() == {"req": 1, "hops": 2}
    assert flow.context(ROOKERY).fetch_nowait() == {"req": 2, "hops": 2}


async def test_a_status_pushed_to_rookery_by_a_bare_hop_names_the_trace(
    make_flow: MakeFlow,
) -> None:
    async def status(item: Any, ctx: Any) -> None:
        await ctx.runtime._emit_to_rookery({"status": item["req"]})

    n1, n2 = Node(first_hop, name="n1"), Node(status, name="status")
    flow = make_flow(n1.to(n2), n2.to())
    flow.run()
    msg = message("s")
    await flow.emit(msg)
    assert await fetch_traced(flow) == ({"status": "s"}, msg.trace_id)


async def test_emit_nowait_of_a_bare_hop_keeps_the_trace(make_flow: MakeFlow) -> None:
    bus = InMemoryMessageBus()

    async def nowait(item: Any, ctx: Any) -> None:
        ctx.emit_nowait({"req": item["req"], "hops": item["hops"] + 1})

    n1, n2 = Node(first_hop, name="n1"), Node(nowait, name="nowait")
    flow = make_flow(n1.to(n2), n2.to(), message_bus=bus)
    flow.run()
    msg = message("n")
    await flow.emit(msg)
    assert await fetch_traced(flow) == ({"req": "n", "hops": 2}, msg.trace_id)
    await flow.stop()  # waits for the background publishes
    (envelope,) = [e for e in bus.published if e.edge == "nowait->Rookery"]
    assert (envelope.payload, envelope.trace_id) == ({"req": "n", "hops": 2}, msg.trace_id)


async def test_map_concurrent_workers_of_a_bare_hop_keep_the_trace(make_flow: MakeFlow) -> None:
    async def fan(item: Any, ctx: Any) -> None:
        async def worker(part: int) -> None:
            await ctx.emit({"req": item["req"], "part": part})

        await map_concurrent(range(3), worker, max_concurrency=3)

    n1, n2 = Node(first_hop, name="n1"), Node(fan, name="fan")
    flow = make_flow(n1.to(n2), n2.to())
    flow.run()
    sent = [message(i) for i in range(3)]
    for msg in sent:
        await flow.emit(msg)
    for _ in range(9):
        item, trace_id = await fetch_traced(flow)
        assert trace_id == sent[item["req"]].trace_id


async def test_a_router_forwarding_a_bare_item_keeps_the_trace(make_flow: MakeFlow) -> None:
    left, right = Node(bare_hop, name="left"), Node(bare_hop, name="right")
    router = predicate_router("route", lambda item: "left" if item["req"] % 2 else "right")
    n1 = Node(first_hop, name="n1")
    flow = make_flow(n1.to(router), router.to(left, right), left.to(), right.to())
    flow.run()
    sent = [message(i) for i in range(4)]
    for msg in sent:
        await flow.emit(msg)
    got = {}
    for _ in sent:
        item, trace_id = await fetch_traced(flow)
        got[item["req"]] = trace_id
    assert got == {i: msg.trace_id for i, msg in enumerate(sent)}


async def test_a_bare_item_that_fails_for_good_reaches_rookery_as_its_traces_flow_error(
    make_flow: MakeFlow,
) -> None:
    """The caller of a trace whose bare item failed gets the FlowError, not silence."""

    async def broken(item: Any, ctx: Any) -> Any:
        raise ValueError(f"bad {item['req']}")

    n1 = Node(first_hop, name="n1")
    n2 = Node(broken, name="broken", policy=NodePolicy(max_retries=1, backoff_base=0))
    flow = make_flow(n1.to(n2), n2.to(), emit_errors_to_rookery=True)
    flow.run()
    sent = [message(i) for i in range(3)]
    for msg in sent:
        await flow.emit(msg)
    got = {}
    for _ in sent:
        item, trace_id = await fetch_traced(flow)
        assert isinstance(item, FlowError)
        assert item.trace_id == trace_id
        assert item.code == FlowErrorCode.NODE_EXCEPTION.value
        got[trace_id] = str(item.original_exc)
    assert got == {msg.trace_id: f"bad {msg.payload}" for msg in sent}


async def test_a_bare_item_from_outside_that_fails_delivers_no_flow_error(
    make_flow: MakeFlow,
) -> None:
    """2.2.5: a FlowError reaches Rookery only for an item with a trace."""

    async def broken(item: Any, ctx: Any) -> Any:
        raise ValueError("bad")

    flow = make_flow(Node(broken, name="broken").to(), emit_errors_to_rookery=True)
    flow.run()
    await flow.emit({"req": 1})
    await idle(flow)
    assert inspect_mailboxes(flow)["Rookery"].items == ()
