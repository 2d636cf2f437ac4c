"""penguiflow.types: defaults, field order and pydantic semantics (spec/types.md)."""

from __future__ import annotations

import pydantic
import pytest

from penguiflow.types import WM, FinalAnswer, Headers, Message, PlanStep, StreamChunk, Thought


def test_headers_dump_has_defaults() -> None:
    assert Headers(tenant="acme").model_dump() == {"tenant": "acme", "topic": None, "priority": 0}


def test_headers_requires_tenant() -> None:
    with pytest.raises(pydantic.ValidationError):
        Headers()  # type: ignore[call-arg]


def test_message_field_order() -> None:
    msg = Message(payload=1, headers=Headers(tenant="t"))
    assert list(msg.model_dump()) == ["payload", "headers", "trace_id", "ts", "deadline_s", "meta"]


def test_message_trace_id_is_fresh_32_hex() -> None:
    first = Message(payload=1, headers=Headers(tenant="t"))
    second = Message(payload=1, headers=Headers(tenant="t"))
    assert first.trace_id != second.trace_id
    assert len(first.trace_id) == 32
    int(first.trace_id, 16)
    assert first.trace_id == first.trace_id.lower()


def test_message_meta_not_shared_between_instances() -> None:
    first = Message(payload=1, headers=Headers(tenant="t"))
    second = Message(payload=1, headers=Headers(tenant="t"))
    first.meta["k"] = 1
    assert second.meta == {}


def test_message_shallow_copy_shares_meta_deep_copy_does_not() -> None:
    msg = Message(payload=1, headers=Headers(tenant="t"))
    assert msg.model_copy().meta is msg.meta
    assert msg.model_copy(deep=True).meta is not msg.meta


def test_message_deadline_defaults_to_none_and_ts_is_wall_clock() -> None:
    msg = Message(payload=1, headers=Headers(tenant="t"))
    assert msg.deadline_s is None
    assert msg.ts > 1_600_000_000


def test_message_is_mutable_and_ignores_unknown_fields() -> None:
    msg = Message(payload=1, headers=Headers(tenant="t"), unknown=3)  # type: ignore[call-arg]
    msg.payload = 2
    assert msg.payload == 2
    assert not hasattr(msg, "unknown")


def test_stream_chunk_defaults() -> None:
    chunk = StreamChunk(stream_id="s", seq=0, text="x")
    assert chunk.done is False
    assert chunk.meta == {}
    assert not hasattr(chunk, "trace_id")


def test_plan_step_rejects_unknown_kind() -> None:
    with pytest.raises(pydantic.ValidationError):
        PlanStep(kind="dance")  # type: ignore[arg-type]


def test_plan_step_and_thought_defaults() -> None:
    step = PlanStep(kind="retrieve")
    assert (step.args, step.max_concurrency) == ({}, 1)
    assert Thought(steps=[step], rationale="r").done is False


def test_wm_defaults() -> None:
    wm = WM(query="q")
    assert wm.model_dump() == {
        "query": "q",
        "facts": [],
        "hops": 0,
        "budget_hops": 8,
        "tokens_used": 0,
        "budget_tokens": None,
        "confidence": 0.0,
    }


def test_final_answer_defaults() -> None:
    assert FinalAnswer(text="t").citations == []
