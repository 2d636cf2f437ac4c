"""The strict encoder of flow output: what it refuses, and that its message is safe."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from penguiflow.types import StreamChunk
from penguiflow_a2a._legacy_json import fastapi_dumps
from penguiflow_a2a._sse import chunk_event, data_event, named_event
from penguiflow_a2a._strict_json import MAX_OUTPUT_DEPTH, NotJsonError, strict_dumps, strict_value
from penguiflow_a2a.adapter import _internal_error_event


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "value",
    [
        float("inf"),
        {"x": [float("-inf")]},
        float("nan"),
        "\ud800",
        {"\udc00": 1},
        object(),
        nested(MAX_OUTPUT_DEPTH + 1),
        nested(10_000),
    ],
    ids=["inf", "-inf", "nan", "surrogate", "surrogate-key", "object", "too-deep", "very-deep"],
)
def test_values_no_reply_can_carry_are_refused_with_a_safe_message(value: Any) -> None:
    with pytest.raises(NotJsonError) as caught:
        strict_dumps(value, what="a result")
    assert str(caught.value) == "flow produced a result that is not valid JSON"
    assert caught.value.detail


def test_strict_json_is_encoded_as_json_dumps_with_utf8_kept() -> None:
    value = {"a": [1, 2.5, None, True], "b": "\U0001f600 é", "deep": nested(MAX_OUTPUT_DEPTH - 1)}
    assert strict_dumps(value) == json.dumps(value, ensure_ascii=False)
    assert strict_dumps(value, compact=True) == json.dumps(
        value, ensure_ascii=False, separators=(",", ":")
    )


def test_strict_value_converts_inside_the_check() -> None:
    def explode(_: Any) -> Any:
        raise RecursionError

    assert strict_value((1, 2), what="a result", convert=list) == [1, 2]
    with pytest.raises(NotJsonError):
        strict_value(1, what="a result", convert=explode)


def test_fastapi_encoding_keeps_its_conversions_and_refuses_nan() -> None:
    assert fastapi_dumps({"when": datetime.date(2024, 1, 2)}) == '{"when":"2024-01-02"}'
    with pytest.raises(NotJsonError):
        fastapi_dumps({"x": float("nan")})


def test_sse_frames_refuse_what_they_cannot_carry() -> None:
    with pytest.raises(NotJsonError, match="a result"):
        named_event("artifact", {"output": float("inf")})
    with pytest.raises(NotJsonError):
        data_event({"x": "\ud800"})
    with pytest.raises(NotJsonError, match="a stream chunk"):
        chunk_event(StreamChunk(stream_id="s", seq=0, text="\ud800"))
    with pytest.raises(NotJsonError, match="a stream chunk"):
        chunk_event(StreamChunk(stream_id="s", seq=0, text="t", meta={"v": float("nan")}))


def test_a_stream_error_whose_text_cannot_be_sent_names_the_exception_type() -> None:
    frame = _internal_error_event({"taskId": "t"}, ValueError("\ud800"))
    assert frame.decode().split("data: ")[1].strip() == (
        '{"taskId": "t", "code": "INTERNAL_ERROR", "message": "ValueError"}'
    )
