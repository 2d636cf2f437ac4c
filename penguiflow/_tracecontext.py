"""W3C trace context across process boundaries, at no cost when OpenTelemetry is unused.

Every helper is a no-op unless ``opentelemetry`` was already imported by the
program (``penguiflow.otel`` or the program's own setup): transports never
import it themselves, so ``import penguiflow`` and uninstrumented calls stay
free of it. The propagator is OpenTelemetry's global one (W3C
``traceparent``/``tracestate`` by default).

A worker that receives an item of a trace parks the sender's context under the
trace id (``expect_remote_parent``); the worker flow's instrumentation takes it
(``take_remote_parent``) when that trace first shows up, so the worker's node
spans become children of the sender's span.
"""

from __future__ import annotations

import sys
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

__all__ = [
    "continued",
    "current_carrier",
    "expect_remote_parent",
    "extract",
    "take_remote_parent",
]

_REMOTE_MAX = 4096
_remote: OrderedDict[str, dict[str, str]] = OrderedDict()


def _enabled() -> bool:
    return "opentelemetry.propagate" in sys.modules or "opentelemetry.trace" in sys.modules


def current_carrier() -> dict[str, str]:
    """The current context as headers (``traceparent``, ...); empty when there is none."""
    if not _enabled():
        return {}
    from opentelemetry import propagate, trace

    span = trace.get_current_span()
    span_context = span.get_span_context()
    if not span_context.is_valid:
        return {}
    if span_context.trace_flags.sampled and not span.is_recording():
        # An ended span left current in a long-lived task's context (a task
        # started while it was current): not the parent of what is sent now.
        return {}
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def extract(carrier: Mapping[str, str] | None) -> Any:
    """An OpenTelemetry ``Context`` from headers, or None (no headers, no OpenTelemetry)."""
    if not carrier or not _enabled():
        return None
    lowered = {str(k).lower(): str(v) for k, v in carrier.items()}
    if "traceparent" not in lowered:
        return None
    from opentelemetry import propagate

    return propagate.extract(lowered)


@contextmanager
def continued(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Run the block in the context the headers carry (as is, without them)."""
    context = extract(carrier)
    if context is None:
        yield
        return
    from opentelemetry import context as otel_context

    token = otel_context.attach(context)
    try:
        yield
    finally:
        otel_context.detach(token)


def expect_remote_parent(trace_id: str | None, carrier: Mapping[str, str] | None) -> None:
    """Remember the sender's context of ``trace_id`` for the local instrumentation."""
    if trace_id is None or not carrier or "traceparent" not in carrier:
        return
    _remote[trace_id] = dict(carrier)
    _remote.move_to_end(trace_id)
    while len(_remote) > _REMOTE_MAX:  # nobody instrumented here takes them
        _remote.popitem(last=False)


def take_remote_parent(trace_id: str) -> Any:
    """The context parked for ``trace_id`` (forgotten once taken), or None."""
    carrier = _remote.pop(trace_id, None)
    return extract(carrier) if carrier is not None else None
