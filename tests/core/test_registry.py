"""ModelRegistry (spec/node-registry.md)."""

from __future__ import annotations

import pydantic
import pytest

from penguiflow.registry import ModelRegistry
from penguiflow.types import Message


class A(pydantic.BaseModel):
    a: int


def test_adapters_and_models_round_trip() -> None:
    registry = ModelRegistry()
    registry.register("n", A, Message)
    in_adapter, out_adapter = registry.adapters("n")
    assert in_adapter.validate_python({"a": 1}) == A(a=1)
    assert isinstance(out_adapter, pydantic.TypeAdapter)
    assert registry.models("n") == (A, Message)


def test_adapters_are_cached() -> None:
    registry = ModelRegistry()
    registry.register("n", A, A)
    assert registry.adapters("n")[0] is registry.adapters("n")[0]


def test_duplicate_name_is_checked_first() -> None:
    registry = ModelRegistry()
    registry.register("n", A, A)
    with pytest.raises(ValueError, match=r"^Node 'n' already registered$"):
        registry.register("n", int, int)  # type: ignore[arg-type]


def test_non_model_classes_are_rejected() -> None:
    with pytest.raises(TypeError, match=r"^Models must inherit from pydantic.BaseModel$"):
        ModelRegistry().register("n", dict, A)  # type: ignore[arg-type]


@pytest.mark.parametrize("method", ["adapters", "models"])
def test_unknown_name_raises_key_error(method: str) -> None:
    with pytest.raises(KeyError) as info:
        getattr(ModelRegistry(), method)("ghost")
    assert info.value.args == ("Node 'ghost' not registered",)
