"""Request and card models of the PenguiFlow 2.2.5 A2A surface (pydantic v2).

These are the wire shapes of ``GET /agent``, ``POST /message/send``,
``POST /message/stream`` and ``POST /tasks/cancel``. They need no HTTP stack.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "A2AAgentCard",
    "A2AMessagePayload",
    "A2ARequestError",
    "A2ASkill",
    "A2ATaskCancelRequest",
]


class A2ASkill(BaseModel):
    """One capability advertised on the agent card.

    ``mode`` is free text; ``"send"``, ``"stream"`` and ``"both"`` are the
    conventional values. Extra fields are kept.
    """

    model_config = ConfigDict(extra="allow")

    name: str
    description: str
    mode: str = "both"
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)


class A2AAgentCard(BaseModel):
    """The 2.2.5 agent card served at ``GET /agent``.

    The standard A2A card (``/.well-known/agent-card.json``) is derived from
    it; see :func:`penguiflow_a2a.card.standard_agent_card`.
    """

    model_config = ConfigDict(extra="allow")

    name: str
    description: str
    version: str = "1.0.0"
    schema_version: str = "1.0"
    tags: list[str] = Field(default_factory=list)
    capabilities: list[str] = Field(default_factory=list)
    skills: list[A2ASkill] = Field(default_factory=list)
    contact_url: str | None = None
    documentation_url: str | None = None

    def to_payload(self) -> dict[str, Any]:
        """Return the card as a JSON-ready dict (extras and ``None`` values included)."""
        return self.model_dump()


class A2AMessagePayload(BaseModel):
    """Body of ``message/send`` and ``message/stream``.

    Both the camelCase alias and the field name are accepted on input.
    ``deadline_s`` is an absolute wall-clock epoch in seconds, as
    ``Message.deadline_s``.
    """

    model_config = ConfigDict(populate_by_name=True)

    payload: Any
    headers: Mapping[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)
    trace_id: str | None = Field(default=None, alias="traceId")
    context_id: str | None = Field(default=None, alias="contextId")
    task_id: str | None = Field(default=None, alias="taskId")
    deadline_s: float | None = Field(default=None, alias="deadlineSeconds")


class A2ATaskCancelRequest(BaseModel):
    """Body of ``tasks/cancel``: ``{"taskId": "..."}``."""

    model_config = ConfigDict(populate_by_name=True)

    task_id: str = Field(alias="taskId")


class A2ARequestError(Exception):
    """A request the adapter refuses; the HTTP layer answers ``status_code``.

    Args:
        status_code: the HTTP status the 2.2.5 routes reply with (409, 422,
            500, 503).
        detail: the human-readable reason, sent as ``{"detail": detail}``.
    """

    def __init__(self, *, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail

    def __str__(self) -> str:
        return self.detail
