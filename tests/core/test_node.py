"""Node and NodePolicy construction and invoke (spec/node-registry.md)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pydantic
import pytest

from penguiflow.core import Context, Endpoint
from penguiflow.node import Node, NodePolicy
from penguiflow.registry import ModelRegistry
from penguiflow.types import Headers, Message


class In(pydantic.BaseModel):
    x: int


class Out(pydantic.BaseModel):
    y: int


async def double(msg: Any, ctx: Any) -> Any:
    return {"y": msg.x * 2} if isinstance(msg, In) else msg


def test_policy_defaults_and_field_order() -> None:
    assert [f.name for f in fields(NodePolicy)] == [
        "validate",
        "timeout_s",
        "max_retries",
        "backoff_base",
        "backoff_mult",
        "max_backoff",
    ]
    policy = NodePolicy()
    assert (policy.validate, policy.timeout_s, policy.max_retries) == ("both", None, 0)
    assert (policy.backoff_base, policy.backoff_mult, policy.max_backoff) == (0.5, 2.0, None)


def test_policy_rejects_unknown_validate_mode() -> None:
    with pytest.raises(ValueError, match=r"^validate must be one of 'both', 'in', 'out', 'none'$"):
        NodePolicy(validate="all")


def test_policy_does_not_reject_negative_numbers() -> None:
    assert NodePolicy("none", -1.0, -2).max_retries == -2


@pytest.mark.parametrize(
    "func",
    [
        pytest.param(lambda m, c: None, id="lambda"),
        pytest.param(lambda: None, id="sync"),
    ],
)
def test_node_requires_async_def(func: Any) -> None:
    with pytest.raises(TypeError, match=r"^Node function must be declared with async def$"):
        Node(func)


def test_node_rejects_object_with_async_call() -> None:
    class Callable_:
        async def __call__(self, m: Any, c: Any) -> None: ...

    with pytest.raises(TypeError, match=r"async def"):
        Node(Callable_())


def test_node_name_defaults_to_function_name() -> None:
    assert Node(double).name == "double"
    assert Node(double, name="").name == "double"


@pytest.mark.parametrize("arity", [1, 3])
def test_node_requires_two_parameters(arity: int) -> None:
    namespace: dict[str, Any] = {}
    params = ", ".join(f"p{i}" for i in range(arity))
    exec(f"async def fn({params}):\n    return None", namespace)
    with pytest.raises(ValueError) as info:
        Node(namespace["fn"], name="n")
    assert str(info.value) == (
        f"Node 'n' must accept exactly two parameters (message, ctx); got {arity}"
    )


def test_node_rejects_keyword_only_context() -> None:
    async def fn(msg: Any, *, ctx: Any) -> None: ...

    with pytest.raises(ValueError, match=r"^Context parameter must be positional$"):
        Node(fn)


def test_node_star_args_count_as_one_parameter() -> None:
    async def fn(msg: Any, *args: Any) -> None: ...

    with pytest.raises(ValueError, match=r"Context parameter must be positional"):
        Node(fn)


def _outcome(func: Any) -> str:
    try:
        Node(func, name="n")
    except (TypeError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return "ok"


@pytest.mark.parametrize(
    "params",
    [
        "m, c",
        "m, /, c",
        "m, c, /",
        "m, c=None",
        "m, *, c",
        "*, m, c",
        "m, *c",
        "m, **c",
        "*m",
        "m, c, *, k",
        "m, c, *a",
        "m",
        "",
    ],
)
def test_plain_and_decorated_functions_are_checked_alike(params: str) -> None:
    # A plain function is checked from its code object, a decorated one (anything
    # in __dict__, e.g. functools.wraps' __wrapped__) through inspect.signature.
    namespace: dict[str, Any] = {}
    exec(f"async def plain({params}):\n    return None", namespace)
    exec(f"async def marked({params}):\n    return None", namespace)
    namespace["marked"].marker = True
    assert _outcome(namespace["plain"]) == _outcome(namespace["marked"])


def test_a_wrapped_function_is_checked_by_its_signature() -> None:
    import functools

    async def inner(msg: Any, ctx: Any) -> Any:
        return msg

    @functools.wraps(inner)
    async def wrapper(*args: Any) -> Any:
        return await inner(*args)

    assert Node(wrapper).name == "inner"  # inspect follows __wrapped__: two parameters


def test_node_hash_identity_and_repr() -> None:
    first, second = Node(double), Node(double)
    assert hash(first) == hash(first.node_id)
    assert first != second
    assert len({first, second}) == 2
    assert repr(first) == f"Node(name='double', node_id={first.node_id})"


def test_node_to_returns_adjacency() -> None:
    a, b = Node(double, name="a"), Node(double, name="b")
    assert a.to(b) == (a, (b,))
    assert a.to() == (a, ())


async def test_invoke_without_registry_passes_input_through() -> None:
    node = Node(double)
    sentinel = object()
    assert await node.invoke(sentinel, object(), registry=None) is sentinel


async def test_invoke_validates_input_and_output() -> None:
    registry = ModelRegistry()
    registry.register("double", In, Out)
    result = await Node(double).invoke({"x": 2}, Context(Endpoint("test")), registry=registry)
    assert result == Out(y=4)


async def test_invoke_unknown_node_raises_key_error() -> None:
    with pytest.raises(KeyError):
        await Node(double).invoke({"x": 2}, None, registry=ModelRegistry())


async def test_invoke_validate_none_skips_registry_lookup() -> None:
    node = Node(double, policy=NodePolicy(validate="none"))
    assert await node.invoke({"x": 1}, None, registry=ModelRegistry()) == {"x": 1}


async def test_invoke_validate_in_only_leaves_output_alone() -> None:
    registry = ModelRegistry()
    registry.register("double", In, Out)
    node = Node(double, policy=NodePolicy(validate="in"))
    assert await node.invoke({"x": 1}, None, registry=registry) == {"y": 2}


async def test_invoke_validate_out_only_leaves_input_alone() -> None:
    registry = ModelRegistry()
    registry.register("double", In, Out)
    node = Node(double, policy=NodePolicy(validate="out"))
    with pytest.raises(pydantic.ValidationError):
        await node.invoke({"x": 1}, None, registry=registry)  # dict echoed back as output


async def test_invoke_none_result_skips_output_validation() -> None:
    async def nothing(msg: Any, ctx: Any) -> None:
        return None

    registry = ModelRegistry()
    registry.register("nothing", In, Out)
    assert await Node(nothing).invoke({"x": 1}, None, registry=registry) is None


async def test_invoke_does_not_unwrap_messages() -> None:
    registry = ModelRegistry()
    registry.register("double", In, Out)
    message = Message(payload=In(x=1), headers=Headers(tenant="t"))
    with pytest.raises(pydantic.ValidationError):
        await Node(double).invoke(message, None, registry=registry)
