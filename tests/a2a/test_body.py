"""decode_json: the strict decoder every route reads its body with."""

from __future__ import annotations

import json
from typing import Any

import pytest

from penguiflow_a2a._body import BodyError, decode_json


def refused(raw: bytes, **kwargs: Any) -> BodyError:
    with pytest.raises(BodyError) as error:
        decode_json(raw, **kwargs)
    return error.value


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"a": [1, 2.5, "x", null, true]}', {"a": [1, 2.5, "x", None, True]}),
        (b'"\\ud83d\\ude00"', "\U0001f600"),  # a valid pair is one code point
        (b'"\\\\ud800"', "\\ud800"),  # an escaped backslash, then text
        (b'["[[[[[[[[[[", "{{{{{{{{{{{"]', ["[" * 10, "{" * 11]),
        (b'["\\"[[[[[[[[[["]', ['"' + "[" * 10]),
        (b"1e308", 1e308),
        (b"-0.0", -0.0),
        ('"caf\u00e9"'.encode(), "caf\u00e9"),
    ],
    ids=[
        "plain",
        "pair",
        "escaped-backslash",
        "brackets-in-strings",
        "escaped-quote",
        "big",
        "zero",
        "utf8",
    ],
)
def test_ordinary_json_decodes_as_json_loads_does(raw: bytes, value: Any) -> None:
    assert decode_json(raw, max_depth=2) == value == json.loads(raw)


@pytest.mark.parametrize("raw", [b"1e999", b"-1e400", b"[0, 2e308]", b"1" + b"0" * 5000])
def test_numbers_beyond_the_float_range_are_refused(raw: bytes) -> None:
    assert (refused(raw).kind, refused(raw).message) == ("refused", "number out of range")


def test_a_refused_number_keeps_the_rest_of_the_document() -> None:
    error = refused(b'{"id": 4, "params": {"x": 1e999}}')
    assert error.document == {"id": 4, "params": {"x": None}}


@pytest.mark.parametrize("raw", [b"NaN", b"[Infinity]", b'{"a": -Infinity}'])
def test_nan_and_infinity_literals_are_not_json(raw: bytes) -> None:
    assert refused(raw).kind == "malformed"


@pytest.mark.parametrize(
    "raw", [b'"\\ud800"', b'["\\uDFFF"]', b'{"\\udc00x": 1}', b'"\\ude00\\ud83d"']
)
def test_lone_surrogate_escapes_are_refused(raw: bytes) -> None:
    error = refused(raw)
    assert (error.kind, error.message) == ("refused", "string holds a lone UTF-16 surrogate")


@pytest.mark.parametrize("raw", [b'"\xed\xa0\x80"', b'"\xff"', b"\xef\xbb\xbf{}", b'"\xc3"'])
def test_bytes_that_are_not_utf8_are_malformed(raw: bytes) -> None:
    assert refused(raw).kind == "malformed"


@pytest.mark.parametrize("depth", [1, 3, 64])
def test_nesting_up_to_the_limit_is_accepted(depth: int) -> None:
    assert decode_json(b"[" * depth + b"]" * depth, max_depth=depth) is not None
    assert decode_json(b'{"a":' * depth + b"1" + b"}" * depth, max_depth=depth) is not None


@pytest.mark.parametrize("depth", [2, 4, 65, 500, 100_000])
def test_nesting_beyond_the_limit_is_malformed(depth: int) -> None:
    limit = depth - 1
    error = refused(b"[" * depth + b"]" * depth, max_depth=limit)
    assert (error.kind, error.message) == ("malformed", f"JSON nested deeper than {limit} levels")


def test_alternating_brackets_count_one_level_each() -> None:
    deep = b'{"a":[' * 33 + b"1" + b"]}" * 33  # 66 levels
    assert refused(deep).kind == "malformed"
    assert decode_json(deep, max_depth=66) is not None


def test_many_shallow_containers_are_not_deep() -> None:
    body = json.dumps([[{"k": [i]}] for i in range(5000)]).encode()
    assert len(decode_json(body, max_depth=4)) == 5000


def test_unbalanced_deep_input_is_malformed() -> None:
    assert refused(b"[" * 5000 + b"}").kind == "malformed"
    assert refused(b'"' + b"[" * 5000).kind == "malformed"
