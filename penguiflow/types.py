"""Message models that travel through a flow (the 2.2.5 ``penguiflow.types`` module).

All seven classes are plain pydantic v2 models with the default configuration:
unknown fields are ignored, instances are mutable and not frozen. Programs call
``model_copy``/``model_dump``/``model_validate`` on them, so they stay real models.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [  # noqa: RUF022 - the 2.2.5 order
    "Headers",
    "Message",
    "StreamChunk",
    "PlanStep",
    "Thought",
    "WM",
    "FinalAnswer",
]


def _new_trace_id() -> str:
    return uuid.uuid4().hex


class Headers(BaseModel):
    """Routing headers carried by every ``Message``."""

    tenant: str
    topic: str | None = None
    priority: int = 0


class Message(BaseModel):
    """The envelope most nodes exchange: payload, headers, trace identity, metadata.

    ``deadline_s`` is an absolute wall-clock epoch time compared with the flow
    clock's ``time()``; ``None`` means no deadline.
    """

    payload: Any
    headers: Headers
    trace_id: str = Field(default_factory=_new_trace_id)
    ts: float = Field(default_factory=time.time)
    deadline_s: float | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class StreamChunk(BaseModel):
    """One piece of a streamed answer; ``seq`` counts from 0 per stream id."""

    stream_id: str
    seq: int
    text: str
    done: bool = False
    meta: dict[str, Any] = Field(default_factory=dict)


class PlanStep(BaseModel):
    """A planned step; a data container the runtime never inspects."""

    kind: Literal["retrieve", "web", "sql", "summarize", "route", "stop"]
    args: dict[str, Any] = Field(default_factory=dict)
    max_concurrency: int = 1


class Thought(BaseModel):
    """A controller's reasoning record; a data container the runtime never inspects."""

    steps: list[PlanStep]
    rationale: str
    done: bool = False


class WM(BaseModel):
    """Working memory of a controller loop, with hop and token budgets.

    ``budget_hops`` defaults to ``8``; ``None`` disables the hop guard.
    ``budget_tokens`` defaults to ``None`` (no token guard).
    """

    query: str
    facts: list[Any] = Field(default_factory=list)
    hops: int = 0
    budget_hops: int | None = 8
    tokens_used: int = 0
    budget_tokens: int | None = None
    confidence: float = 0.0


class FinalAnswer(BaseModel):
    """The answer that ends a controller loop; delivered straight to Rookery."""

    text: str
    citations: list[str] = Field(default_factory=list)
