"""``predicate_router`` and ``union_router`` invoked directly with a recording context."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from patterns_support import RecordingContext, make_node
from pydantic import BaseModel, Field, ValidationError

from penguiflow import patterns
from penguiflow.node import Node, NodePolicy
from penguiflow.patterns import predicate_router, union_router
from penguiflow.policies import DictRoutingPolicy, RoutingRequest
from penguiflow.types import Headers, Message


def _message(payload: Any = "x", trace_id: str = "t1") -> Message:
    return Message(payload=payload, headers=Headers(tenant="acme"), trace_id=trace_id)


def test_patterns_exports_exactly_the_documented_names() -> None:
    assert set(patterns.__all__) == {"map_concurrent", "join_k", "predicate_router", "union_router"}


@pytest.mark.parametrize(
    "factory",
    [
        pytest.param(lambda: predicate_router("r", lambda m: None), id="predicate_router"),
        pytest.param(lambda: union_router("r", int), id="union_router"),
    ],
)
def test_routers_are_plain_nodes_without_validation(factory: Any) -> None:
    node = factory()
    assert isinstance(node, Node)
    assert node.name == "r"
    assert node.policy == NodePolicy(validate="none")


# --- predicate_router ------------------------------------------------------------


async def test_predicate_router_forwards_the_original_item_to_named_successors(
    left: Node, right: Node
) -> None:
    router = predicate_router("router", lambda m: ["left"] if m.payload == "L" else ["right"])
    ctx = RecordingContext(left, right)
    msg = _message("L")
    assert await router.invoke(msg, ctx, registry=None) is None
    assert ctx.emitted == [(msg, [left])]
    assert ctx.emitted[0][0] is msg


@pytest.mark.parametrize(
    ("decision", "expected"),
    [
        pytest.param("right", ["right"], id="single-name"),
        pytest.param(("left", "right"), ["left", "right"], id="tuple-of-names"),
        pytest.param(["right", "left"], ["right", "left"], id="order-kept"),
    ],
)
async def test_predicate_router_resolves_names_against_successors(
    left: Node, right: Node, decision: Any, expected: list[str]
) -> None:
    router = predicate_router("router", lambda m: decision)
    ctx = RecordingContext(left, right)
    await router.invoke(_message(), ctx, registry=None)
    assert [node.name for node in ctx.emitted[0][1]] == expected


async def test_predicate_router_accepts_node_objects_and_mixed_entries(
    left: Node, right: Node
) -> None:
    router = predicate_router("router", lambda m: [right, "left"])
    ctx = RecordingContext(left, right)
    await router.invoke(_message(), ctx, registry=None)
    assert ctx.emitted[0][1] == [right, left]


async def test_predicate_router_passes_non_successor_nodes_through_to_emit(left: Node) -> None:
    stranger = make_node("stranger")
    router = predicate_router("router", lambda m: stranger)
    ctx = RecordingContext(left)
    await router.invoke(_message(), ctx, registry=None)
    assert ctx.emitted[0][1] == [stranger]


async def test_predicate_router_matches_the_first_successor_with_a_name(left: Node) -> None:
    twin = make_node("left")
    router = predicate_router("router", lambda m: "left")
    ctx = RecordingContext(left, twin)
    await router.invoke(_message(), ctx, registry=None)
    assert ctx.emitted[0][1][0] is left


@pytest.mark.parametrize("decision", [None, [], ()], ids=["none", "empty-list", "empty-tuple"])
async def test_predicate_router_drops_on_none_or_empty(left: Node, decision: Any) -> None:
    router = predicate_router("router", lambda m: decision)
    ctx = RecordingContext(left)
    assert await router.invoke(_message(), ctx, registry=None) is None
    assert ctx.emitted == []


async def test_predicate_router_unknown_name_raises_key_error(left: Node) -> None:
    router = predicate_router("router", lambda m: ["left", "nowhere"])
    ctx = RecordingContext(left)
    with pytest.raises(KeyError) as info:
        await router.invoke(_message(), ctx, registry=None)
    assert info.value.args == ("No successor named 'nowhere'",)
    assert ctx.emitted == []


async def test_predicate_router_ignores_the_rookery_key_of_its_successor_map(left: Node) -> None:
    ctx = RecordingContext(left)
    ctx._outgoing[object()] = object()  # stands for ROOKERY on an egress router
    router = predicate_router("router", lambda m: "left")
    await router.invoke(_message(), ctx, registry=None)
    assert ctx.emitted[0][1] == [left]


async def test_predicate_router_names_fail_without_a_successor_map() -> None:
    router = predicate_router("router", lambda m: "left")
    with pytest.raises(KeyError, match="No successor named 'left'"):
        await router.invoke(_message(), object(), registry=None)


@pytest.mark.parametrize(
    "decision", [42, [1], ["left", 3.5], [None]], ids=["int", "list-int", "mixed", "list-none"]
)
async def test_predicate_router_rejects_entries_that_are_not_nodes_or_names(
    left: Node, decision: Any
) -> None:
    router = predicate_router("router", lambda m: decision)
    with pytest.raises(TypeError) as info:
        await router.invoke(_message(), RecordingContext(left), registry=None)
    assert str(info.value) == "Targets must be Node or str"


async def test_predicate_router_builds_the_routing_request(left: Node, right: Node) -> None:
    seen: list[RoutingRequest] = []

    def policy(request: RoutingRequest) -> Any:
        seen.append(request)
        return request.proposed

    router = predicate_router("router", lambda m: ["left", "right"], policy=policy)
    ctx = RecordingContext(left, right)
    msg = _message(trace_id="trace-9")
    await router.invoke(msg, ctx, registry=None)
    (request,) = seen
    assert request.message is msg
    assert request.context is ctx
    assert request.node is router
    assert request.proposed == (left, right)
    assert request.trace_id == "trace-9"
    assert ctx.emitted == [(msg, [left, right])]


async def test_predicate_router_request_trace_id_is_none_for_traceless_items(left: Node) -> None:
    seen: list[str | None] = []

    def policy(request: RoutingRequest) -> Any:
        seen.append(request.trace_id)
        return "left"

    router = predicate_router("router", lambda m: "left", policy=policy)
    await router.invoke("bare", RecordingContext(left), registry=None)
    assert seen == [None]


@pytest.mark.parametrize("decision", [None, []], ids=["none", "empty"])
async def test_predicate_router_policy_can_drop(left: Node, decision: Any) -> None:
    router = predicate_router("router", lambda m: "left", policy=lambda r: decision)
    ctx = RecordingContext(left)
    await router.invoke(_message(), ctx, registry=None)
    assert ctx.emitted == []


async def test_predicate_router_policy_may_pick_successors_not_proposed(
    left: Node, right: Node
) -> None:
    async def policy(request: RoutingRequest) -> str:
        return "right"

    router = predicate_router("router", lambda m: "left", policy=policy)
    ctx = RecordingContext(left, right)
    await router.invoke(_message(), ctx, registry=None)
    assert ctx.emitted[0][1] == [right]


async def test_predicate_router_policy_decision_is_resolved_like_a_predicate(left: Node) -> None:
    router = predicate_router("router", lambda m: "left", policy=lambda r: "ghost")
    with pytest.raises(KeyError, match="No successor named 'ghost'"):
        await router.invoke(_message(), RecordingContext(left), registry=None)


async def test_predicate_router_policy_is_not_consulted_when_predicate_drops(left: Node) -> None:
    calls: list[RoutingRequest] = []
    router = predicate_router("router", lambda m: None, policy=calls.append)
    await router.invoke(_message(), RecordingContext(left), registry=None)
    assert calls == []


async def test_predicate_router_with_dict_policy_routes_by_tenant(left: Node, right: Node) -> None:
    policy = DictRoutingPolicy(
        {"acme": "left"}, default="right", key_getter=lambda r: r.message.headers.tenant
    )
    router = predicate_router("router", lambda m: ["left", "right"], policy=policy)
    ctx = RecordingContext(left, right)
    acme = _message()
    other = Message(payload="x", headers=Headers(tenant="zeta"))
    await router.invoke(acme, ctx, registry=None)
    await router.invoke(other, ctx, registry=None)
    assert ctx.emitted == [(acme, [left]), (other, [right])]


# --- union_router ----------------------------------------------------------------


class Search(BaseModel):
    kind: Literal["search"]
    query: str


class Compute(BaseModel):
    kind: Literal["compute"]
    expression: str


Task = Annotated[Search | Compute, Field(discriminator="kind")]


class Plain(BaseModel):
    value: int


async def test_union_router_forwards_the_validated_model_to_the_kind_successor() -> None:
    search, compute = make_node("search"), make_node("compute")
    router = union_router("union", Task)
    ctx = RecordingContext(search, compute)
    await router.invoke({"kind": "compute", "expression": "1+1"}, ctx, registry=None)
    ((item, targets),) = ctx.emitted
    assert item == Compute(kind="compute", expression="1+1")
    assert targets == [compute]


async def test_union_router_passes_model_instances_through() -> None:
    search = make_node("search")
    router = union_router("union", Task)
    ctx = RecordingContext(search)
    task = Search(kind="search", query="q")
    await router.invoke(task, ctx, registry=None)
    assert ctx.emitted[0][0] == task


async def test_union_router_uses_the_type_name_without_a_kind_attribute() -> None:
    plain = make_node("Plain")
    router = union_router("union", Plain)
    ctx = RecordingContext(plain)
    await router.invoke({"value": 3}, ctx, registry=None)
    assert ctx.emitted == [(Plain(value=3), [plain])]


async def test_union_router_rejects_message_envelopes() -> None:
    router = union_router("union", Task)
    with pytest.raises(ValidationError):
        await router.invoke(
            _message({"kind": "search", "query": "q"}), RecordingContext(), registry=None
        )


async def test_union_router_unknown_variant_successor_raises_key_error() -> None:
    router = union_router("union", Task)
    ctx = RecordingContext(make_node("search"))
    with pytest.raises(KeyError) as info:
        await router.invoke({"kind": "compute", "expression": "e"}, ctx, registry=None)
    assert info.value.args == ("No successor named 'compute'",)


async def test_union_router_policy_sees_the_validated_object() -> None:
    search, compute = make_node("search"), make_node("compute")
    seen: list[RoutingRequest] = []

    def policy(request: RoutingRequest) -> str:
        seen.append(request)
        return "search"

    router = union_router("union", Task, policy=policy)
    ctx = RecordingContext(search, compute)
    await router.invoke({"kind": "compute", "expression": "e"}, ctx, registry=None)
    (request,) = seen
    assert isinstance(request.message, Compute)
    assert request.trace_id is None
    assert request.proposed == (compute,)
    assert ctx.emitted == [(request.message, [search])]


async def test_union_router_policy_none_drops() -> None:
    router = union_router("union", Task, policy=lambda r: None)
    ctx = RecordingContext(make_node("search"))
    await router.invoke({"kind": "search", "query": "q"}, ctx, registry=None)
    assert ctx.emitted == []


NAMES = ["alpha", "beta", "gamma", "ghost"]


@settings(max_examples=100, deadline=None)
@given(
    decision=st.lists(st.sampled_from(NAMES), max_size=6),
    tenant_map=st.dictionaries(st.sampled_from(["t1", "t2"]), st.sampled_from(NAMES[:3])),
    tenant=st.sampled_from(["t1", "t2", "t3"]),
)
def test_property_router_emits_exactly_the_resolved_targets(
    decision: list[str], tenant_map: dict[str, str], tenant: str
) -> None:
    """Predicate then policy: targets resolve by name in order; unknown names fail."""
    successors = {name: make_node(name) for name in NAMES[:3]}
    policy = DictRoutingPolicy(
        tenant_map, default=None, key_getter=lambda r: r.message.headers.tenant
    )

    def keep_proposal_unless_mapped(request: RoutingRequest) -> Any:
        return policy.select(request) or request.proposed

    router = predicate_router("router", lambda m: decision, policy=keep_proposal_unless_mapped)
    ctx = RecordingContext(*successors.values())
    msg = Message(payload="x", headers=Headers(tenant=tenant))

    async def main() -> None:
        await router.invoke(msg, ctx, registry=None)

    if "ghost" in decision:
        with pytest.raises(KeyError, match="No successor named 'ghost'"):
            asyncio.run(main())
        assert ctx.emitted == []
        return
    asyncio.run(main())
    if not decision:
        assert ctx.emitted == []
    elif tenant in tenant_map:
        assert ctx.emitted == [(msg, [successors[tenant_map[tenant]]])]
    else:
        assert ctx.emitted == [(msg, [successors[name] for name in decision])]
