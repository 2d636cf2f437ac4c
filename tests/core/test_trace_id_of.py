"""``trace_id_of`` reads an item's trace as ``getattr(item, "trace_id", None)`` does."""

from __future__ import annotations

from typing import Any

import pydantic
import pytest
from core_support import message

from penguiflow._runtime.tracing import trace_id_of


class Plain(pydantic.BaseModel):
    text: str = "x"


class WithField(pydantic.BaseModel):
    trace_id: str = "field"


class WithProperty(pydantic.BaseModel):
    @property
    def trace_id(self) -> str:
        return "property"


class AllowsExtra(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")


class CustomGetattr(pydantic.BaseModel):
    def __getattr__(self, name: str) -> Any:
        if name == "trace_id":
            return "dynamic"
        return super().__getattr__(name)


class Obj:
    def __init__(self, trace_id: str | None = None) -> None:
        if trace_id is not None:
            self.trace_id = trace_id


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        pytest.param(message(trace_id="m"), "m", id="message"),
        pytest.param(Plain(), None, id="model-without-field"),
        pytest.param(WithField(), "field", id="model-field"),
        pytest.param(WithProperty(), "property", id="model-property"),
        pytest.param(AllowsExtra(trace_id="extra"), "extra", id="model-extra-allowed"),
        pytest.param(AllowsExtra(), None, id="model-extra-allowed-absent"),
        pytest.param(CustomGetattr(), "dynamic", id="model-custom-getattr"),
        pytest.param(Obj("obj"), "obj", id="object"),
        pytest.param(Obj(), None, id="object-without"),
        pytest.param({"trace_id": "dict"}, None, id="dict-is-not-read"),
        pytest.param(None, None, id="none"),
    ],
)
def test_trace_id_of_matches_getattr(item: Any, expected: str | None) -> None:
    assert getattr(item, "trace_id", None) == expected
    assert trace_id_of(item) == expected
    assert trace_id_of(item) == expected  # again, from the per-class cache
