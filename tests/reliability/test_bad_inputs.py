"""Bad input to every public entry point gets a clear error, never a hang (hypothesis).

Each test draws malformed values (wrong payload types, invalid headers, unknown
node names, malformed policies) and checks the documented exception type and
text; every await runs under ``asyncio.timeout(5)``, so a hang fails the test.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from penguiflow import (
    WM,
    CycleError,
    DictRoutingPolicy,
    FlowError,
    Headers,
    Message,
    ModelRegistry,
    Node,
    NodePolicy,
    call_playbook,
    create,
    join_k,
    predicate_router,
)
from penguiflow.actors import Mailbox
from penguiflow.errors import MailboxClosed
from penguiflow.supervision import Supervisor
from penguiflow.testkit import run_one
from penguiflow_a2a import A2AMessagePayload, A2ATaskCancelRequest

FLOW_SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

not_text = st.one_of(
    st.none(), st.integers(), st.floats(allow_nan=False), st.lists(st.integers(), max_size=2)
)
junk = st.one_of(
    not_text,
    st.text(max_size=10),
    st.booleans(),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=3),
)


async def _echo(msg: Any, ctx: Any) -> Any:
    return msg


def _node(name: str, **policy: Any) -> Node:
    return Node(_echo, name=name, policy=NodePolicy(validate="none", **policy))


# -- message models -----------------------------------------------------------------------


@given(
    headers=st.one_of(
        not_text,
        st.text(max_size=5),
        st.dictionaries(st.sampled_from(["topic", "priority"]), st.text(max_size=3)),
    )
)
def test_a_message_with_invalid_headers_is_rejected(headers: Any) -> None:
    with pytest.raises(pydantic.ValidationError):
        Message(payload="x", headers=headers)


@given(tenant=not_text)
def test_headers_need_a_text_tenant(tenant: Any) -> None:
    with pytest.raises(pydantic.ValidationError):
        Headers(tenant=tenant)


@given(
    field=st.sampled_from(["trace_id", "deadline_s", "meta"]),
    value=st.one_of(st.lists(st.integers(), min_size=1, max_size=2), st.just(object())),
)
def test_message_envelope_fields_are_type_checked(field: str, value: Any) -> None:
    with pytest.raises(pydantic.ValidationError):
        Message(payload="x", headers=Headers(tenant="t"), **{field: value})


@given(
    hops=st.one_of(
        st.text(min_size=1, max_size=3).filter(lambda s: not any(c.isdigit() for c in s)),
        st.lists(st.integers(), max_size=1),
    )
)
def test_working_memory_budgets_are_type_checked(hops: Any) -> None:
    with pytest.raises(pydantic.ValidationError):
        WM(query="q", budget_hops=hops)


@given(body=st.dictionaries(st.sampled_from(["headers", "meta", "traceId"]), junk, max_size=3))
def test_an_a2a_payload_without_payload_is_rejected(body: dict[str, Any]) -> None:
    with pytest.raises(pydantic.ValidationError):
        A2AMessagePayload.model_validate(body)


@given(task_id=not_text.filter(lambda v: v is not None))
def test_an_a2a_cancel_needs_a_text_task_id(task_id: Any) -> None:
    with pytest.raises(pydantic.ValidationError):
        A2ATaskCancelRequest.model_validate({"taskId": task_id})


# -- nodes and policies -------------------------------------------------------------------


@given(validate=st.text(max_size=8).filter(lambda v: v not in {"both", "in", "out", "none"}))
def test_a_policy_with_an_unknown_validate_mode_is_refused(validate: str) -> None:
    with pytest.raises(ValueError, match="validate must be one of"):
        NodePolicy(validate=validate)


@pytest.mark.parametrize(
    "func",
    [
        pytest.param(lambda m, c: m, id="lambda"),
        pytest.param(print, id="builtin"),
        pytest.param(lambda: None, id="sync-no-args"),
    ],
)
def test_a_node_needs_an_async_function(func: Any) -> None:
    with pytest.raises(TypeError, match="Node function must be declared with async def"):
        Node(func)


@pytest.mark.parametrize("arity", [0, 1, 3])
def test_a_node_function_takes_exactly_message_and_context(arity: int) -> None:
    namespace: dict[str, Any] = {}
    params = ", ".join(f"p{i}" for i in range(arity))
    exec(f"async def f({params}):\n    return None", namespace)
    with pytest.raises(ValueError, match="exactly two parameters"):
        Node(namespace["f"], name="f")


@given(k=st.integers(max_value=0))
def test_join_k_needs_a_positive_k(k: int) -> None:
    with pytest.raises(ValueError, match="k must be positive"):
        join_k("join", k)


@given(text=st.one_of(st.text(max_size=20), st.builds(str, junk)))
def test_a_routing_policy_from_json_parses_or_says_why(text: str) -> None:
    error: Exception | None = None
    try:
        policy = DictRoutingPolicy.from_json(text)
    except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
        error = exc
    if error is not None:
        assert str(error)
    else:
        assert isinstance(policy, DictRoutingPolicy)


@given(
    strategy=st.text(max_size=12).filter(
        lambda s: s not in {"one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one"}
    )
)
def test_a_supervisor_with_an_unknown_strategy_is_refused(strategy: str) -> None:
    with pytest.raises(ValueError, match="strategy must be one of"):
        Supervisor(strategy)  # type: ignore[arg-type]


def test_a_cyclic_graph_is_refused_at_construction() -> None:
    a, b = _node("a"), _node("b")
    with pytest.raises(CycleError, match="Flow contains a cycle"):
        create(a.to(b), b.to(a))


async def test_a_registry_missing_a_validating_node_is_refused_by_run() -> None:
    flow = create(Node(_echo, name="checked").to())
    with pytest.raises(RuntimeError, match=r"missing entries.*checked"):
        flow.run(registry=ModelRegistry())
    assert not flow.running


def test_an_unknown_node_name_in_a_registry_is_a_key_error() -> None:
    with pytest.raises(KeyError, match="not registered"):
        ModelRegistry().adapters("ghost")


# -- flows --------------------------------------------------------------------------------


async def test_emitting_to_a_node_outside_the_flow_is_a_key_error() -> None:
    inside, outside = _node("inside"), _node("outside")
    flow = create(inside.to())
    flow.run()
    try:
        async with asyncio.timeout(5):
            with pytest.raises(KeyError, match="Unknown target outside for OpenSea"):
                await flow.emit(Message(payload=1, headers=Headers(tenant="t")), to=outside)
            with pytest.raises(KeyError, match="Unknown target outside for Rookery"):
                await flow.fetch(from_=outside)
    finally:
        await flow.stop()


async def test_cancelling_on_a_stopped_flow_is_a_runtime_error() -> None:
    flow = create(_node("n").to())
    with pytest.raises(RuntimeError, match="PenguiFlow is not running"):
        await flow.cancel("t")


@given(message=junk)
async def test_run_one_needs_a_message(message: Any) -> None:
    flow = create(_node("n").to())
    with pytest.raises(TypeError, match=r"run_one expects a penguiflow\.types\.Message instance"):
        async with asyncio.timeout(5):
            await run_one(flow, message)


@FLOW_SETTINGS
@given(payload=junk)
async def test_a_payload_of_the_wrong_type_ends_as_a_flow_error(payload: Any) -> None:
    """A validating node fed a wrong payload reports NODE_EXCEPTION; nothing hangs."""

    class Query(pydantic.BaseModel):
        text: str

    registry = ModelRegistry()
    registry.register("typed", Query, Query)
    flow = create(Node(_echo, name="typed").to(), emit_errors_to_rookery=True)
    message = Message(payload=payload, headers=Headers(tenant="t"))
    flow.run(registry=registry)
    try:
        async with asyncio.timeout(5):
            await flow.emit(message)
            result = await flow.fetch()
    finally:
        await flow.stop()
    assert isinstance(result, FlowError)
    assert result.code == "NODE_EXCEPTION"
    assert result.trace_id == message.trace_id
    assert isinstance(result.original_exc, pydantic.ValidationError)


@FLOW_SETTINGS
@given(
    decision=st.one_of(
        st.integers(), st.floats(allow_nan=False), st.lists(st.integers(), min_size=1, max_size=2)
    )
)
async def test_a_router_decision_that_is_not_a_node_or_name_is_a_flow_error(decision: Any) -> None:
    router = predicate_router("router", lambda m: decision)
    flow = create(router.to(_node("next")), _node("next").to(), emit_errors_to_rookery=True)
    flow.run()
    try:
        async with asyncio.timeout(5):
            await flow.emit(Message(payload=1, headers=Headers(tenant="t")))
            result = await flow.fetch()
    finally:
        await flow.stop()
    assert isinstance(result, FlowError)
    assert isinstance(result.original_exc, TypeError)
    assert str(result.original_exc) == "Targets must be Node or str"


@given(made=junk)
async def test_a_playbook_factory_returning_junk_raises(made: Any) -> None:
    with pytest.raises((TypeError, ValueError, AttributeError)):
        async with asyncio.timeout(5):
            await call_playbook(lambda: made, Message(payload=1, headers=Headers(tenant="t")))


async def test_a_detached_context_cannot_stream() -> None:
    from penguiflow import Context
    from penguiflow.core import Endpoint

    ctx = Context(Endpoint("test"))
    with pytest.raises(RuntimeError, match="Context is not attached to a running flow"):
        await ctx.emit_chunk(parent=Message(payload=1, headers=Headers(tenant="t")), text="x")


async def test_putting_into_a_closed_mailbox_raises_instead_of_waiting() -> None:
    mailbox = Mailbox(1)
    mailbox.put_nowait("full")
    waiting = asyncio.create_task(mailbox.put("blocked"))
    await asyncio.sleep(0)  # the put is now parked on the full lane (scheduling contract)
    mailbox.close()
    async with asyncio.timeout(5):
        with pytest.raises(MailboxClosed):
            await waiting
        with pytest.raises(MailboxClosed):
            await mailbox.put("late")
