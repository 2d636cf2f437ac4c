"""The item codec refuses values nested past the recursion limit with a clear error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from penguiflow._codec import decode, dumps, encode, loads
from penguiflow.errors import SerializationError

DEPTH = 10_000


def _deep_list() -> list[Any]:
    root: list[Any] = []
    cur = root
    for _ in range(DEPTH):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    return root


def _deep_dict() -> dict[str, Any]:
    root: dict[str, Any] = {}
    cur = root
    for _ in range(DEPTH):
        nxt: dict[str, Any] = {}
        cur["k"] = nxt
        cur = nxt
    return root


@pytest.mark.parametrize("make", [_deep_list, _deep_dict])
@pytest.mark.parametrize("codec", [dumps, encode])
def test_encoding_a_too_deep_value_raises_serialization_error(
    make: Callable[[], Any], codec: Callable[[Any], Any]
) -> None:
    with pytest.raises(SerializationError, match="nested too deeply") as info:
        codec(make())
    assert info.value.type_name == "RecursionError"


def test_decoding_too_deep_text_raises_serialization_error() -> None:
    text = "[" * DEPTH + "]" * DEPTH
    with pytest.raises(SerializationError, match="nested too deeply"):
        loads(text)


def test_decoding_a_too_deep_tree_raises_serialization_error() -> None:
    tree = json.loads("[" * 500 + "]" * 500)  # parseable, then deepened past the limit
    for _ in range(DEPTH // 500):
        tree = [[tree]]
    with pytest.raises(SerializationError, match="nested too deeply"):
        decode(tree)


def test_moderate_nesting_still_round_trips() -> None:
    value: Any = "leaf"
    for _ in range(200):
        value = {"k": [value]}
    assert loads(dumps(value)) == value
