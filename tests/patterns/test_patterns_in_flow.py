"""Routers and ``join_k`` inside running flows: they behave as ordinary nodes."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from penguiflow import (
    DictRoutingPolicy,
    FlowError,
    Headers,
    Message,
    Node,
    NodePolicy,
    join_k,
    predicate_router,
    union_router,
)
from penguiflow.core import ROOKERY, Context, Endpoint
from penguiflow.testkit import EventRecorder, FakeClock

NO_VALIDATION = NodePolicy(validate="none")


def _message(payload: Any, trace_id: str | None = None, tenant: str = "acme") -> Message:
    if trace_id is None:
        return Message(payload=payload, headers=Headers(tenant=tenant))
    return Message(payload=payload, headers=Headers(tenant=tenant), trace_id=trace_id)


def _tagger(name: str) -> Node:
    async def tag(message: Any, _ctx: Any) -> Any:
        if isinstance(message, Message):
            return message.model_copy(update={"payload": f"{name}:{message.payload}"})
        return f"{name}:{message!r}"

    return Node(tag, name=name, policy=NO_VALIDATION)


async def _fetch(flow: Any) -> Any:
    async with asyncio.timeout(5):
        return await flow.fetch()


# --- predicate_router ------------------------------------------------------------


async def test_predicate_router_routes_each_message_to_its_branch(
    flow_factory: Any, running_flow: Any
) -> None:
    left, right = _tagger("left"), _tagger("right")
    router = predicate_router("router", lambda m: ["left"] if m.payload == "L" else ["right"])
    flow = running_flow(flow_factory(router.to(left, right), left.to(), right.to()))
    await flow.emit(_message("L"))
    assert (await _fetch(flow)).payload == "left:L"
    await flow.emit(_message("R"))
    assert (await _fetch(flow)).payload == "right:R"


async def test_predicate_router_forwards_the_same_object(
    flow_factory: Any, running_flow: Any
) -> None:
    router = predicate_router("router", lambda m: "sink")

    async def sink(message: Any, _ctx: Any) -> Any:
        return message

    flow = running_flow(flow_factory(router.to(Node(sink, name="sink", policy=NO_VALIDATION))))
    sent = _message("x")
    await flow.emit(sent)
    assert await _fetch(flow) is sent


async def test_predicate_router_fans_out_to_several_successors(
    flow_factory: Any, running_flow: Any
) -> None:
    left, right = _tagger("left"), _tagger("right")
    router = predicate_router("router", lambda m: ["left", "right"])
    flow = running_flow(flow_factory(router.to(left, right), left.to(), right.to()))
    await flow.emit(_message("x"))
    results = {(await _fetch(flow)).payload, (await _fetch(flow)).payload}
    assert results == {"left:x", "right:x"}


async def test_router_resolution_errors_are_node_failures(
    flow_factory: Any, running_flow: Any
) -> None:
    router = predicate_router("router", lambda m: "nowhere")
    flow = running_flow(flow_factory(router.to(_tagger("left")), emit_errors_to_rookery=True))
    await flow.emit(_message("x", trace_id="T1"))
    error = await _fetch(flow)
    assert isinstance(error, FlowError)
    assert error.code == "NODE_EXCEPTION"
    assert error.node_name == "router"
    assert isinstance(error.unwrap(), KeyError)
    assert error.unwrap().args == ("No successor named 'nowhere'",)


async def test_router_inherits_retries_from_its_node_policy(
    flow_factory: Any, running_flow: Any, fake_clock: FakeClock
) -> None:
    calls = 0

    def flaky(message: Message) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("transient")
        return "left"

    router = predicate_router("router", flaky)
    router.policy.max_retries = 1
    recorder = EventRecorder()
    flow = running_flow(
        flow_factory(router.to(_tagger("left")), middlewares=[recorder], clock=fake_clock)
    )
    await flow.emit(_message("x"))
    async with asyncio.timeout(5):
        await recorder.wait_for("node_retry")
        await fake_clock.wait_for_timers(1)
        fake_clock.advance(router.policy.backoff_base)
    assert (await _fetch(flow)).payload == "left:x"
    assert calls == 2


async def test_router_inherits_the_timeout_of_its_node_policy(
    flow_factory: Any, running_flow: Any, fake_clock: FakeClock
) -> None:
    async def stuck_policy(request: Any) -> str:
        await asyncio.Event().wait()
        return "left"

    router = predicate_router("router", lambda m: "left", policy=stuck_policy)
    router.policy.timeout_s = 2.0
    flow = running_flow(
        flow_factory(router.to(_tagger("left")), emit_errors_to_rookery=True, clock=fake_clock)
    )
    await flow.emit(_message("x", trace_id="T2"))
    async with asyncio.timeout(5):
        await fake_clock.wait_for_timers(1)
    fake_clock.advance(2.0)
    error = await _fetch(flow)
    assert isinstance(error, FlowError)
    assert error.code == "NODE_TIMEOUT"


async def test_dict_policy_update_takes_effect_while_the_flow_runs(
    flow_factory: Any, running_flow: Any
) -> None:
    policy = DictRoutingPolicy(
        {"acme": "left"}, default="right", key_getter=lambda r: r.message.headers.tenant
    )
    left, right = _tagger("left"), _tagger("right")
    router = predicate_router("router", lambda m: ["left", "right"], policy=policy)
    flow = running_flow(flow_factory(router.to(left, right), left.to(), right.to()))
    await flow.emit(_message("a", tenant="acme"))
    assert (await _fetch(flow)).payload == "left:a"
    await flow.emit(_message("b", tenant="zeta"))
    assert (await _fetch(flow)).payload == "right:b"
    policy.update_mapping({"acme": "right"})
    await flow.emit(_message("c", tenant="acme"))
    assert (await _fetch(flow)).payload == "right:c"


async def test_policy_none_drops_the_message(flow_factory: Any, running_flow: Any) -> None:
    recorder = EventRecorder()
    policy = DictRoutingPolicy({"drop-me": None}, default="left")
    router = predicate_router("router", lambda m: "left", policy=policy)
    flow = running_flow(flow_factory(router.to(_tagger("left")), middlewares=[recorder]))
    await flow.emit(_message("dropped", trace_id="drop-me"))
    async with asyncio.timeout(5):
        await recorder.wait_for("node_success", node="router")
    await flow.emit(_message("kept", trace_id="keep-me"))
    assert (await _fetch(flow)).payload == "left:kept"
    assert recorder.of_type("node_start", node="left", trace_id="drop-me") == []


# --- union_router ----------------------------------------------------------------


class Search(BaseModel):
    kind: Literal["search"]
    query: str


class Compute(BaseModel):
    kind: Literal["compute"]
    numbers: list[int]


Task = Annotated[Search | Compute, Field(discriminator="kind")]


async def test_union_router_sends_variants_to_typed_branches(
    flow_factory: Any, running_flow: Any
) -> None:
    async def search(task: Search, _ctx: Any) -> str:
        return f"search {task.query}"

    async def compute(task: Compute, _ctx: Any) -> int:
        return sum(task.numbers)

    search_node = Node(search, name="search", policy=NO_VALIDATION)
    compute_node = Node(compute, name="compute", policy=NO_VALIDATION)
    router = union_router("router", Task)
    flow = running_flow(
        flow_factory(router.to(search_node, compute_node), search_node.to(), compute_node.to())
    )
    await flow.emit({"kind": "compute", "numbers": [1, 2, 3]})
    assert await _fetch(flow) == 6
    await flow.emit(Search(kind="search", query="q"))
    assert await _fetch(flow) == "search q"


async def test_union_router_rejects_message_envelopes_as_node_errors(
    flow_factory: Any, running_flow: Any
) -> None:
    router = union_router("router", Task)
    flow = running_flow(flow_factory(router.to(_tagger("search")), emit_errors_to_rookery=True))
    await flow.emit(_message({"kind": "search", "query": "q"}, trace_id="T3"))
    error = await _fetch(flow)
    assert isinstance(error, FlowError)
    assert isinstance(error.unwrap(), ValidationError)


# --- join_k ----------------------------------------------------------------------


def _fanout_join(flow_factory: Any, k: int, *branches: Node, **kwargs: Any) -> tuple[Any, Node]:
    async def fan(message: Message, _ctx: Any) -> Message:
        return message

    fan_node = Node(fan, name="fan", policy=NO_VALIDATION)
    join = join_k("join", k)
    flow = flow_factory(
        fan_node.to(*branches), *(branch.to(join) for branch in branches), join.to(), **kwargs
    )
    return flow, join


async def test_join_k_gathers_a_fan_out_with_the_first_envelope(
    flow_factory: Any, running_flow: Any
) -> None:
    flow, _join = _fanout_join(flow_factory, 3, _tagger("a"), _tagger("b"), _tagger("c"))
    running_flow(flow)
    sent = _message("q", trace_id="T4")
    sent.meta["request"] = 7
    await flow.emit(sent)
    result = await _fetch(flow)
    assert isinstance(result, Message)
    assert sorted(result.payload) == ["a:q", "b:q", "c:q"]
    assert result.trace_id == "T4"
    assert result.headers == sent.headers
    assert result.meta == {"request": 7}


async def test_join_k_keeps_concurrent_traces_apart(flow_factory: Any, running_flow: Any) -> None:
    flow, _join = _fanout_join(flow_factory, 2, _tagger("a"), _tagger("b"))
    running_flow(flow)
    for trace_id in ("T5", "T6", "T7"):
        await flow.emit(_message(trace_id, trace_id=trace_id))
    results = {}
    for _ in range(3):
        result = await _fetch(flow)
        results[result.trace_id] = sorted(result.payload)
    assert results == {t: [f"a:{t}", f"b:{t}"] for t in ("T5", "T6", "T7")}


async def test_join_k_completes_a_partial_group_of_a_quiet_trace_later(
    flow_factory: Any, running_flow: Any
) -> None:
    """A trace that merely went idle keeps its partial group (2.2.5 behaviour)."""
    recorder = EventRecorder()
    join = join_k("join", 2)
    flow = running_flow(flow_factory(join.to(), middlewares=[recorder]))
    await flow.emit(_message(1, trace_id="T8"))
    async with asyncio.timeout(5):
        await recorder.wait_for("node_success", node="join", trace_id="T8")
    await flow.emit(_message(2, trace_id="T8"))
    assert (await _fetch(flow)).payload == [1, 2]


class Gate:
    """A branch node that blocks until released, reporting when it has started."""

    def __init__(self, name: str) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

        async def wait(message: Message, _ctx: Any) -> Message:
            self.started.set()
            await self.release.wait()
            return message.model_copy(update={"payload": f"{name}:{message.payload}"})

        self.node = Node(wait, name=name, policy=NO_VALIDATION)


async def test_join_k_drops_the_partial_group_of_a_cancelled_trace(
    flow_factory: Any, running_flow: Any
) -> None:
    recorder = EventRecorder()
    slow = Gate("slow")
    flow, join = _fanout_join(flow_factory, 2, _tagger("fast"), slow.node, middlewares=[recorder])
    running_flow(flow)
    await flow.emit(_message("stale", trace_id="T9"))
    async with asyncio.timeout(5):
        await slow.started.wait()
        await recorder.wait_for("node_success", node="join", trace_id="T9")
    assert set(join.func.join_state.buckets) == {"T9"}

    assert await flow.cancel("T9") is True
    async with asyncio.timeout(5):
        await recorder.wait_for("trace_cancel_finish", trace_id="T9")

    # The same trace id starts afresh: the aggregate holds only the new items.
    slow.release.set()
    await flow.emit(_message("fresh", trace_id="T9"))
    result = await _fetch(flow)
    assert sorted(result.payload) == ["fast:fresh", "slow:fresh"]
    assert join.func.join_state.buckets == {}


async def test_join_k_cancel_of_one_trace_keeps_other_partial_groups(
    flow_factory: Any, running_flow: Any
) -> None:
    recorder = EventRecorder()
    slow = Gate("slow")
    flow, _join = _fanout_join(flow_factory, 2, _tagger("fast"), slow.node, middlewares=[recorder])
    running_flow(flow)
    await flow.emit(_message("a", trace_id="TA"))
    await flow.emit(_message("b", trace_id="TB"))
    async with asyncio.timeout(5):
        await recorder.wait_for("node_success", node="join", trace_id="TA")
        await recorder.wait_for("node_success", node="join", trace_id="TB")
    assert await flow.cancel("TA") is True
    slow.release.set()
    result = await _fetch(flow)
    assert result.trace_id == "TB"
    assert sorted(result.payload) == ["fast:b", "slow:b"]
    async with asyncio.timeout(5):
        await flow.wait_idle()
    with pytest.raises(asyncio.QueueEmpty):
        flow.context(ROOKERY).fetch_nowait()  # nothing was emitted for TA


async def test_join_k_keeps_partial_groups_across_stop_and_run(
    flow_factory: Any, running_flow: Any
) -> None:
    # spec/patterns-routing.md: the buckets persist across runs of the same node object.
    recorder = EventRecorder()
    join = join_k("join", 2)
    flow = running_flow(flow_factory(join.to(), middlewares=[recorder]))
    await flow.emit(_message("before-stop", trace_id="T10"))
    async with asyncio.timeout(5):
        await recorder.wait_for("node_success", node="join", trace_id="T10")
    await flow.stop()
    assert set(join.func.join_state.buckets) == {"T10"}

    flow.run()
    await flow.emit(_message("after-1", trace_id="T10"))
    assert (await _fetch(flow)).payload == ["before-stop", "after-1"]


async def test_join_k_keeps_a_cancelled_partial_group_stale_across_stop(
    flow_factory: Any, running_flow: Any
) -> None:
    recorder = EventRecorder()
    slow = Gate("slow")
    flow, join = _fanout_join(flow_factory, 2, _tagger("fast"), slow.node, middlewares=[recorder])
    running_flow(flow)
    await flow.emit(_message("x", trace_id="T12"))
    async with asyncio.timeout(5):
        await recorder.wait_for("node_success", node="join", trace_id="T12")
    await flow.cancel("T12")
    await flow.stop()
    bucket = join.func.join_state.buckets["T12"]
    assert bucket.flag is not None
    assert bucket.flag.is_set()  # never completed: the next T12 item starts afresh


async def test_join_k_makes_no_cancel_event_per_trace(flow_factory: Any, running_flow: Any) -> None:
    # Its buckets watch the flow's cancel_flag: the node actors test no flag per hop.
    recorder = EventRecorder()
    join = join_k("join", 2)
    flow = running_flow(flow_factory(join.to(), middlewares=[recorder]))
    await flow.emit(_message("first", trace_id="T20"))
    async with asyncio.timeout(5):
        await recorder.wait_for("node_success", node="join", trace_id="T20")
    bucket = join.func.join_state.buckets["T20"]
    assert bucket.flag is not None
    assert not isinstance(bucket.flag, asyncio.Event)
    assert dict(flow._trace_events) == {}


async def test_join_k_adds_no_middleware_and_no_task_per_trace(
    flow_factory: Any, running_flow: Any
) -> None:
    recorder = EventRecorder()
    join = join_k("join", 2)
    flow = running_flow(flow_factory(join.to(), middlewares=[recorder]))
    assert len(flow._tasks) == 1  # starts the (lazy) node actor: one task per node
    tasks_before = len(asyncio.all_tasks())
    for index in range(5):
        await flow.emit(_message("first", trace_id=f"T{index}"))
    async with asyncio.timeout(5):
        await recorder.wait_for("node_success", 5, node="join")
    assert len(join.func.join_state.buckets) == 5
    assert len(asyncio.all_tasks()) == tasks_before
    assert flow._middlewares == [recorder]
    await flow.stop()
    assert len(join.func.join_state.buckets) == 5


async def test_join_k_without_trace_id_is_a_node_error(
    flow_factory: Any, running_flow: Any
) -> None:
    recorder = EventRecorder()
    join = join_k("join", 2)
    flow = running_flow(flow_factory(join.to(), middlewares=[recorder]))
    await flow.emit("trace-less")
    async with asyncio.timeout(5):
        (failed,) = await recorder.wait_for("node_failed", node="join")
    assert failed.extra["exception"] == repr(ValueError("join_k requires messages with trace_id"))


@pytest.mark.parametrize("k", [2, 3])
async def test_join_k_emits_exactly_one_aggregate_per_k_arrivals(
    flow_factory: Any, running_flow: Any, k: int
) -> None:
    recorder = EventRecorder()
    join = join_k("join", k)
    flow = running_flow(flow_factory(join.to(), middlewares=[recorder]))
    for index in range(2 * k + 1):
        await flow.emit(_message(index, trace_id="T11"))
    first, second = await _fetch(flow), await _fetch(flow)
    assert first.payload == list(range(k))
    assert second.payload == list(range(k, 2 * k))
    async with asyncio.timeout(5):
        await recorder.wait_for("node_success", 2 * k + 1, node="join")
    assert [m.payload for m in join.func.join_state.buckets["T11"].items] == [2 * k]


# --- detached contexts -----------------------------------------------------------


async def test_router_on_a_detached_context_cannot_resolve_names() -> None:
    router = predicate_router("router", lambda m: "left")
    with pytest.raises(KeyError, match="No successor named 'left'"):
        await router.invoke(_message("x"), Context(Endpoint("test")), registry=None)


async def test_router_on_a_detached_context_cannot_emit() -> None:
    router = predicate_router("router", lambda m: _tagger("left"))
    with pytest.raises(RuntimeError, match="Context is not attached to a running flow"):
        await router.invoke(_message("x"), Context(Endpoint("test")), registry=None)


async def test_join_k_works_on_a_detached_context() -> None:
    join = join_k("join", 2)
    ctx = Context(Endpoint("test"))
    assert await join.invoke(_message(1, trace_id="D"), ctx, registry=None) is None
    result = await join.invoke(_message(2, trace_id="D"), ctx, registry=None)
    assert result.payload == [1, 2]
