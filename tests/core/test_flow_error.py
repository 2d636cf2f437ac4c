"""FlowError and FlowErrorCode (spec/events-errors.md)."""

from __future__ import annotations

import pytest

from penguiflow.errors import FlowError, FlowErrorCode, PenguiFlowError


def test_codes_equal_their_names() -> None:
    for member in FlowErrorCode:
        assert member.value == member.name
        assert member == member.name
    assert [m.name for m in FlowErrorCode] == [
        "NODE_TIMEOUT",
        "NODE_EXCEPTION",
        "TRACE_CANCELLED",
        "DEADLINE_EXCEEDED",
        "HOP_BUDGET_EXHAUSTED",
        "TOKEN_BUDGET_EXHAUSTED",
    ]


def test_flow_error_is_an_exception_of_the_hierarchy() -> None:
    assert issubclass(FlowError, Exception)
    assert issubclass(FlowError, PenguiFlowError)


def test_code_is_a_plain_string() -> None:
    err = FlowError(trace_id=None, node_name=None, code=FlowErrorCode.NODE_TIMEOUT, message="m")
    assert type(err.code) is str
    assert err.code == "NODE_TIMEOUT"
    assert FlowError(trace_id=None, node_name=None, code="X", message="m").code == "X"


def test_str_has_code_message_trace_and_node() -> None:
    err = FlowError(
        trace_id="T1",
        node_name="bad",
        code=FlowErrorCode.NODE_EXCEPTION,
        message="Node 'bad' raised ValueError: boom",
    )
    assert str(err) == "[NODE_EXCEPTION] Node 'bad' raised ValueError: boom trace=T1 node=bad"
    assert err.args == ("Node 'bad' raised ValueError: boom",)


def test_str_omits_missing_context() -> None:
    err = FlowError(trace_id=None, node_name="", code="C", message="m")
    assert str(err) == "[C] m"


def test_attributes_and_metadata_copy() -> None:
    original = ValueError("boom")
    metadata = {"a": 1}
    err = FlowError(
        trace_id="t",
        node_name="n",
        code="C",
        message="m",
        original_exc=original,
        node_id="id",
        metadata=metadata,
    )
    metadata["a"] = 2
    assert err.metadata == {"a": 1}
    assert err.unwrap() is original
    assert err.exception_type == "ValueError"
    assert err.node_id == "id"


def test_to_payload_key_order_and_omissions() -> None:
    err = FlowError(
        trace_id="t",
        node_name="n",
        code="C",
        message="m",
        original_exc=KeyError("k"),
        node_id="id",
        metadata={"attempt": 0},
    )
    payload = err.to_payload()
    assert list(payload) == [
        "code",
        "message",
        "trace_id",
        "node_name",
        "node_id",
        "exception_type",
        "metadata",
    ]
    bare = FlowError(trace_id=None, node_name=None, code="C", message="m").to_payload()
    assert bare == {"code": "C", "message": "m"}


@pytest.mark.parametrize(
    ("exc", "message", "expected"),
    [
        pytest.param(ValueError("boom"), None, "boom", id="str-of-exc"),
        pytest.param(ValueError(), None, "ValueError", id="type-name"),
        pytest.param(ValueError("boom"), "given", "given", id="explicit"),
    ],
)
def test_from_exception_message(exc: Exception, message: str | None, expected: str) -> None:
    err = FlowError.from_exception(
        trace_id="t", node_name="n", node_id=None, exc=exc, code="C", message=message
    )
    assert err.message == expected
    assert err.original_exc is exc
