"""``run_one``, sequence assertions and the envelope check of the 2.2.5 FlowTestKit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from penguiflow.testkit._recorder import ensure_recorder, recorded_history

if TYPE_CHECKING:
    from penguiflow.metrics import FlowEvent
    from penguiflow.node import Node
    from penguiflow.types import Message

__all__ = [
    "assert_node_sequence",
    "assert_preserves_message_envelope",
    "get_recorded_events",
    "run_one",
]

_STUB_CHUNK_TEXT = (
    "FlowTestKit stub context does not support emit_chunk; "
    "provide a custom context via the 'ctx' parameter"
)


async def run_one(
    flow: Any,
    message: Message,
    *,
    registry: Any | None = None,
    timeout_s: float | None = 1.0,
) -> Any:
    """Run ``flow`` for one message and return the first item that reaches Rookery.

    Attaches the recording middleware (once per flow), registers
    ``message.trace_id``, starts the flow, emits ``message`` and fetches one
    result. The flow is stopped afterwards in every case once it was started.

    Args:
        flow: a ``PenguiFlow`` that is not running.
        message: the ``Message`` to emit.
        registry: passed to ``flow.run(registry=...)``.
        timeout_s: bound on the fetch in seconds (``None``: wait forever).

    Raises:
        TypeError: ``message`` is not a ``Message``.
        TimeoutError: nothing reached Rookery within ``timeout_s``.
        RuntimeError: from ``flow.run`` (already running, registry coverage),
            raised before anything is emitted and without a ``stop()``.
    """
    from penguiflow.types import Message

    if not isinstance(message, Message):
        raise TypeError("run_one expects a penguiflow.types.Message instance")
    recorder = ensure_recorder(flow)
    recorder.begin_session(message.trace_id)
    flow.run(registry=registry)
    try:
        await flow.emit(message)
        # A wall-clock bound: the harness guards the test, it is not flow time.
        async with asyncio.timeout(timeout_s):
            return await flow.fetch()
    finally:
        await flow.stop()


def get_recorded_events(trace_id: str) -> tuple[FlowEvent, ...]:
    """Return a snapshot of the recorded events of ``trace_id`` in emission order.

    Unknown (or evicted) traces give ``()``.
    """
    return tuple(recorded_history(trace_id) or ())


def assert_node_sequence(trace_id: str, expected: Iterable[str]) -> None:
    """Assert the order in which nodes started for ``trace_id``.

    Consecutive ``node_start`` events of the same node (retries) count once.

    Raises:
        AssertionError: nothing was recorded for the trace, or the sequence differs.
    """
    events = recorded_history(trace_id)
    if not events:
        raise AssertionError(
            f"No recorded events for trace_id={trace_id!r}; run a flow with run_one first."
        )
    actual: list[str] = []
    for event in events:
        if event.event_type != "node_start":
            continue
        name = event.node_name or event.node_id or "<anonymous>"
        if not actual or actual[-1] != name:
            actual.append(name)
    wanted = list(expected)
    if actual != wanted:
        raise AssertionError(
            f"Node sequence mismatch:\n  expected: {wanted!r}\n  actual:   {actual!r}"
        )


class _StubContext:
    """The context ``assert_preserves_message_envelope`` passes when none is given."""

    __slots__ = ()

    owner = None
    runtime = None

    async def emit(self, msg: Any, to: Any = None) -> None:
        return None

    def emit_nowait(self, msg: Any, to: Any = None) -> None:
        return None

    async def emit_chunk(self, **_kwargs: Any) -> Any:
        raise RuntimeError(_STUB_CHUNK_TEXT)


async def assert_preserves_message_envelope(
    node: Node | Callable[[Any, Any], Awaitable[Any]],
    *,
    message: Message | None = None,
    ctx: Any = None,
) -> Message:
    """Call a node function once and assert it returns a ``Message`` with the same envelope.

    The function is called directly: no runtime, no validation. Payload and
    ``meta`` changes are allowed; ``headers`` and ``trace_id`` must be kept.

    Args:
        node: a ``Node`` or a bare async callable ``(message, ctx)``.
        message: the input; defaults to ``Message(payload={}, headers=Headers(tenant="test"))``.
        ctx: the context; defaults to a stub whose ``emit_chunk`` raises ``RuntimeError``.

    Raises:
        TypeError: ``node`` is not async.
        AssertionError: the result is not a ``Message`` or its envelope changed.
    """
    from penguiflow.node import Node
    from penguiflow.types import Headers, Message

    if isinstance(node, Node):
        func: Any = node.func
        name: str = node.name or "<anonymous>"
    else:
        func = node
        name = getattr(node, "__name__", "<anonymous>")
    if not asyncio.iscoroutinefunction(func):
        raise TypeError("assert_preserves_message_envelope expects an async node")
    if message is None:
        message = Message(payload={}, headers=Headers(tenant="test"))
    result = await func(message, _StubContext() if ctx is None else ctx)
    if not isinstance(result, Message):
        raise AssertionError(
            f"Node '{name}' must return a Message but produced {type(result).__name__}"
        )
    altered = [
        field
        for field, changed in (
            ("headers", result.headers != message.headers),
            ("trace_id", result.trace_id != message.trace_id),
        )
        if changed
    ]
    if altered:
        raise AssertionError(
            f"Node '{name}' altered Message {', '.join(altered)}; preserve the envelope"
        )
    return result
