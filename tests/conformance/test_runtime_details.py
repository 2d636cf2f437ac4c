"""Conformance: finer points of runtime.md (§4-§11) that user suites rely on."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
from conformance_support import EventLog, emit, fetch, msg

from penguiflow import WM, FinalAnswer, Message, Node, NodePolicy, create
from penguiflow.core import ROOKERY

NONE = NodePolicy(validate="none")


async def echo(item: Any, ctx: Any) -> Any:
    return item


def node(name: str, fn: Any = echo, **kwargs: Any) -> Node:
    return Node(fn, name=name, policy=NONE, **kwargs)


def test_run_requires_running_loop() -> None:
    flow = create(node("a").to())
    with pytest.raises(RuntimeError):
        flow.run()
    assert flow._running is False


async def test_emit_after_stop_is_allowed(make_flow: Any) -> None:
    flow = make_flow(node("a").to())
    flow.run()
    await flow.stop()
    m = msg()
    await emit(flow, m)
    flow.emit_nowait(msg())
    assert flow._contexts[node_of(flow, "a")].queue_depth_in() == 2


def node_of(flow: Any, name: str) -> Node:
    return next(n for n in flow._contexts if getattr(n, "name", None) == name)


async def test_ctx_emit_resolves_all_targets_first(make_flow: Any) -> None:
    log = EventLog()
    b = node("b")
    stranger = node("stranger")

    async def misroute(item: Any, ctx: Any) -> None:
        await ctx.emit(item, to=[b, stranger])

    flow = make_flow(node("a", misroute).to(b), b.to(), middlewares=[log])
    flow.run()
    await emit(flow, msg())
    await log.wait_for("node_failed")
    assert flow._contexts[b].queue_depth_in() == 0
    assert [e.node_name for e in log.of("node_start")] == ["a"]


async def test_fan_in_edges_each_hold_their_own_capacity(make_flow: Any) -> None:
    gate = asyncio.Event()
    started = asyncio.Event()

    async def busy(item: Any, ctx: Any) -> Any:
        started.set()
        await gate.wait()
        return item

    a, b, c = node("a"), node("b"), node("c", busy)
    flow = make_flow(a.to(c), b.to(c), c.to(), queue_maxsize=1)
    flow.run()
    flow._contexts[a].emit_nowait(msg())
    async with asyncio.timeout(5):
        await started.wait()  # c holds the first item outside the queue
    flow._contexts[a].emit_nowait(msg())
    flow._contexts[b].emit_nowait(msg())
    with pytest.raises(asyncio.QueueFull):
        flow._contexts[a].emit_nowait(msg())
    with pytest.raises(asyncio.QueueFull):
        flow._contexts[b].emit_nowait(msg())
    gate.set()
    for _ in range(3):
        await fetch(flow)


async def test_node_raising_cancelled_error_on_traced_item(make_flow: Any) -> None:
    """The node keeps working; which event reports it is incidental (runtime.md §7)."""
    log = EventLog()

    async def cancels(item: Message, ctx: Any) -> Any:
        if item.payload == "cancel-me":
            raise asyncio.CancelledError
        return item

    flow = make_flow(node("n", cancels).to(), middlewares=[log])
    flow.run()
    await emit(flow, msg("cancel-me"))
    after = msg("ok")
    await emit(flow, after)
    assert await fetch(flow) is after
    assert "node_failed" not in log.kinds()


async def test_items_emitted_during_cancellation_are_dropped(make_flow: Any) -> None:
    log = EventLog()
    started = asyncio.Event()
    seen_by_b: list[Any] = []

    async def first(item: Message, ctx: Any) -> Any:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            ctx.emit_nowait(item)  # arrives at b after the cancel
            raise

    async def second(item: Any, ctx: Any) -> Any:
        seen_by_b.append(item)
        return item

    a, b = node("a", first), node("b", second)
    flow = make_flow(a.to(b), middlewares=[log])
    flow.run()
    m = msg()
    await emit(flow, m)
    async with asyncio.timeout(5):
        await started.wait()
    assert await flow.cancel(m.trace_id) is True
    await log.wait_for("trace_cancel_finish")
    assert seen_by_b == []
    (drop,) = log.of("trace_cancel_drop")
    assert drop.node_name == "b"
    assert drop.trace_id == m.trace_id
    assert (drop.attempt, drop.latency_ms) == (0, None)
    assert dict(drop.extra) == {}
    kinds = log.kinds(m.trace_id)
    assert kinds.index("trace_cancel_drop") < kinds.index("trace_cancel_finish")


async def test_cancel_of_queued_only_trace(make_flow: Any) -> None:
    log = EventLog()
    gate = asyncio.Event()
    started = asyncio.Event()

    async def busy(item: Message, ctx: Any) -> Any:
        started.set()
        await gate.wait()
        return item

    flow = make_flow(node("n", busy).to(), middlewares=[log])
    flow.run()
    blocker, queued = msg(), msg()
    await emit(flow, blocker)
    async with asyncio.timeout(5):
        await started.wait()
    await emit(flow, queued)
    assert await flow.cancel(queued.trace_id) is True
    (finish,) = await log.wait_for("trace_cancel_finish")
    start = log.of("trace_cancel_start")[0]
    assert start.trace_id == queued.trace_id
    assert start.trace_pending == 1
    assert start.extra["pending"] == 1
    assert start.trace_inflight == 0
    assert finish.trace_id == queued.trace_id
    gate.set()
    assert await fetch(flow) is blocker


async def test_trace_pending_counts_outstanding_items(make_flow: Any) -> None:
    log = EventLog()
    flow = make_flow(node("n").to(), middlewares=[log])
    flow.run()
    m = msg()
    await emit(flow, m)
    await fetch(flow)
    await log.wait_for("node_success")
    start, success = log.of("node_start")[0], log.of("node_success")[0]
    assert start.trace_pending == 1
    assert success.trace_pending == 2


async def test_traceless_events_have_no_trace_pending(make_flow: Any) -> None:
    log = EventLog()
    flow = make_flow(node("n").to(), middlewares=[log])
    flow.run()
    await emit(flow, "plain")
    await fetch(flow)
    await log.wait_for("node_success")
    for event in log.events:
        assert event.trace_id is None
        assert event.trace_pending is None
        assert event.trace_inflight == 0
        assert event.trace_cancelled is False


async def test_event_ts_is_wall_clock(make_flow: Any) -> None:
    log = EventLog()
    flow = make_flow(node("n").to(), middlewares=[log])
    before = time.time()
    flow.run()
    await emit(flow, msg())
    await fetch(flow)
    await log.wait_for("node_success")
    after = time.time()
    assert all(before <= e.ts <= after for e in log.events)


async def test_queue_depth_in_event_fields(make_flow: Any) -> None:
    log = EventLog()
    flow = make_flow(node("n").to(), middlewares=[log], queue_maxsize=0)
    for _ in range(3):
        await emit(flow, msg())
    flow.run()
    for _ in range(3):
        await fetch(flow)
    await log.wait_for("node_success", 3)
    first = log.of("node_start")[0]
    assert first.queue_depth_in == 2
    assert first.queue_depth_out == 0


@pytest.mark.parametrize(
    ("kind", "level"),
    [
        ("deadline_skip", logging.INFO),
        ("trace_cancel_start", logging.INFO),
        ("node_trace_cancelled", logging.INFO),
        ("trace_cancel_finish", logging.INFO),
        ("node_cancelled", logging.DEBUG),
    ],
)
async def test_lifecycle_event_log_levels(
    make_flow: Any, caplog: pytest.LogCaptureFixture, kind: str, level: int
) -> None:
    log = EventLog()
    started = asyncio.Event()

    async def work(item: Message, ctx: Any) -> Any:
        if item.payload == "block":
            started.set()
            await asyncio.Event().wait()
        return item

    flow = make_flow(node("n", work).to(), middlewares=[log])
    caplog.set_level(logging.DEBUG, logger="penguiflow.core")
    flow.run()
    await emit(flow, msg(deadline_s=time.time() - 1))
    await fetch(flow)
    blocked = msg("block")
    await emit(flow, blocked)
    async with asyncio.timeout(5):
        await started.wait()
    await flow.cancel(blocked.trace_id)
    await log.wait_for("trace_cancel_finish")
    await flow.stop()
    records = [r for r in caplog.records if r.name == "penguiflow.core" and r.getMessage() == kind]
    assert records
    assert records[0].levelno == level
    assert records[0].event == kind  # type: ignore[attr-defined]


async def test_deadline_skip_finishes_trace(make_flow: Any) -> None:
    log = EventLog()
    flow = make_flow(node("n").to(), middlewares=[log])
    flow.run()
    m = msg(deadline_s=time.time() - 1)
    await emit(flow, m)
    await emit(flow, msg())
    await fetch(flow)
    await fetch(flow)  # the node finished ``m`` before it took the second message
    assert len(log.of("deadline_skip")) == 1
    assert await flow.cancel(m.trace_id) is False


async def test_hops_auto_increment_when_node_resets_them(make_flow: Any) -> None:
    seen: list[Any] = []

    async def ctl(item: Message, ctx: Any) -> Message:
        if isinstance(item.payload, WM):
            seen.append(item.payload.hops)
            wm = item.payload.model_copy(update={"hops": 0})
            return item.model_copy(update={"payload": wm})
        seen.append(item.payload)
        return item.model_copy(update={"payload": WM(query="q", budget_hops=3)})

    loop = node("ctl", ctl, allow_cycle=True)
    flow = make_flow(loop.to(loop))
    flow.run()
    await emit(flow, msg("start"))
    out = await fetch(flow)
    assert out.payload == FinalAnswer(text="Hop budget exhausted")
    assert seen == ["start", 0, 1, 2]


@pytest.mark.parametrize(
    ("wm_kwargs", "deadline_offset", "text"),
    [
        ({"tokens_used": 10, "budget_tokens": 5, "budget_hops": 1}, -1.0, "Deadline exceeded"),
        ({"tokens_used": 10, "budget_tokens": 5, "budget_hops": 1}, 60.0, "Token budget exhausted"),
    ],
    ids=["deadline-first", "tokens-before-hops"],
)
async def test_controller_check_order(
    make_flow: Any, wm_kwargs: dict[str, Any], deadline_offset: float, text: str
) -> None:
    deadline = time.time() + deadline_offset

    async def ctl(item: Message, ctx: Any) -> Message:
        return item.model_copy(update={"deadline_s": deadline})

    loop = node("ctl", ctl, allow_cycle=True)
    flow = make_flow(loop.to(loop))
    flow.run()
    await emit(flow, msg(WM(query="q", **wm_kwargs), deadline_s=time.time() + 60))
    out = await fetch(flow)
    assert out.payload == FinalAnswer(text=text)


async def test_wm_dedup_also_applies_to_emit_nowait(make_flow: Any) -> None:
    calls: list[int] = []

    async def ctl(item: Message, ctx: Any) -> Message:
        calls.append(item.payload.hops)
        if item.payload.hops >= 1:
            return item.model_copy(update={"payload": FinalAnswer(text="end")})
        return item

    loop = node("ctl", ctl, allow_cycle=True)
    flow = make_flow(loop.to(loop))
    flow.run()
    await emit(flow, msg(WM(query="q", budget_hops=None)))
    hop = await fetch(flow)
    flow.emit_nowait(hop)  # swallowed: same hops as the last streamed hop
    final = await fetch(flow)
    assert final.payload.text == "end"
    assert calls == [0, 1]
    with pytest.raises(asyncio.QueueEmpty):
        flow._contexts[ROOKERY].fetch_nowait()


async def test_wm_memo_cleared_when_trace_finishes(make_flow: Any) -> None:
    calls: list[int] = []

    async def ctl(item: Message, ctx: Any) -> Message:
        calls.append(item.payload.hops)
        if item.payload.hops >= 1:
            return item.model_copy(update={"payload": FinalAnswer(text="end")})
        return item

    loop = node("ctl", ctl, allow_cycle=True)
    flow = make_flow(loop.to(loop))
    flow.run()
    first = msg(WM(query="q", budget_hops=None))
    await emit(flow, first)
    hop = await fetch(flow)
    await fetch(flow)
    log = EventLog()
    flow.add_middleware(log)
    # Trace finished: re-emitting the hop message starts fresh (not swallowed).
    await emit(flow, hop)
    out = await fetch(flow)
    assert out.payload.text == "end"
    assert calls == [0, 1, 1]


async def test_same_nodes_in_two_running_flows(make_flow: Any) -> None:
    a, b = node("a", lambda_tag("A")), node("b")
    first = make_flow(a.to(b))
    second = make_flow(a.to(b))
    first.run()
    second.run()
    await emit(first, msg())
    await emit(second, msg())
    assert await fetch(first) == "A"
    assert await fetch(second) == "A"


def lambda_tag(tag: str) -> Any:
    async def fn(item: Any, ctx: Any) -> Any:
        return tag

    return fn


async def test_node_cancelling_its_own_trace(make_flow: Any) -> None:
    log = EventLog()
    returned: list[bool] = []
    reached_after: list[bool] = []

    async def guard(item: Message, ctx: Any) -> Any:
        returned.append(await ctx.runtime.cancel(item.trace_id))
        await asyncio.sleep(0)
        reached_after.append(True)
        return item

    flow = make_flow(node("guard", guard).to(), middlewares=[log])
    flow.run()
    m = msg()
    await emit(flow, m)
    await log.wait_for("trace_cancel_finish")
    assert returned == [True]
    assert reached_after == []
    assert "node_trace_cancelled" in log.kinds(m.trace_id)
    with pytest.raises(asyncio.QueueEmpty):
        flow._contexts[ROOKERY].fetch_nowait()


async def test_plain_self_loop_via_ctx_emit(make_flow: Any) -> None:
    seen: list[int] = []

    async def countdown(item: Message, ctx: Any) -> None:
        seen.append(item.payload)
        if item.payload > 0:
            await ctx.emit(item.model_copy(update={"payload": item.payload - 1}), to=ctx.owner)
        else:
            await ctx.emit(item, to=ROOKERY)

    loop = node("loop", countdown, allow_cycle=True)
    flow = make_flow(loop.to(loop), queue_maxsize=1)
    flow.run()
    m = msg(3)
    await emit(flow, m)
    out = await fetch(flow)
    assert out.payload == 0
    assert out.trace_id == m.trace_id
    assert seen == [3, 2, 1, 0]


async def test_every_invocation_goes_through_node_invoke(make_flow: Any) -> None:
    """runtime.md §7.3 / node-registry.md: the runtime calls ``node.invoke``."""
    calls: list[Any] = []

    class TracedNode(Node):
        async def invoke(self, message: Any, ctx: Any, *, registry: Any) -> Any:
            calls.append((message, registry))
            return await Node.invoke(self, message, ctx, registry=registry)

    traced = TracedNode(echo, name="traced", policy=NONE)
    flow = make_flow(traced.to())
    flow.run()
    m = msg()
    await emit(flow, m)
    assert await fetch(flow) is m
    assert calls == [(m, None)]


class SelfCanceller:
    """Node bodies that cancel their own trace, then do something else."""

    def __init__(self, then: str) -> None:
        self.then = then
        self.returned: list[bool] = []

    async def __call__(self, item: Message, ctx: Any) -> Any:
        if item.payload != "cancel-me":
            return item
        self.returned.append(await ctx.runtime.cancel(item.trace_id))
        if self.then == "return":
            return item
        if self.then == "raise":
            raise ValueError("after cancel")
        if self.then == "swallow":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                return item
        await asyncio.Event().wait()  # "wait": cancelled here
        return item


@pytest.mark.parametrize("then", ["return", "raise", "swallow", "wait"])
@pytest.mark.parametrize("timeout_s", [None, 5.0], ids=["no-timeout", "timeout"])
async def test_self_cancel_variants_end_as_trace_cancellation(
    make_flow: Any, then: str, timeout_s: float | None
) -> None:
    log = EventLog()
    body = SelfCanceller(then)

    async def fn(item: Message, ctx: Any) -> Any:
        return await body(item, ctx)

    policy = NodePolicy(validate="none", timeout_s=timeout_s, max_retries=2, backoff_base=0.001)
    flow = make_flow(Node(fn, name="n", policy=policy).to(), middlewares=[log])
    flow.run()
    m = msg("cancel-me")
    await emit(flow, m)
    await log.wait_for("trace_cancel_finish")
    assert body.returned == [True]
    kinds = log.kinds(m.trace_id)
    assert kinds == [
        "node_start",
        "trace_cancel_start",
        "node_trace_cancelled",
        "trace_cancel_finish",
    ]
    with pytest.raises(asyncio.QueueEmpty):
        flow._contexts[ROOKERY].fetch_nowait()
    # The worker goes on with later items.
    later = msg()
    await emit(flow, later)
    assert await fetch(flow) is later


async def test_middleware_cancelling_a_trace_does_not_break_the_node(make_flow: Any) -> None:
    flow_ref: list[Any] = []

    doomed: list[str] = []

    async def cancel_on_error(event: Any) -> None:
        if event.event_type == "node_error" and event.trace_id in doomed:
            await flow_ref[0].cancel(event.trace_id)

    log = EventLog()
    calls: list[int] = []

    async def flaky(item: Message, ctx: Any) -> Any:
        calls.append(1)
        raise ValueError("boom")

    policy = NodePolicy(validate="none", max_retries=3, backoff_base=0.001)
    flow = make_flow(Node(flaky, name="f", policy=policy).to(), middlewares=[cancel_on_error, log])
    flow_ref.append(flow)
    flow.run()
    m = msg()
    doomed.append(m.trace_id)
    await emit(flow, m)
    await log.wait_for("trace_cancel_finish")
    assert "node_failed" not in log.kinds(m.trace_id)
    assert len(calls) <= 2
    later = msg()
    await emit(flow, later)
    await log.wait_for("node_failed")
    assert calls


async def test_duplicate_node_names_are_allowed(make_flow: Any) -> None:
    first, second = node("dup", lambda_tag("first")), node("dup")
    flow = make_flow(first.to(second))
    flow.run()
    await emit(flow, msg())
    assert await fetch(flow) == "first"


async def test_emit_to_rookery_from_non_egress_node_is_unknown_target(make_flow: Any) -> None:
    log = EventLog()

    async def wrong(item: Any, ctx: Any) -> None:
        await ctx.emit(item, to=ROOKERY)

    flow = make_flow(node("a", wrong).to(node("b")), middlewares=[log])
    flow.run()
    await emit(flow, msg())
    (error,) = await log.wait_for("node_error")
    assert error.extra["exception"] == repr(KeyError("Unknown target Rookery for a"))


async def test_log_flow_events_end_to_end(make_flow: Any, caplog: pytest.LogCaptureFixture) -> None:
    from penguiflow import log_flow_events

    latencies: list[tuple[str, float]] = []
    log = EventLog()
    flow = make_flow(
        node("a").to(),
        middlewares=[
            log_flow_events(latency_callback=lambda k, ms, e: latencies.append((k, ms))),
            log,
        ],
    )
    caplog.set_level(logging.INFO, logger="penguiflow.flow")
    flow.run()
    m = msg()
    await emit(flow, m)
    await fetch(flow)
    await log.wait_for("node_success")
    records = [r for r in caplog.records if r.name == "penguiflow.flow"]
    assert [r.getMessage() for r in records] == ["node_start", "node_success"]
    assert records[1].trace_id == m.trace_id  # type: ignore[attr-defined]
    assert [k for k, _ in latencies] == ["node_success"]
