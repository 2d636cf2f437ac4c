"""Conformance: spec/node-registry.md (Node, NodePolicy, ModelRegistry, validation)."""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import pydantic
import pytest
from conformance_support import EventLog, emit, fetch, msg
from pydantic import BaseModel

from penguiflow import Message, ModelRegistry, Node, NodePolicy
from penguiflow.core import Context, Endpoint


class In(BaseModel):
    text: str


class Out(BaseModel):
    n: int


async def echo(item: Any, ctx: Any) -> Any:
    return item


# --- NodePolicy -----


def test_node_policy_defaults_and_field_order() -> None:
    p = NodePolicy()
    fields = dataclasses.fields(NodePolicy)
    assert [f.name for f in fields[:6]] == [
        "validate",
        "timeout_s",
        "max_retries",
        "backoff_base",
        "backoff_mult",
        "max_backoff",
    ]
    # Project additions come after the 2.2.5 fields and default to None.
    assert all(f.default is None for f in fields[6:])
    assert (p.validate, p.timeout_s, p.max_retries) == ("both", None, 0)
    assert (p.backoff_base, p.backoff_mult, p.max_backoff) == (0.5, 2.0, None)


def test_node_policy_is_positional_and_slotted() -> None:
    p = NodePolicy("none", 1.0, 2, 0.1, 3.0, 4.0)
    assert (p.validate, p.timeout_s, p.max_retries, p.backoff_base, p.backoff_mult) == (
        "none",
        1.0,
        2,
        0.1,
        3.0,
    )
    assert p.max_backoff == 4.0
    assert not hasattr(p, "__dict__")


@pytest.mark.parametrize("value", ["both", "in", "out", "none"])
def test_node_policy_accepts_validate_values(value: str) -> None:
    assert NodePolicy(validate=value).validate == value


def test_node_policy_rejects_other_validate_values() -> None:
    with pytest.raises(ValueError, match="validate must be one of") as info:
        NodePolicy(validate="all")
    assert str(info.value) == "validate must be one of 'both', 'in', 'out', 'none'"


def test_node_policy_does_not_reject_negative_numbers() -> None:
    p = NodePolicy(max_retries=-1, timeout_s=-1.0)
    assert p.max_retries == -1


# --- Node -----


def test_node_defaults_name_from_function() -> None:
    node = Node(echo)
    assert node.name == "echo"
    assert isinstance(node.policy, NodePolicy)
    assert node.policy == NodePolicy()
    assert node.allow_cycle is False
    assert len(node.node_id) == 32
    int(node.node_id, 16)


def test_node_empty_name_is_replaced() -> None:
    assert Node(echo, name="").name == "echo"


def test_node_ids_are_unique_and_hash_by_id() -> None:
    a, b = Node(echo, name="x"), Node(echo, name="x")
    assert a.node_id != b.node_id
    assert hash(a) == hash(a.node_id)
    assert a != b
    assert len({a, b}) == 2


def test_node_policy_instances_are_not_shared() -> None:
    assert Node(echo).policy is not Node(echo).policy


def test_node_is_slotted_dataclass() -> None:
    node = Node(echo)
    assert dataclasses.is_dataclass(node)
    assert not hasattr(node, "__dict__")


def test_node_repr() -> None:
    node = Node(echo, name="x")
    assert repr(node) == f"Node(name='x', node_id={node.node_id})"


def test_sync_function_is_rejected() -> None:
    def sync(a: Any, b: Any) -> None:
        return None

    with pytest.raises(TypeError) as info:
        Node(sync)  # type: ignore[arg-type]
    assert str(info.value) == "Node function must be declared with async def"


def test_lambda_and_async_callable_object_are_rejected() -> None:
    class AsyncCall:
        async def __call__(self, a: Any, b: Any) -> None:
            return None

    with pytest.raises(TypeError, match="async def"):
        Node(lambda a, b: None)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="async def"):
        Node(AsyncCall())  # type: ignore[arg-type]


def test_type_check_comes_before_arity_check() -> None:
    def sync_one(a: Any) -> None:
        return None

    with pytest.raises(TypeError):
        Node(sync_one)  # type: ignore[arg-type]


@pytest.mark.parametrize("arity", [0, 1, 3])
def test_node_requires_exactly_two_parameters(arity: int) -> None:
    namespace: dict[str, Any] = {}
    params = ", ".join(f"p{i}" for i in range(arity))
    exec(f"async def fn({params}):\n    return None", namespace)
    with pytest.raises(ValueError, match="exactly two parameters") as info:
        Node(namespace["fn"], name="n")
    assert str(info.value) == (
        f"Node 'n' must accept exactly two parameters (message, ctx); got {arity}"
    )


def test_varargs_counts_as_one_parameter() -> None:
    async def fn(*args: Any) -> None:
        return None

    with pytest.raises(ValueError, match="got 1"):
        Node(fn)


def test_keyword_only_context_is_rejected() -> None:
    async def fn(message: Any, *, ctx: Any) -> None:
        return None

    with pytest.raises(ValueError) as info:
        Node(fn)
    assert str(info.value) == "Context parameter must be positional"


def test_kwargs_second_is_rejected_as_not_positional() -> None:
    async def fn(message: Any, **ctx: Any) -> None:
        return None

    with pytest.raises(ValueError, match="Context parameter must be positional"):
        Node(fn)


def test_positional_only_parameters_are_fine() -> None:
    async def fn(message: Any, ctx: Any, /) -> None:
        return None

    assert Node(fn).name == "fn"


def test_to_returns_adjacency_tuple() -> None:
    a, b, c = Node(echo, name="a"), Node(echo, name="b"), Node(echo, name="c")
    assert a.to(b, c) == (a, (b, c))
    assert a.to() == (a, ())


# --- Node.invoke -----


async def test_invoke_without_registry_does_not_validate() -> None:
    async def fn(item: Any, ctx: Any) -> Any:
        return {"raw": item}

    node = Node(fn, name="n")
    assert await node.invoke({"text": "x"}, object(), registry=None) == {"raw": {"text": "x"}}


async def test_invoke_validates_in_and_out_with_both() -> None:
    seen: list[Any] = []

    async def fn(item: Any, ctx: Any) -> Any:
        seen.append(item)
        return {"n": 3}

    registry = ModelRegistry()
    registry.register("n", In, Out)
    result = await Node(fn, name="n").invoke({"text": "x"}, None, registry=registry)
    assert seen == [In(text="x")]
    assert result == Out(n=3)


async def test_invoke_passes_model_instances_through() -> None:
    given = In(text="x")
    seen: list[Any] = []

    async def fn(item: Any, ctx: Any) -> Any:
        seen.append(item)
        return None

    registry = ModelRegistry()
    registry.register("n", In, Out)
    assert await Node(fn, name="n").invoke(given, None, registry=registry) is None
    assert seen[0] == given


@pytest.mark.parametrize(
    ("validate", "in_validated", "out_validated"),
    [("in", True, False), ("out", False, True), ("none", False, False)],
)
async def test_invoke_respects_validate_scope(
    validate: str, in_validated: bool, out_validated: bool
) -> None:
    seen: list[Any] = []

    async def fn(item: Any, ctx: Any) -> Any:
        seen.append(item)
        return {"n": 1}

    registry = ModelRegistry()
    registry.register("n", In, Out)
    node = Node(fn, name="n", policy=NodePolicy(validate=validate))
    result = await node.invoke({"text": "x"}, None, registry=registry)
    assert isinstance(seen[0], In) is in_validated
    assert isinstance(result, Out) is out_validated


async def test_invoke_with_unregistered_node_raises_key_error() -> None:
    with pytest.raises(KeyError):
        await Node(echo, name="ghost").invoke({}, None, registry=ModelRegistry())


async def test_invoke_with_validate_none_skips_registry_lookup() -> None:
    node = Node(echo, name="ghost", policy=NodePolicy(validate="none"))
    assert await node.invoke(5, None, registry=ModelRegistry()) == 5


async def test_invoke_input_mismatch_raises_validation_error() -> None:
    registry = ModelRegistry()
    registry.register("n", In, Out)
    with pytest.raises(pydantic.ValidationError):
        await Node(echo, name="n").invoke(msg("x"), None, registry=registry)


async def test_invoke_output_mismatch_raises_validation_error() -> None:
    async def bad(item: Any, ctx: Any) -> Any:
        return {"n": "nope"}

    registry = ModelRegistry()
    registry.register("n", In, Out)
    with pytest.raises(ValueError):
        await Node(bad, name="n").invoke({"text": "x"}, None, registry=registry)


async def test_invoke_passes_ctx_untouched() -> None:
    marker = object()
    got: list[Any] = []

    async def fn(item: Any, ctx: Any) -> None:
        got.append(ctx)

    await Node(fn).invoke(1, marker, registry=None)
    assert got == [marker]


async def test_invoke_with_detached_context() -> None:
    ctx = Context(Endpoint("test"))
    assert ctx.runtime is None
    assert ctx.owner == Endpoint("test")
    assert await Node(echo).invoke(7, ctx, registry=None) == 7


# --- ModelRegistry -----


def test_registry_register_and_lookup() -> None:
    registry = ModelRegistry()
    registry.register("triage", In, Out)
    in_a, out_a = registry.adapters("triage")
    assert isinstance(in_a, pydantic.TypeAdapter)
    assert isinstance(out_a, pydantic.TypeAdapter)
    assert registry.models("triage") == (In, Out)


def test_registry_duplicate_name() -> None:
    registry = ModelRegistry()
    registry.register("n", In, Out)
    with pytest.raises(ValueError) as info:
        registry.register("n", In, Out)
    assert str(info.value) == "Node 'n' already registered"


def test_registry_duplicate_checked_before_model_type() -> None:
    registry = ModelRegistry()
    registry.register("n", In, Out)
    with pytest.raises(ValueError, match="already registered"):
        registry.register("n", int, Out)  # type: ignore[arg-type]


def test_registry_rejects_non_models() -> None:
    with pytest.raises(TypeError) as info:
        ModelRegistry().register("n", int, Out)  # type: ignore[arg-type]
    assert str(info.value) == "Models must inherit from pydantic.BaseModel"
    with pytest.raises(TypeError):
        ModelRegistry().register("m", In, dict)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["adapters", "models"])
def test_registry_unknown_name(method: str) -> None:
    with pytest.raises(KeyError) as info:
        getattr(ModelRegistry(), method)("ghost")
    assert info.value.args[0] == "Node 'ghost' not registered"


def test_registry_accepts_message_model() -> None:
    registry = ModelRegistry()
    registry.register("n", Message, Message)
    assert registry.models("n") == (Message, Message)


# --- Runtime use of the registry -----


async def test_run_checks_registry_coverage(make_flow: Any) -> None:
    a = Node(echo, name="zeta")
    b = Node(echo, name="alpha")
    c = Node(echo, name="skip", policy=NodePolicy(validate="none"))
    flow = make_flow(a.to(b), b.to(c))
    with pytest.raises(RuntimeError) as info:
        flow.run(registry=ModelRegistry())
    assert str(info.value) == (
        "ModelRegistry is missing entries for nodes requiring validation: alpha, zeta"
    )


async def test_run_without_registry_does_no_check(make_flow: Any) -> None:
    flow = make_flow(Node(echo, name="n").to())
    flow.run()
    assert flow.registry is None
    await emit(flow, {"anything": 1})
    assert await fetch(flow) == {"anything": 1}


async def test_registry_property_holds_last_registry(make_flow: Any) -> None:
    registry = ModelRegistry()
    registry.register("n", In, Out)
    flow = make_flow(Node(echo, name="n", policy=NodePolicy(validate="none")).to())
    flow.run(registry=registry)
    assert flow.registry is registry


async def test_flow_validates_through_registry(make_flow: Any) -> None:
    async def count(item: In, ctx: Any) -> dict[str, int]:
        return {"n": len(item.text)}

    registry = ModelRegistry()
    registry.register("count", In, Out)
    flow = make_flow(Node(count, name="count").to())
    flow.run(registry=registry)
    await emit(flow, {"text": "abc"})
    assert await fetch(flow) == Out(n=3)


async def test_validation_error_is_a_node_error(make_flow: Any) -> None:
    log = EventLog()
    registry = ModelRegistry()
    registry.register("n", In, Out)
    flow = make_flow(Node(echo, name="n").to(), middlewares=[log])
    flow.run(registry=registry)
    await emit(flow, msg({"text": "x"}))
    (failed,) = await log.wait_for("node_failed")
    assert "validation error for In" in failed.extra["exception"]
    assert failed.error_payload is not None
    assert failed.error_payload["exception_type"] == "ValidationError"
    assert log.kinds()[:3] == ["node_start", "node_error", "node_failed"]


async def test_duck_typed_registry_is_accepted(make_flow: Any) -> None:
    class Duck:
        def adapters(self, name: str) -> tuple[Any, Any]:
            return pydantic.TypeAdapter(In), pydantic.TypeAdapter(Out)

    async def fn(item: In, ctx: Any) -> dict[str, int]:
        return {"n": 1}

    flow = make_flow(Node(fn, name="n").to())
    flow.run(registry=Duck())
    await emit(flow, {"text": "x"})
    assert await fetch(flow) == Out(n=1)


async def test_message_to_message_warning(make_flow: Any) -> None:
    async def lossy(item: Message, ctx: Any) -> str:
        return "bare"

    registry = ModelRegistry()
    registry.register("lossy", Message, Message)
    flow = make_flow(Node(lossy, name="lossy", policy=NodePolicy(validate="none")).to())
    flow.run(registry=registry)
    with pytest.warns(RuntimeWarning, match="Message -> Message") as record:  # noqa: PT031
        await emit(flow, msg())
        result = await fetch(flow)
    assert result == "bare"
    texts = [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]
    assert (
        "Node 'lossy' is registered for Message -> Message outputs but returned str. "
        "Return a penguiflow.types.Message to preserve headers, trace_id, and meta."
    ) in texts


async def test_no_warning_when_message_is_returned(make_flow: Any) -> None:
    registry = ModelRegistry()
    registry.register("keep", Message, Message)
    flow = make_flow(Node(echo, name="keep").to())
    flow.run(registry=registry)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = msg()
        await emit(flow, m)
        assert await fetch(flow) is m


async def test_no_warning_without_registry(make_flow: Any) -> None:
    async def lossy(item: Any, ctx: Any) -> str:
        return "bare"

    flow = make_flow(Node(lossy, name="lossy").to())
    flow.run()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await emit(flow, msg())
        assert await fetch(flow) == "bare"


async def test_message_envelope_is_not_unwrapped(make_flow: Any) -> None:
    log = EventLog()
    registry = ModelRegistry()
    registry.register("n", In, Out)
    flow = make_flow(Node(echo, name="n").to(), middlewares=[log])
    flow.run(registry=registry)
    await emit(flow, msg(In(text="x")))
    (failed,) = await log.wait_for("node_failed")
    assert failed.node_name == "n"
    assert failed.error_payload is not None
    assert failed.error_payload["code"] == "NODE_EXCEPTION"


def test_node_field_order_and_positional_construction() -> None:
    assert [f.name for f in dataclasses.fields(Node)] == [
        "func",
        "name",
        "policy",
        "allow_cycle",
        "node_id",
    ]
    assert next(f for f in dataclasses.fields(Node) if f.name == "node_id").init is False
    policy = NodePolicy(validate="none")
    node = Node(echo, "named", policy, True)
    assert (node.name, node.policy, node.allow_cycle) == ("named", policy, True)
