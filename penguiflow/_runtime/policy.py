"""Retry, timeout and backoff of one node attempt loop; controller budgets.

NodePolicy is per-message "retry, then resume": every attempt runs inline in the
node actor's task (no task per message; a timer is armed only when ``timeout_s``
is set). Exhausted retries turn the message into a ``FlowError`` value and the
actor goes on with its next message. Controller budgets (deadline, tokens, hops)
are int/float comparisons made on each self-send.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from penguiflow.errors import FlowError, FlowErrorCode
from penguiflow.types import WM, FinalAnswer, Message

if TYPE_CHECKING:
    from penguiflow.node import Node, NodePolicy

__all__ = [
    "BUDGET_EXCEEDED_TEXT",
    "DEADLINE_EXCEEDED_TEXT",
    "TOKEN_BUDGET_EXCEEDED_TEXT",
    "ControllerStep",
    "backoff_delay",
    "controller_step",
    "failure",
    "with_final",
]

DEADLINE_EXCEEDED_TEXT = "Deadline exceeded"
BUDGET_EXCEEDED_TEXT = "Hop budget exhausted"
TOKEN_BUDGET_EXCEEDED_TEXT = "Token budget exhausted"


def backoff_delay(policy: NodePolicy, attempt: int) -> float:
    """Seconds to wait before attempt ``attempt`` (1 for the first retry)."""
    delay = policy.backoff_base * policy.backoff_mult ** (attempt - 1)
    if policy.max_backoff is not None:
        delay = min(delay, policy.max_backoff)
    return delay


def failure(
    node: Node, trace_id: str | None, exc: Exception, attempt: int, latency_ms: float
) -> FlowError:
    """The ``FlowError`` for the final failed attempt of ``node`` on one item."""
    timeout_s = node.policy.timeout_s
    if isinstance(exc, TimeoutError):
        if timeout_s is not None:
            message = f"Node '{node.name}' timed out after {timeout_s:.2f}s"
        else:
            message = str(exc) or "TimeoutError"
        code = FlowErrorCode.NODE_TIMEOUT
        metadata: dict[str, Any] = {
            "attempt": attempt,
            "latency_ms": latency_ms,
            "timeout_s": timeout_s,
        }
    else:
        message = f"Node '{node.name}' raised {type(exc).__name__}: {exc}"
        code = FlowErrorCode.NODE_EXCEPTION
        metadata = {"attempt": attempt, "latency_ms": latency_ms, "exception_repr": repr(exc)}
    return FlowError(
        trace_id=trace_id,
        node_name=node.name,
        node_id=node.node_id,
        code=code,
        message=message,
        original_exc=exc,
        metadata=metadata,
    )


def with_final(message: Message, text: str) -> Message:
    """A shallow copy of ``message`` whose payload is ``FinalAnswer(text)``."""
    return message.model_copy(update={"payload": FinalAnswer(text=text)})


class ControllerStep:
    """What a controller hop decided: a final for Rookery, or the next hop to self-send."""

    __slots__ = ("final", "forward", "stream")

    def __init__(
        self, *, final: Message | None = None, forward: Message | None = None, stream: bool = False
    ) -> None:
        self.final = final
        self.forward = forward
        self.stream = stream  # both budgets unset: also stream a copy of the hop to Rookery


def controller_step(item: Any, result: Message, wm: WM, now: float) -> ControllerStep:
    """Apply the deadline, token and hop checks to a returned WM message, in order."""
    deadline = result.deadline_s
    if deadline is not None and now > deadline:
        return ControllerStep(final=with_final(result, DEADLINE_EXCEEDED_TEXT))
    if wm.budget_tokens is not None and wm.tokens_used >= wm.budget_tokens:
        return ControllerStep(final=with_final(result, TOKEN_BUDGET_EXCEEDED_TEXT))
    next_hops = wm.hops
    if isinstance(item, Message):
        incoming = item.payload
        if isinstance(incoming, WM) and wm.hops <= incoming.hops:
            next_hops = incoming.hops + 1
    if wm.budget_hops is not None and next_hops >= wm.budget_hops:
        return ControllerStep(final=with_final(result, BUDGET_EXCEEDED_TEXT))
    forward = result
    if next_hops != wm.hops:
        # One shallow copy per hop: meta stays shared, as 2.2.5's model_copy does.
        forward = result.model_copy(update={"payload": wm.model_copy(update={"hops": next_hops})})
    return ControllerStep(
        forward=forward, stream=wm.budget_hops is None and wm.budget_tokens is None
    )
