"""OpenTelemetry GenAI spans for model and tool calls, at no cost when OpenTelemetry is unused.

Spans go to the global tracer provider, and only once the program imported
``opentelemetry`` (``penguiflow.otel`` or its own setup): the planner never
imports it. Names and attributes follow the GenAI semantic conventions:
``chat <model>`` with ``gen_ai.operation.name``, ``gen_ai.request.model`` and
``gen_ai.usage.input_tokens``/``output_tokens``; ``execute_tool <name>``.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["USAGE", "chat_span", "record_token_usage", "tool_span"]

USAGE: ContextVar[list[int] | None] = ContextVar("penguiflow_llm_usage", default=None)
"""Where ``record_token_usage`` also appends the tokens it reports: set by
``RateLimitedLLMClient`` around the call it limits (empty afterwards: no report)."""

_SCOPE = "penguiflow.planner"


def _tracer() -> Any:
    if "opentelemetry.trace" not in sys.modules:
        return None
    from opentelemetry import trace

    return trace.get_tracer(_SCOPE)


@asynccontextmanager
async def _span(name: str, attributes: dict[str, Any]) -> AsyncIterator[None]:
    tracer = _tracer()
    if tracer is None:
        yield
        return
    from opentelemetry.trace import SpanKind, Status, StatusCode

    with tracer.start_as_current_span(
        name,
        kind=SpanKind.CLIENT,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield
        except BaseException as exc:
            span.record_exception(exc)
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR, type(exc).__qualname__))
            raise


def chat_span(client: Any) -> Any:
    """The span of one model call by ``client`` (its ``model`` attribute names it)."""
    model = getattr(client, "model", None)
    model_name = str(model) if model else "unknown"
    return _span(
        f"chat {model_name}",
        {"gen_ai.operation.name": "chat", "gen_ai.request.model": model_name},
    )


def tool_span(name: str) -> Any:
    """The span of one tool call."""
    return _span(
        f"execute_tool {name}",
        {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name},
    )


def record_token_usage(input_tokens: int | None, output_tokens: int | None) -> None:
    """Put token counts on the current model-call span (a no-op without one).

    A custom ``JSONLLMClient`` calls this from ``complete`` to report usage; it
    also feeds a tokens-per-minute limit (``RateLimitedLLMClient``).
    """
    sink = USAGE.get()
    if sink is not None:
        sink.append(int(input_tokens or 0) + int(output_tokens or 0))
    if "opentelemetry.trace" not in sys.modules:
        return
    from opentelemetry import trace

    span = trace.get_current_span()
    if not span.is_recording():
        return
    if input_tokens is not None:
        span.set_attribute("gen_ai.usage.input_tokens", int(input_tokens))
    if output_tokens is not None:
        span.set_attribute("gen_ai.usage.output_tokens", int(output_tokens))
