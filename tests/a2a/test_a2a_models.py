"""The 2.2.5 request and card models."""

from __future__ import annotations

import pydantic
import pytest

from penguiflow_a2a import A2AAgentCard, A2AMessagePayload, A2ASkill, A2ATaskCancelRequest
from penguiflow_a2a.server import A2ARequestError


def test_card_defaults_and_payload_shape() -> None:
    card = A2AAgentCard(name="n", description="d", skills=[A2ASkill(name="s", description="x")])
    assert card.to_payload() == {
        "name": "n",
        "description": "d",
        "version": "1.0.0",
        "schema_version": "1.0",
        "tags": [],
        "capabilities": [],
        "skills": [{"name": "s", "description": "x", "mode": "both", "inputs": {}, "outputs": {}}],
        "contact_url": None,
        "documentation_url": None,
    }


def test_card_and_skill_keep_extra_fields() -> None:
    card = A2AAgentCard(
        name="n", description="d", owner="me", skills=[{"name": "s", "description": "x", "cost": 3}]
    )
    payload = card.to_payload()
    assert payload["owner"] == "me"
    assert payload["skills"][0]["cost"] == 3


def test_message_payload_accepts_aliases_and_field_names() -> None:
    by_alias = A2AMessagePayload.model_validate(
        {"payload": 1, "traceId": "t", "contextId": "c", "taskId": "k", "deadlineSeconds": 5}
    )
    by_name = A2AMessagePayload(payload=1, trace_id="t", context_id="c", task_id="k", deadline_s=5)
    assert by_alias == by_name
    assert (by_name.headers, by_name.meta) == ({}, {})


def test_message_payload_requires_payload() -> None:
    with pytest.raises(pydantic.ValidationError):
        A2AMessagePayload.model_validate({})


def test_message_payload_accepts_none_payload() -> None:
    assert A2AMessagePayload(payload=None).payload is None


def test_cancel_request_accepts_alias_and_name() -> None:
    assert A2ATaskCancelRequest(task_id="t") == A2ATaskCancelRequest.model_validate({"taskId": "t"})


def test_request_error_carries_status_and_detail() -> None:
    error = A2ARequestError(status_code=409, detail="task 't' already active")
    assert (error.status_code, error.detail, str(error)) == (
        409,
        "task 't' already active",
        "task 't' already active",
    )
    assert isinstance(error, Exception)


def test_request_error_arguments_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        A2ARequestError(409, "x")  # type: ignore[misc]
