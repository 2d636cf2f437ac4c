"""Conformance: spec/patterns-routing.md (map_concurrent, routers, join_k, policies)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from conformance_support import EventLog, emit, fetch, msg
from pydantic import BaseModel, Field

from penguiflow import (
    DictRoutingPolicy,
    Message,
    Node,
    NodePolicy,
    RoutingRequest,
    join_k,
    map_concurrent,
    predicate_router,
    union_router,
)
from penguiflow.core import Context
from penguiflow.policies import evaluate_policy

NONE = NodePolicy(validate="none")


def tagger(name: str) -> Node:
    async def fn(item: Any, ctx: Any) -> Any:
        return (name, item)

    return Node(fn, name=name, policy=NONE)


# --- map_concurrent -----


async def test_map_concurrent_preserves_input_order() -> None:
    gates = {i: asyncio.Event() for i in range(3)}

    async def worker(i: int) -> int:
        await gates[i].wait()
        return i * 10

    task = asyncio.create_task(map_concurrent(iter(range(3)), worker, max_concurrency=3))
    for i in (2, 0, 1):
        await asyncio.sleep(0)
        gates[i].set()
    async with asyncio.timeout(5):
        assert await task == [0, 10, 20]


async def test_map_concurrent_limits_concurrency() -> None:
    running = 0
    peak = 0

    async def worker(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1
        return i

    async with asyncio.timeout(5):
        assert await map_concurrent(range(10), worker, max_concurrency=2) == list(range(10))
        assert peak == 2
        peak = 0
        await map_concurrent(range(4), worker, max_concurrency=0)
    assert peak == 1


async def test_map_concurrent_default_is_eight() -> None:
    running = 0
    peak = 0

    async def worker(i: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1
        return i

    async with asyncio.timeout(5):
        await map_concurrent(range(20), worker)
    assert peak == 8


async def test_map_concurrent_empty_and_error() -> None:
    async def worker(i: int) -> int:
        if i == 1:
            raise ValueError("bad item")
        return i

    async with asyncio.timeout(5):
        assert await map_concurrent([], worker) == []
        with pytest.raises(ValueError, match="bad item"):
            await map_concurrent([0, 1, 2], worker)


# --- predicate_router -----


def test_predicate_router_node_shape() -> None:
    router = predicate_router("router", lambda m: None)
    assert isinstance(router, Node)
    assert router.name == "router"
    assert router.policy.validate == "none"
    assert router.policy.max_retries == 0


async def test_predicate_router_routes_original_item(make_flow: Any) -> None:
    left, right = tagger("left"), tagger("right")
    router = predicate_router("router", lambda m: ["left"] if m.payload == "L" else ["right"])
    flow = make_flow(router.to(left, right), left.to(), right.to())
    flow.run()
    m1, m2 = msg("L"), msg("R")
    await emit(flow, m1)
    assert await fetch(flow) == ("left", m1)
    await emit(flow, m2)
    assert await fetch(flow) == ("right", m2)


async def test_predicate_router_accepts_nodes_and_single_values(make_flow: Any) -> None:
    left, right = tagger("left"), tagger("right")
    router = predicate_router("router", lambda m: left if m.payload == "L" else "right")
    flow = make_flow(router.to(left, right), left.to(), right.to())
    flow.run()
    m = msg("L")
    await emit(flow, m)
    assert await fetch(flow) == ("left", m)
    await emit(flow, msg("R"))
    assert (await fetch(flow))[0] == "right"


async def test_predicate_router_fan_out_to_both(make_flow: Any) -> None:
    left, right = tagger("left"), tagger("right")
    router = predicate_router("router", lambda m: ["left", "right"])
    flow = make_flow(router.to(left, right), left.to(), right.to())
    flow.run()
    await emit(flow, msg())
    got = {(await fetch(flow))[0], (await fetch(flow))[0]}
    assert got == {"left", "right"}


@pytest.mark.parametrize("decision", [None, []], ids=["none", "empty"])
async def test_predicate_router_drops(make_flow: Any, decision: Any) -> None:
    log = EventLog()
    left = tagger("left")
    router = predicate_router("router", lambda m: decision)
    flow = make_flow(router.to(left), left.to(), middlewares=[log])
    flow.run()
    await emit(flow, msg())
    await log.wait_for("node_success")
    assert [e.node_name for e in log.of("node_start")] == ["router"]


@pytest.mark.parametrize(
    ("decision", "text"),
    [
        ("ghost", repr(KeyError("No successor named 'ghost'"))),
        ([42], repr(TypeError("Targets must be Node or str"))),
    ],
    ids=["unknown-name", "bad-type"],
)
async def test_predicate_router_resolution_errors(make_flow: Any, decision: Any, text: str) -> None:
    log = EventLog()
    left = tagger("left")
    router = predicate_router("router", lambda m: decision)
    flow = make_flow(router.to(left), left.to(), middlewares=[log])
    flow.run()
    await emit(flow, msg())
    (error,) = await log.wait_for("node_error")
    assert error.extra["exception"] == text
    await log.wait_for("node_failed")


async def test_predicate_router_policy_overrides(make_flow: Any) -> None:
    requests: list[RoutingRequest] = []
    left, right = tagger("left"), tagger("right")

    async def policy(request: RoutingRequest) -> Any:
        requests.append(request)
        return "right"

    router = predicate_router("router", lambda m: ["left"], policy=policy)
    flow = make_flow(router.to(left, right), left.to(), right.to())
    flow.run()
    m = msg()
    await emit(flow, m)
    assert await fetch(flow) == ("right", m)
    (req,) = requests
    assert req.message is m
    assert req.node is router
    assert req.proposed == (left,)
    assert req.trace_id == m.trace_id
    assert isinstance(req.context, Context)
    assert req.node_name == "router"
    assert req.proposed_names == ("left",)


async def test_predicate_router_policy_none_drops(make_flow: Any) -> None:
    log = EventLog()
    left = tagger("left")
    router = predicate_router("router", lambda m: ["left"], policy=lambda r: None)
    flow = make_flow(router.to(left), left.to(), middlewares=[log])
    flow.run()
    await emit(flow, msg())
    await log.wait_for("node_success")
    assert [e.node_name for e in log.of("node_start")] == ["router"]


async def test_dict_policy_by_tenant(make_flow: Any) -> None:
    left, right = tagger("left"), tagger("right")
    policy = DictRoutingPolicy(
        {"acme": "left"}, default="right", key_getter=lambda r: r.message.headers.tenant
    )
    router = predicate_router("router", lambda m: ["left", "right"], policy=policy)
    flow = make_flow(router.to(left, right), left.to(), right.to())
    flow.run()
    await emit(flow, msg())
    assert (await fetch(flow))[0] == "left"
    other = Message(payload="x", headers=msg().headers.model_copy(update={"tenant": "zeta"}))
    await emit(flow, other)
    assert (await fetch(flow))[0] == "right"


# --- union_router -----


class Alpha(BaseModel):
    kind: Literal["alpha"]
    v: int


class Beta(BaseModel):
    kind: Literal["beta"]
    v: int


Union = Annotated[Alpha | Beta, Field(discriminator="kind")]


async def test_union_router_forwards_validated(make_flow: Any) -> None:
    alpha, beta = tagger("alpha"), tagger("beta")
    router = union_router("u", Union)
    assert router.policy.validate == "none"
    flow = make_flow(router.to(alpha, beta), alpha.to(), beta.to())
    flow.run()
    await emit(flow, {"kind": "beta", "v": 2})
    assert await fetch(flow) == ("beta", Beta(kind="beta", v=2))


async def test_union_router_uses_type_name_without_kind(make_flow: Any) -> None:
    class Red(BaseModel):
        r: int

    class Blue(BaseModel):
        b: int

    red, blue = tagger("Red"), tagger("Blue")
    router = union_router("u", Red | Blue)
    flow = make_flow(router.to(red, blue), red.to(), blue.to())
    flow.run()
    await emit(flow, {"b": 1})
    assert await fetch(flow) == ("Blue", Blue(b=1))


async def test_union_router_rejects_message_envelope(make_flow: Any) -> None:
    log = EventLog()
    alpha = tagger("alpha")
    flow = make_flow(union_router("u", Union).to(alpha), alpha.to(), middlewares=[log])
    flow.run()
    await emit(flow, msg({"kind": "alpha", "v": 1}))
    await log.wait_for("node_failed")
    assert log.of("node_start")[0].node_name == "u"


async def test_union_router_missing_successor(make_flow: Any) -> None:
    log = EventLog()
    alpha = tagger("alpha")
    flow = make_flow(union_router("u", Union).to(alpha), alpha.to(), middlewares=[log])
    flow.run()
    await emit(flow, {"kind": "beta", "v": 1})
    (error,) = await log.wait_for("node_error")
    assert error.extra["exception"] == repr(KeyError("No successor named 'beta'"))


async def test_union_router_policy(make_flow: Any) -> None:
    requests: list[RoutingRequest] = []
    alpha, beta = tagger("alpha"), tagger("beta")

    def policy(request: RoutingRequest) -> Any:
        requests.append(request)
        return ["beta"]

    flow = make_flow(union_router("u", Union, policy=policy).to(alpha, beta), alpha.to(), beta.to())
    flow.run()
    await emit(flow, {"kind": "alpha", "v": 1})
    assert await fetch(flow) == ("beta", Alpha(kind="alpha", v=1))
    assert requests[0].message == Alpha(kind="alpha", v=1)
    assert requests[0].trace_id is None


# --- join_k -----


def test_join_k_rejects_non_positive() -> None:
    with pytest.raises(ValueError) as info:
        join_k("j", 0)
    assert str(info.value) == "k must be positive"


async def test_join_k_aggregates_messages(make_flow: Any) -> None:
    join = join_k("join", 2)
    assert join.name == "join"
    assert join.policy.validate == "none"
    flow = make_flow(join.to())
    flow.run()
    first = msg("a", meta={"first": True})
    second = msg("b", trace_id=first.trace_id)
    await emit(flow, first)
    await emit(flow, second)
    out = await fetch(flow)
    assert out.payload == ["a", "b"]
    assert out.meta == {"first": True}
    assert out.trace_id == first.trace_id
    assert out is not first


async def test_join_k_raw_items(make_flow: Any) -> None:
    @dataclasses.dataclass
    class Item:
        trace_id: str
        v: int

    flow = make_flow(join_k("join", 3).to())
    flow.run()
    items = [Item("t", i) for i in range(3)]
    for item in items:
        await emit(flow, item)
    assert await fetch(flow) == items


async def test_join_k_separates_traces_and_restarts(make_flow: Any) -> None:
    flow = make_flow(join_k("join", 2).to())
    flow.run()
    a1, b1 = msg("a1"), msg("b1")
    a2 = msg("a2", trace_id=a1.trace_id)
    b2 = msg("b2", trace_id=b1.trace_id)
    a3 = msg("a3", trace_id=a1.trace_id)
    a4 = msg("a4", trace_id=a1.trace_id)
    for m in (a1, b1, a2, b2, a3, a4):
        await emit(flow, m)
    outs = [(await fetch(flow)).payload for _ in range(3)]
    assert outs == [["a1", "a2"], ["b1", "b2"], ["a3", "a4"]]


async def test_join_k_requires_trace_id(make_flow: Any) -> None:
    log = EventLog()
    flow = make_flow(join_k("join", 2).to(), middlewares=[log])
    flow.run()
    await emit(flow, "no-trace")
    (error,) = await log.wait_for("node_error")
    assert error.extra["exception"] == repr(ValueError("join_k requires messages with trace_id"))


# --- policies -----


def request(trace_id: str | None = "t") -> RoutingRequest:
    router = Node(lambda_fn, name="r")
    return RoutingRequest(
        message=None, context=Context(router), node=router, proposed=(), trace_id=trace_id
    )


async def lambda_fn(item: Any, ctx: Any) -> Any:
    return item


def test_routing_request_fields() -> None:
    assert [f.name for f in dataclasses.fields(RoutingRequest)] == [
        "message",
        "context",
        "node",
        "proposed",
        "trace_id",
    ]


def test_dict_policy_select() -> None:
    mapping = {"t": ["router"]}
    policy = DictRoutingPolicy(mapping, default="d")
    mapping["t"] = "mutated"
    assert policy.select(request("t")) == ["router"]
    assert policy.select(request("other")) == "d"
    assert policy.select(request(None)) == "d"
    policy.update_mapping({"other": "x"})
    assert policy.select(request("other")) == "x"
    assert policy.select(request("t")) == "d"
    policy.set_default("e")
    assert policy.select(request("t")) == "e"


def test_dict_policy_from_json(tmp_path: Path) -> None:
    assert DictRoutingPolicy.from_json('{"t": "a"}', default="b").select(request()) == "a"
    with pytest.raises(TypeError) as info:
        DictRoutingPolicy.from_json("[1]")
    assert str(info.value) == "JSON payload must decode to a mapping"
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"t": "é"}), encoding="utf-8")
    assert DictRoutingPolicy.from_json_file(str(path)).select(request()) == "é"


def test_dict_policy_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PF_CONF_POLICY", raising=False)
    with pytest.raises(KeyError) as info:
        DictRoutingPolicy.from_env("PF_CONF_POLICY")
    assert info.value.args[0] == "Environment variable 'PF_CONF_POLICY' not set"
    monkeypatch.setenv("PF_CONF_POLICY", '{"t": "x"}')
    assert DictRoutingPolicy.from_env("PF_CONF_POLICY").select(request()) == "x"
    policy = DictRoutingPolicy.from_env(
        "PF_CONF_POLICY", loader=lambda raw: {"k": raw}, key_getter=lambda r: "k", default="d"
    )
    assert policy.select(request()) == '{"t": "x"}'
    with pytest.raises(TypeError) as type_info:
        DictRoutingPolicy.from_env("PF_CONF_POLICY", loader=lambda raw: [raw])
    assert str(type_info.value) == "Policy loader must return a mapping"


async def test_evaluate_policy_variants() -> None:
    class Sync:
        def select(self, req: RoutingRequest) -> str:
            return "sync"

    class Async:
        async def select(self, req: RoutingRequest) -> str:
            return "async"

    async def coro(req: RoutingRequest) -> str:
        return "fn"

    assert await evaluate_policy(Sync(), request()) == "sync"
    assert await evaluate_policy(Async(), request()) == "async"
    assert await evaluate_policy(coro, request()) == "fn"
    assert await evaluate_policy(lambda r: None, request()) is None


def test_routing_request_is_slotted() -> None:
    assert not hasattr(request(), "__dict__")


async def test_join_k_buckets_persist_across_runs(make_flow: Any) -> None:
    join = join_k("join", 2)
    flow = make_flow(join.to())
    log = EventLog()
    flow.add_middleware(log)
    flow.run()
    first = msg("a")
    await emit(flow, first)
    await log.wait_for("node_success")
    await flow.stop()
    flow.run()
    await emit(flow, msg("b", trace_id=first.trace_id))
    assert (await fetch(flow)).payload == ["a", "b"]
