"""``format_sse_event`` and ``chunk_to_ws_json``: exact wire formats."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from penguiflow import streaming
from penguiflow.streaming import chunk_to_ws_json, format_sse_event
from penguiflow.types import StreamChunk


def test_streaming_exports_the_documented_names() -> None:
    assert set(streaming.__all__) == {
        "format_sse_event",
        "chunk_to_ws_json",
        "stream_flow",
        "emit_stream_events",
    }
    assert streaming.EventAdapter is not None


def test_sse_matches_the_spec_example() -> None:
    chunk = StreamChunk(stream_id="abc", seq=2, text="token", done=True, meta={"foo": "bar"})
    assert (
        format_sse_event(chunk, retry_ms=1500)
        == 'event: done\nid: 2\ndata: token\ndata: {"foo": "bar"}\nretry: 1500\n\n'
    )


def test_sse_plain_chunk_has_three_lines_and_a_blank_line() -> None:
    chunk = StreamChunk(stream_id="s", seq=0, text="hello")
    assert format_sse_event(chunk) == "event: chunk\nid: 0\ndata: hello\n\n"


@pytest.mark.parametrize(
    ("event_name", "done", "expected"),
    [
        pytest.param("token", False, "token", id="custom"),
        pytest.param("token", True, "token", id="custom-overrides-done"),
        pytest.param("", True, "done", id="empty-name-is-default"),
        pytest.param(None, False, "chunk", id="default-chunk"),
    ],
)
def test_sse_event_name(event_name: str | None, done: bool, expected: str) -> None:
    chunk = StreamChunk(stream_id="s", seq=1, text="t", done=done)
    assert format_sse_event(chunk, event_name=event_name).startswith(f"event: {expected}\n")


def test_sse_does_not_split_multiline_text() -> None:
    chunk = StreamChunk(stream_id="s", seq=3, text="a\nb")
    assert format_sse_event(chunk) == "event: chunk\nid: 3\ndata: a\nb\n\n"


def test_sse_meta_keeps_key_order_and_non_ascii() -> None:
    chunk = StreamChunk(stream_id="s", seq=0, text="t", meta={"z": "é", "a": [1, 2]})
    assert format_sse_event(chunk).splitlines()[3] == 'data: {"z": "é", "a": [1, 2]}'


def test_sse_retry_zero_is_rendered() -> None:
    chunk = StreamChunk(stream_id="s", seq=0, text="t")
    assert format_sse_event(chunk, retry_ms=0).endswith("retry: 0\n\n")


def test_ws_json_has_keys_in_order() -> None:
    chunk = StreamChunk(stream_id="abc", seq=4, text="hé", done=False, meta={"k": 1})
    assert chunk_to_ws_json(chunk) == (
        '{"stream_id": "abc", "seq": 4, "text": "hé", "done": false, "meta": {"k": 1}}'
    )


def test_ws_json_extra_appends_new_keys_and_overrides_in_place() -> None:
    chunk = StreamChunk(stream_id="abc", seq=0, text="t", done=True)
    text = chunk_to_ws_json(chunk, extra={"seq": 99, "channel": "ui"})
    assert text == (
        '{"stream_id": "abc", "seq": 99, "text": "t", "done": true, "meta": {}, "channel": "ui"}'
    )


@given(
    text=st.text(),
    seq=st.integers(min_value=0),
    meta=st.dictionaries(st.text(), st.integers(), max_size=3),
)
def test_ws_json_round_trips_every_field(text: str, seq: int, meta: dict[str, int]) -> None:
    chunk = StreamChunk(stream_id="s", seq=seq, text=text, meta=meta)
    assert json.loads(chunk_to_ws_json(chunk)) == chunk.model_dump()
