"""Reusable building blocks: bounded fan-out, routers and a per-trace join.

``map_concurrent`` runs inside node code. ``predicate_router``, ``union_router``
and ``join_k`` return ordinary ``Node`` objects (``validate="none"``, default
timeouts and retries), so they inherit everything a hand-written node gets:
retries, timeouts, events, supervision. They use only the public flow API
(``Context.emit``, the context's successor map, and the flow's
``cancel_flag`` or ``ensure_trace_event`` hook).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeVar

from pydantic import TypeAdapter

from penguiflow._join_state import JoinState
from penguiflow._logging import get_logger
from penguiflow.hosting import record_state
from penguiflow.node import Node, NodePolicy
from penguiflow.policies import PolicyLike, RoutingDecisionType, RoutingRequest, evaluate_policy
from penguiflow.types import Message

__all__ = ["map_concurrent", "join_k", "predicate_router", "union_router"]  # noqa: RUF022 - the 2.2.5 order

_T = TypeVar("_T")
_R = TypeVar("_R")

_log = get_logger(__name__)


async def map_concurrent(
    items: Iterable[_T],
    worker: Callable[[_T], Awaitable[_R]],
    *,
    max_concurrency: int = 8,
) -> list[_R]:
    """Run ``worker`` over ``items`` with at most ``max_concurrency`` calls at once.

    Args:
        items: any iterable; it is materialised to a list first.
        worker: async callable ``item -> result``.
        max_concurrency: the limit on simultaneous calls (values below 1 mean 1).

    Returns:
        The results in **input order**, whatever order the calls finished in.

    Raises:
        Exception: the first exception a worker raised. The calls still running
            are cancelled and awaited first, so no work outlives this call; if the
            caller is cancelled, every running call is cancelled too.
    """
    pending = list(items)
    if not pending:
        return []
    results: list[Any] = [None] * len(pending)
    # One shared index iterator feeds a fixed pool of runners, so items start in
    # input order and a huge input does not create one task per item.
    indices = iter(range(len(pending)))

    async def run() -> None:
        for index in indices:
            results[index] = await worker(pending[index])

    failure: BaseException | None = None
    try:
        async with asyncio.TaskGroup() as group:
            for _ in range(min(max(1, max_concurrency), len(pending))):
                group.create_task(run())
    except BaseExceptionGroup as errors:
        # TaskGroup wraps failures; callers of 2.2.5 expect the worker's own exception.
        failure = errors.exceptions[0]
    if failure is not None:
        raise failure
    return results


# --- routers ---------------------------------------------------------------------


def _successors(ctx: Any) -> list[Node]:
    successors = getattr(ctx, "successors", None)
    # A context written for 2.2.5 (a test double, say) offers only the compat map
    # ``_outgoing``: its keys are the successors (and ROOKERY for egress nodes).
    targets = successors() if successors is not None else getattr(ctx, "_outgoing", None) or {}
    return [target for target in targets if isinstance(target, Node)]


def _resolve_targets(ctx: Any, decision: Any) -> list[Node]:
    """Turn a routing decision into successor nodes (names matched first-come)."""
    if isinstance(decision, Node | str) or not isinstance(decision, Iterable):
        entries: list[Any] = [decision]
    else:
        entries = list(decision)
    successors: list[Node] | None = None
    resolved: list[Node] = []
    for entry in entries:
        if isinstance(entry, Node):
            resolved.append(entry)
        elif isinstance(entry, str):
            if successors is None:
                successors = _successors(ctx)
            match = next((node for node in successors if node.name == entry), None)
            if match is None:
                raise KeyError(f"No successor named '{entry}'")
            resolved.append(match)
        else:
            raise TypeError("Targets must be Node or str")
    return resolved


async def _route(
    router: Node, ctx: Any, item: Any, decision: Any, policy: PolicyLike | None
) -> None:
    """Resolve, consult the policy, and emit ``item`` unchanged to the selection."""
    selected = _resolve_targets(ctx, decision)
    if not selected:
        return
    if policy is not None:
        request = RoutingRequest(
            message=item,
            context=ctx,
            node=router,
            proposed=tuple(selected),
            trace_id=getattr(item, "trace_id", None),
        )
        decided: RoutingDecisionType = await evaluate_policy(policy, request)
        if decided is None:
            return
        selected = _resolve_targets(ctx, decided)
        if not selected:
            return
    await ctx.emit(item, to=selected)


def predicate_router(
    name: str,
    predicate: Callable[[Any], RoutingDecisionType],
    *,
    policy: PolicyLike | None = None,
) -> Node:
    """Build a router node that forwards each item to the successors ``predicate`` names.

    Args:
        name: the node name.
        predicate: synchronous ``item -> decision``: a successor ``Node``, a
            successor name, a sequence of those, or ``None`` to drop the item.
        policy: optional ``RoutingPolicy`` (or callable) that may override or
            filter the proposed targets; its ``None`` drops the item.

    The original item is forwarded unchanged; the node itself returns ``None``.
    An unknown name raises ``KeyError("No successor named '<name>'")`` and any
    entry that is not a ``Node`` or ``str`` raises ``TypeError``; both are node
    errors (retried per policy, then ``node_failed``).
    """

    async def route(message: Any, ctx: Any) -> None:
        decision = predicate(message)
        if decision is None:
            return None
        await _route(node, ctx, message, decision, policy)
        return None

    node = Node(route, name=name, policy=NodePolicy(validate="none"))
    return node


def union_router(name: str, union_model: Any, *, policy: PolicyLike | None = None) -> Node:
    """Build a router node that validates a discriminated union and branches on it.

    Args:
        name: the node name.
        union_model: any type ``pydantic.TypeAdapter`` accepts, typically
            ``Annotated[A | B, Field(discriminator="kind")]``.
        policy: optional routing policy, as for ``predicate_router``.

    Each item (the bare model or dict, not a ``Message``) is validated; the
    target is the successor named after ``validated.kind`` (or the validated
    type's name when there is no ``kind``), and the **validated** object is
    forwarded.
    """
    adapter: TypeAdapter[Any] = TypeAdapter(union_model)

    async def route(message: Any, ctx: Any) -> None:
        validated = adapter.validate_python(message)
        target = validated.kind if hasattr(validated, "kind") else type(validated).__name__
        await _route(node, ctx, validated, target, policy)
        return None

    node = Node(route, name=name, policy=NodePolicy(validate="none"))
    return node


# --- join_k ----------------------------------------------------------------------


def join_k(name: str, k: int) -> Node:
    """Build a node that emits one aggregate per ``k`` arrivals of the same trace.

    Args:
        name: the node name.
        k: the batch size per trace.

    Raises:
        ValueError: ``k <= 0`` (at construction), or an item without a
            ``trace_id`` reaches the node (a node error).

    Items are kept in arrival order per ``trace_id``. The ``k``-th arrival
    returns ``first.model_copy(update={"payload": [each payload]})`` when the
    first item is a ``Message`` (the envelope of the first arrival), else the
    list of the ``k`` raw items; the bucket then starts afresh.

    A partial bucket is dropped, never emitted, when its trace is cancelled
    (``flow.cancel``; a later message with the same trace id starts an empty
    bucket). A trace that merely goes quiet keeps its partial bucket, so a
    later item of the same trace still completes it, also after the flow was
    stopped and run again (the buckets belong to the node object).

    On a durable flow each bucket is journaled with the step that changed it
    (per-trace state ``"join:<name>"``, deleted when the batch completes), and
    ``recover`` puts it back.
    """
    if k <= 0:
        raise ValueError("k must be positive")
    state = JoinState(k)
    key = f"join:{name}"  # its per-trace state on a durable flow (hosting.record_state)

    async def join(message: Any, ctx: Any) -> Any:
        trace_id = getattr(message, "trace_id", None)
        if trace_id is None:
            raise ValueError("join_k requires messages with trace_id")
        runtime = getattr(ctx, "runtime", None)
        if state.handed:
            again = state.redelivered(message, runtime)
            if again is not None:
                record_state(key, delete=True)
                return again.aggregate
        batch = state.add(trace_id, message, runtime)
        if batch is None:
            bucket = state.buckets.get(trace_id)
            if bucket is not None:  # a durable flow journals it with this step
                record_state(key, list(bucket.items))
            return None
        if state.k > 1:
            record_state(key, delete=True)
        first = batch[0]
        aggregate: Any = batch
        if isinstance(first, Message):
            aggregate = first.model_copy(update={"payload": [item.payload for item in batch]})
        if state.k > 1:  # add() recorded this completion last
            state.handed[-1].aggregate = aggregate
        return aggregate

    # Tests and debuggers reach the buckets through the function (Node has slots).
    join.join_state = state  # type: ignore[attr-defined]
    join.restore_state = state.restore  # type: ignore[attr-defined]  # recover()
    node = Node(join, name=name, policy=NodePolicy(validate="none"))
    state.node = node
    return node
