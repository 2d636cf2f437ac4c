"""Conformance: spec/types.md (message models in ``penguiflow.types``)."""

from __future__ import annotations

import re
import time

import pydantic
import pytest
from pydantic import BaseModel

import penguiflow.types as types_mod
from penguiflow.core import (
    BUDGET_EXCEEDED_TEXT,
    DEADLINE_EXCEEDED_TEXT,
    TOKEN_BUDGET_EXCEEDED_TEXT,
)
from penguiflow.types import WM, FinalAnswer, Headers, Message, PlanStep, StreamChunk, Thought


def test_types_all_lists_the_seven_models_in_order() -> None:
    assert list(types_mod.__all__) == [
        "Headers",
        "Message",
        "StreamChunk",
        "PlanStep",
        "Thought",
        "WM",
        "FinalAnswer",
    ]


@pytest.mark.parametrize(
    "model", [Headers, Message, StreamChunk, PlanStep, Thought, WM, FinalAnswer]
)
def test_models_are_plain_pydantic_models_with_default_config(model: type[BaseModel]) -> None:
    assert issubclass(model, BaseModel)
    assert model.model_config.get("frozen") in (None, False)
    assert model.model_config.get("extra") in (None, "ignore")
    assert not model.model_config.get("validate_assignment", False)


def test_headers_dump_defaults() -> None:
    assert Headers(tenant="acme").model_dump() == {"tenant": "acme", "topic": None, "priority": 0}
    assert list(Headers(tenant="acme").model_dump()) == ["tenant", "topic", "priority"]


def test_headers_requires_tenant() -> None:
    with pytest.raises(pydantic.ValidationError):
        Headers()  # type: ignore[call-arg]


def test_headers_ignores_unknown_fields() -> None:
    h = Headers(tenant="a", bogus=1)  # type: ignore[call-arg]
    assert not hasattr(h, "bogus")


def test_models_are_mutable_without_assignment_validation() -> None:
    h = Headers(tenant="a")
    h.priority = "not-an-int"  # type: ignore[assignment]
    assert h.priority == "not-an-int"


def test_message_field_order() -> None:
    m = Message(payload=1, headers=Headers(tenant="a"))
    assert list(m.model_dump()) == ["payload", "headers", "trace_id", "ts", "deadline_s", "meta"]


def test_message_defaults() -> None:
    before = time.time()
    m = Message(payload=1, headers=Headers(tenant="a"))
    after = time.time()
    assert re.fullmatch(r"[0-9a-f]{32}", m.trace_id)
    assert before <= m.ts <= after
    assert m.deadline_s is None
    assert m.meta == {}


def test_message_requires_payload_and_headers() -> None:
    with pytest.raises(pydantic.ValidationError):
        Message(headers=Headers(tenant="a"))  # type: ignore[call-arg]
    with pytest.raises(pydantic.ValidationError):
        Message(payload=1)  # type: ignore[call-arg]


def test_message_payload_none_is_accepted() -> None:
    assert Message(payload=None, headers=Headers(tenant="a")).payload is None


def test_messages_get_fresh_trace_ids_and_meta() -> None:
    a = Message(payload=1, headers=Headers(tenant="a"))
    b = Message(payload=1, headers=Headers(tenant="a"))
    assert a.trace_id != b.trace_id
    assert a.meta is not b.meta
    assert b.ts >= a.ts


def test_message_model_copy_shares_meta_shallow_only() -> None:
    m = Message(payload=1, headers=Headers(tenant="a"), meta={"k": 1})
    assert m.model_copy().meta is m.meta
    assert m.model_copy(deep=True).meta is not m.meta


def test_message_roundtrips_through_json() -> None:
    m = Message(payload={"a": 1}, headers=Headers(tenant="a"), deadline_s=5.0)
    again = Message.model_validate_json(m.model_dump_json())
    assert again == m


def test_message_equality_is_fieldwise() -> None:
    m = Message(payload=1, headers=Headers(tenant="a"))
    assert m.model_copy() == m
    assert Message.model_json_schema()["title"] == "Message"


def test_stream_chunk_fields_and_defaults() -> None:
    c = StreamChunk(stream_id="s", seq=0, text="t")
    assert c.model_dump() == {"stream_id": "s", "seq": 0, "text": "t", "done": False, "meta": {}}
    assert not hasattr(c, "trace_id")


def test_plan_step_kinds() -> None:
    for kind in ("retrieve", "web", "sql", "summarize", "route", "stop"):
        step = PlanStep(kind=kind)  # type: ignore[arg-type]
        assert step.model_dump() == {"kind": kind, "args": {}, "max_concurrency": 1}
    with pytest.raises(pydantic.ValidationError):
        PlanStep(kind="dance")  # type: ignore[arg-type]


def test_thought_fields() -> None:
    t = Thought(steps=[PlanStep(kind="web")], rationale="r")
    assert list(t.model_dump()) == ["steps", "rationale", "done"]
    assert t.done is False
    with pytest.raises(pydantic.ValidationError):
        Thought(steps=[])  # type: ignore[call-arg]


def test_wm_defaults_and_order() -> None:
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
    assert list(wm.model_dump()) == [
        "query",
        "facts",
        "hops",
        "budget_hops",
        "tokens_used",
        "budget_tokens",
        "confidence",
    ]


def test_wm_budget_hops_accepts_none() -> None:
    assert WM(query="q", budget_hops=None).budget_hops is None


def test_final_answer_fields() -> None:
    fa = FinalAnswer(text="t")
    assert fa.model_dump() == {"text": "t", "citations": []}
    with pytest.raises(pydantic.ValidationError):
        FinalAnswer()  # type: ignore[call-arg]


def test_final_answer_texts() -> None:
    assert DEADLINE_EXCEEDED_TEXT == "Deadline exceeded"
    assert BUDGET_EXCEEDED_TEXT == "Hop budget exhausted"
    assert TOKEN_BUDGET_EXCEEDED_TEXT == "Token budget exhausted"
