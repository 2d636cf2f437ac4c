"""penguiflow.catalog: the tool decorator, NodeSpec records and build_catalog."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

import penguiflow.catalog as catalog_module
from penguiflow.catalog import NodeSpec, build_catalog, tool
from penguiflow.node import Node
from penguiflow.registry import ModelRegistry


class In(BaseModel):
    text: str


class Out(BaseModel):
    size: int


def test_module_exports() -> None:
    assert sorted(catalog_module.__all__) == ["NodeSpec", "SideEffect", "build_catalog", "tool"]


def test_tool_returns_the_same_function_with_metadata() -> None:
    async def fn(message: In, ctx: Any) -> Out:
        return Out(size=len(message.text))

    decorated = tool(
        desc="Count",
        side_effects="read",
        tags=["utility", "utility", "text"],
        auth_scopes=["a", "a"],
        cost_hint="low",
        latency_hint_ms=5,
        safety_notes="none",
        extra={"k": 1},
    )(fn)
    assert decorated is fn
    assert fn.__penguiflow_tool__ == {  # type: ignore[attr-defined]
        "desc": "Count",
        "side_effects": "read",
        "tags": ("utility", "text"),
        "auth_scopes": ("a",),
        "cost_hint": "low",
        "latency_hint_ms": 5,
        "safety_notes": "none",
        "extra": {"k": 1},
    }
    Node(fn)  # still a valid node function


def test_tool_defaults() -> None:
    @tool()
    async def fn(message: In, ctx: Any) -> Out:
        return Out(size=0)

    meta = fn.__penguiflow_tool__  # type: ignore[attr-defined]
    assert meta["side_effects"] == "pure"
    assert (meta["tags"], meta["auth_scopes"], meta["extra"]) == ((), (), {})


def _registry(*names: str) -> ModelRegistry:
    registry = ModelRegistry()
    for name in names:
        registry.register(name, In, Out)
    return registry


def test_build_catalog_uses_decorator_metadata() -> None:
    @tool(desc="Decorated", tags=["t"], extra={"e": 1}, latency_hint_ms=3)
    async def deco(message: In, ctx: Any) -> Out:
        """Docstring loses to desc."""
        return Out(size=0)

    (spec,) = build_catalog([Node(deco, name="deco")], _registry("deco"))
    assert (spec.name, spec.desc, spec.args_model, spec.out_model) == ("deco", "Decorated", In, Out)
    assert (spec.tags, spec.extra, spec.latency_hint_ms) == (("t",), {"e": 1}, 3)


def test_build_catalog_falls_back_to_docstring_then_name() -> None:
    async def documented(message: In, ctx: Any) -> Out:
        """Counts characters."""
        return Out(size=0)

    @tool()
    async def bare(message: In, ctx: Any) -> Out:
        return Out(size=0)

    specs = build_catalog([Node(documented), Node(bare)], _registry("documented", "bare"))
    assert [s.desc for s in specs] == ["Counts characters.", "bare"]


def test_undecorated_function_gets_defaults() -> None:
    async def plain(message: In, ctx: Any) -> Out:
        return Out(size=0)

    (spec,) = build_catalog([Node(plain)], _registry("plain"))
    assert spec.side_effects == "pure"
    assert (spec.tags, spec.auth_scopes, spec.extra) == ((), (), {})
    assert (spec.cost_hint, spec.latency_hint_ms, spec.safety_notes) == (None, None, None)


def test_build_catalog_keeps_node_order_and_custom_names() -> None:
    async def fn(message: In, ctx: Any) -> Out:
        return Out(size=0)

    nodes = [Node(fn, name="second"), Node(fn, name="first")]
    specs = build_catalog(nodes, _registry("first", "second"))
    assert [s.name for s in specs] == ["second", "first"]
    assert specs[0].node is nodes[0]


def test_unregistered_node_raises_key_error() -> None:
    async def fn(message: In, ctx: Any) -> Out:
        return Out(size=0)

    with pytest.raises(KeyError):
        build_catalog([Node(fn)], ModelRegistry())


def test_tool_record_has_json_schemas_and_is_serialisable() -> None:
    async def fn(message: In, ctx: Any) -> Out:
        return Out(size=0)

    spec = NodeSpec(node=Node(fn), name="fn", desc="d", args_model=In, out_model=Out, tags=("a",))
    record = spec.to_tool_record()
    assert record["args_schema"]["title"] == "In"
    assert record["out_schema"] == Out.model_json_schema()
    assert record["tags"] == ["a"]
    assert list(record) == [
        "name",
        "desc",
        "side_effects",
        "tags",
        "auth_scopes",
        "cost_hint",
        "latency_hint_ms",
        "safety_notes",
        "args_schema",
        "out_schema",
        "extra",
    ]
    json.dumps(record)


def test_node_spec_is_frozen() -> None:
    async def fn(message: In, ctx: Any) -> Out:
        return Out(size=0)

    spec = NodeSpec(node=Node(fn), name="fn", desc="d", args_model=In, out_model=Out)
    with pytest.raises(AttributeError):
        spec.name = "other"  # type: ignore[misc]
