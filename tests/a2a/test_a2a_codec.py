"""Wire shapes: parsing incoming A2A messages, rendering parts, reading replies."""

from __future__ import annotations

import pytest

from penguiflow_a2a._replies import Endpoint, choose_endpoint, read_task_update, result_of_parts
from penguiflow_a2a.codec import V0_3, V1_0, message_payload, parse_message
from penguiflow_a2a.errors import A2AError
from penguiflow_a2a.tasks import part_for, timestamp

FILE_10 = {"url": "https://f", "mediaType": "text/csv", "filename": "f.csv"}
FILE_03 = {"kind": "file", "file": {"uri": "https://f", "mimeType": "text/csv", "name": "f.csv"}}


def parse(*parts: object) -> dict[str, object]:
    return parse_message({"messageId": "m", "parts": list(parts)})


def test_0_3_file_part_is_read_into_the_1_0_shape() -> None:
    assert parse(FILE_03)["parts"] == [FILE_10]


def test_1_0_raw_file_part_is_kept() -> None:
    assert parse({"raw": "aGk=", "metadata": {"k": 1}})["parts"] == [
        {"raw": "aGk=", "metadata": {"k": 1}}
    ]


def test_payload_of_several_text_parts_is_joined_text() -> None:
    assert message_payload(parse({"text": "a"}, {"kind": "text", "text": "b"})) == "a\nb"


def test_payload_of_mixed_parts_is_the_list_of_parts() -> None:
    assert message_payload(parse({"text": "a"}, {"data": 1})) == [{"text": "a"}, {"data": 1}]


def test_message_keeps_context_id_but_not_empty_ids() -> None:
    message = parse_message(
        {"messageId": "m", "parts": [{"text": "x"}], "contextId": "c", "taskId": ""}
    )
    assert message["contextId"] == "c"
    assert "taskId" not in message


def test_message_must_be_an_object() -> None:
    with pytest.raises(A2AError) as error:
        parse_message("nope")
    assert error.value.code == -32602


def test_0_3_renders_file_and_scalar_data_parts() -> None:
    assert V0_3.part(FILE_10) == FILE_03
    assert V0_3.part({"raw": "aGk=", "metadata": {"k": 1}}) == {
        "kind": "file",
        "file": {"bytes": "aGk="},
        "metadata": {"k": 1},
    }
    assert V0_3.part({"data": [1, 2]}) == {"kind": "data", "data": {"value": [1, 2]}}


def test_1_0_renders_states_and_roles() -> None:
    assert V1_0.state("input-required") == "TASK_STATE_INPUT_REQUIRED"
    assert V1_0.role("agent") == "ROLE_AGENT"
    assert V0_3.state("canceled") == "canceled"


def test_result_part_is_text_for_str_and_data_otherwise() -> None:
    assert part_for("hi") == {"text": "hi"}
    assert part_for((1, 2)) == {"data": [1, 2]}


def test_timestamps_are_utc_with_z() -> None:
    assert timestamp(0.0) == "1970-01-01T00:00:00.000Z"


# -- client-side reading ------------------------------------------------------------------


def test_card_interfaces_choose_1_0_then_0_3() -> None:
    card = {
        "supportedInterfaces": [
            {"url": "http://a/", "protocolBinding": "HTTP+JSON", "protocolVersion": "1.0"},
            {"url": "http://b/", "protocolBinding": "JSONRPC", "protocolVersion": "0.3.0"},
            {"url": "http://c/", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
        ]
    }
    assert choose_endpoint("u", card, "1.0") == Endpoint("http://c/", "1.0")
    del card["supportedInterfaces"][2]
    assert choose_endpoint("u", card, "1.0") == Endpoint("http://b/", "0.3")


def test_legacy_card_with_url_speaks_0_3_and_no_card_uses_defaults() -> None:
    legacy = {"url": "http://x/", "protocolVersion": "0.3.0"}
    assert choose_endpoint("u", legacy, "1.0") == Endpoint("http://x/", "0.3")
    assert choose_endpoint("u", {"protocolVersion": 3}, "1.0") == Endpoint("u", "1.0")
    assert choose_endpoint("u", None, "0.3") == Endpoint("u", "0.3")


def test_failed_status_update_carries_the_error_text() -> None:
    update = read_task_update(
        {
            "statusUpdate": {
                "taskId": "t",
                "status": {
                    "state": "TASK_STATE_FAILED",
                    "message": {"parts": [{"text": "bad"}, {"data": {}}]},
                },
            }
        }
    )
    assert (update.task_id, update.state, update.failed, update.error) == (
        "t",
        "failed",
        True,
        "bad",
    )


def test_task_without_result_artifact_uses_the_last_artifact() -> None:
    update = read_task_update(
        {
            "kind": "task",
            "id": "t",
            "status": {"state": "completed"},
            "artifacts": [{"name": "a", "parts": [{"text": "x"}]}, {"parts": [{"data": 1}]}],
        }
    )
    assert (update.is_task, update.result) == (True, 1)


def test_data_artifact_update_is_a_result() -> None:
    update = read_task_update(
        {"kind": "artifact-update", "artifact": {"name": "extra", "parts": [{"data": {"k": 1}}]}}
    )
    assert (update.text, update.result) == (None, {"k": 1})


def test_parts_values() -> None:
    assert result_of_parts([{"text": "a"}, {"text": "b"}]) == ("a\nb", True)
    assert result_of_parts([{"text": "a"}, {"data": 1}, {"url": "u"}]) == (
        ["a", 1, {"url": "u"}],
        False,
    )
    assert result_of_parts(["junk"]) == ([], False)


@pytest.mark.parametrize(
    "chunk",
    [
        pytest.param({"seq": 0, "text": "a", "done": False, "meta": {}}, id="no-meta"),
        pytest.param({"seq": 3, "text": "b\nc", "done": True, "meta": {"k": "ü"}}, id="done-meta"),
    ],
)
def test_chunk_frames_match_format_sse_event(chunk: dict[str, object]) -> None:
    from penguiflow import StreamChunk, format_sse_event
    from penguiflow_a2a._sse import chunk_event

    model = StreamChunk(stream_id="s", **chunk)  # type: ignore[arg-type]
    assert chunk_event(model) == format_sse_event(model).encode()
