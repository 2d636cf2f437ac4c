"""``_codec.dumps`` takes a fast path for JSON data and models: same text, same errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from penguiflow import FlowError, FlowErrorCode, Headers, Message
from penguiflow._carried import Carried
from penguiflow._codec import dumps, encode
from penguiflow.errors import SerializationError


class Item(BaseModel):
    model_config = ConfigDict(extra="allow")

    sku: str
    tags: list[str] = []


def _slow(value: Any) -> str:
    return json.dumps(encode(value), separators=(",", ":"), allow_nan=True)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"a": [1, 2.5, "x", True, None]}, id="json"),
        pytest.param({"$model": {"$x": 1}}, id="dollar-keys"),
        pytest.param(Item(sku="a", tags=["t"], note="extra"), id="model-with-extra"),
        pytest.param(
            Message(payload={"k": (1, 2)}, headers=Headers(tenant="t"), meta={"m": b"b"}),
            id="message-with-tuple-and-bytes",
        ),
        pytest.param(Carried({"x": 1}, "trace-1"), id="carried"),
        pytest.param(
            FlowError(
                trace_id="t",
                node_name="n",
                node_id="i",
                code=FlowErrorCode.NODE_EXCEPTION,
                message="m",
            ),
            id="flow-error",
        ),
    ],
)
def test_dumps_writes_what_encode_does(value: Any) -> None:
    assert dumps(value) == _slow(value)


@pytest.mark.parametrize(
    ("value", "path"),
    [
        pytest.param({"rows": [1, object()]}, "rows[1]", id="object-in-list"),
        pytest.param({"ok": {1: "x"}}, "ok", id="int-key-inside"),
        pytest.param(Message(payload=lambda: 1, headers=Headers(tenant="t")), "payload", id="func"),
    ],
)
def test_dumps_errors_name_where_the_fault_sits(value: Any, path: str) -> None:
    with pytest.raises(SerializationError) as info:
        dumps(value)
    assert info.value.path == path


def test_a_model_defined_in_a_function_is_refused_by_dumps() -> None:
    class Local(BaseModel):
        x: int

    with pytest.raises(SerializationError, match="defined inside a function") as info:
        dumps({"v": [Local(x=1)]})
    assert info.value.path == "v[0]"
