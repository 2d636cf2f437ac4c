"""The 2.2.5 routes' JSON encoding: what FastAPI's ``jsonable_encoder`` produced."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import ipaddress
import pathlib
import re
import uuid
from typing import Any

import pytest
from pydantic import BaseModel

from penguiflow_a2a._legacy_json import fastapi_dumps, jsonable_encoder


class Colour(enum.Enum):
    RED = "red"


class Code(str, enum.Enum):  # noqa: UP042 - shaped like FlowErrorCode (str, Enum)
    OK = "OK"


@dataclasses.dataclass
class Point:
    x: int
    when: datetime.date


class Stamped(BaseModel):
    when: datetime.datetime
    ident: uuid.UUID


class Plain:
    def __init__(self) -> None:
        self.a = (1, 2)


class Pairs:
    __slots__ = ()

    def __iter__(self) -> Any:
        return iter([("k", b"v")])


def generated() -> Any:
    yield from (1, 2)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="none"),
        pytest.param(1.5, 1.5, id="float"),
        pytest.param(Colour.RED, "red", id="enum"),
        pytest.param(Code.OK, "OK", id="str-enum"),
        pytest.param(pathlib.Path("/tmp/x"), "/tmp/x", id="path"),
        pytest.param(
            Point(1, datetime.date(2024, 1, 2)), {"x": 1, "when": "2024-01-02"}, id="dataclass"
        ),
        pytest.param(
            Stamped(when=datetime.datetime(2024, 1, 2, 3, 4, 5), ident=uuid.UUID(int=1)),
            {"when": "2024-01-02T03:04:05", "ident": "00000000-0000-0000-0000-000000000001"},
            id="model",
        ),
        pytest.param(b"raw", "raw", id="bytes"),
        pytest.param(datetime.timedelta(seconds=1.5), 1.5, id="timedelta"),
        pytest.param(decimal.Decimal("10"), 10, id="decimal-int"),
        pytest.param(decimal.Decimal("0.25"), 0.25, id="decimal-float"),
        pytest.param(ipaddress.ip_network("10.0.0.0/8"), "10.0.0.0/8", id="network"),
        pytest.param(re.compile("x+"), "x+", id="pattern"),
        pytest.param({1}, [1], id="set"),
        pytest.param(collections.deque(["a"]), ["a"], id="deque"),
        pytest.param(generated(), [1, 2], id="generator"),
        pytest.param({Colour.RED: (1,)}, {"red": [1]}, id="dict"),
        pytest.param(Plain(), {"a": [1, 2]}, id="vars"),
        pytest.param(Pairs(), {"k": "v"}, id="pairs"),
    ],
)
def test_jsonable_encoder(value: Any, expected: Any) -> None:
    assert jsonable_encoder(value) == expected


def test_unknown_objects_raise_value_error() -> None:
    with pytest.raises(ValueError):
        jsonable_encoder(object())


def test_dumps_is_compact_keeps_non_ascii_and_refuses_nan() -> None:
    assert fastapi_dumps({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}'
    with pytest.raises(ValueError):
        fastapi_dumps(float("nan"))
