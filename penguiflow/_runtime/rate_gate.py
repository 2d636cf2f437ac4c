"""The rate limits of one flow: a gate per rate-limited node, checked before each attempt.

``RateLimits`` is built with the flow. Nodes without ``NodePolicy.rate_limit``
get no gate: their actors never reach this module and arm no timer. A gate
reserves one token before every attempt (retries included: each one calls the
rate-limited service again) and, when the bucket is empty, waits on the flow's
clock in the actor's own task. The item stays in hand meanwhile, so the mailbox
behind it fills and producers feel the usual backpressure; nothing is dropped.

* Cancellation: a trace cancel or ``stop()`` interrupts the wait like any
  invocation (``NodeActor.on_interrupt``); the reserved token is given back.
* Deadline: an item whose turn would come after its ``deadline_s`` does not
  wait for it: it ends at once exactly as an item that arrived late
  (``deadline_skip``, a ``FinalAnswer("Deadline exceeded")`` to Rookery), and its
  token is given back.
* ``timeout_s`` bounds the attempt, not the wait before it.

Buckets: ``key=None`` uses the flow's own in-memory limiter (one bucket per node,
kept across actor restarts); a keyed limit uses the flow's shared limiter, the
``rate_limiter=`` given to the flow, else that same in-memory one. A Redis
deployment swaps the shared limiter for ``RedisRateLimiter``, and
``call_playbook`` gives a subflow its caller's (``share``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from penguiflow._runtime.policy import DEADLINE_EXCEEDED_TEXT, with_final
from penguiflow.ratelimit import InMemoryRateLimiter, RateLimit, RateLimiter
from penguiflow.types import FinalAnswer, Message

if TYPE_CHECKING:
    from collections.abc import Iterable

    from penguiflow._runtime.run_state import RunState
    from penguiflow.node import Node

__all__ = ["RateGate", "RateLimits"]


class RateLimits:
    """The buckets a flow's nodes draw from, and one ``RateGate`` per limited node.

    Raises:
        TypeError: ``limiter`` is not a ``RateLimiter``.
        ValueError: two nodes name the same key with different limits.
    """

    __slots__ = ("_explicit", "gates", "local", "shared")

    def __init__(self, run: RunState, nodes: Iterable[Node], limiter: RateLimiter | None) -> None:
        if limiter is not None and not isinstance(limiter, RateLimiter):
            raise TypeError(f"rate_limiter must be a RateLimiter, got {type(limiter).__name__}")
        self.local = InMemoryRateLimiter(clock=run.clock)
        self._explicit = limiter is not None
        self.shared: RateLimiter = limiter if limiter is not None else self.local
        self.gates: dict[Node, RateGate] = {}
        named: dict[str, tuple[Node, RateLimit]] = {}
        for node in nodes:
            limit = node.policy.rate_limit
            if limit is None:
                continue
            if limit.key is not None:
                first = named.setdefault(limit.key, (node, limit))
                if first[1] != limit:
                    raise ValueError(
                        f"nodes {first[0].name!r} and {node.name!r} name rate-limit key "
                        f"{limit.key!r} with different limits: give them the same RateLimit"
                    )
            self.gates[node] = RateGate(self, run, node, limit)

    def share(self, limiter: RateLimiter) -> None:
        """Draw keyed buckets from ``limiter`` unless the flow was given its own."""
        if not self._explicit:
            self.shared = limiter


class RateGate:
    """Waits for a node's token before each attempt (see the module docstring)."""

    __slots__ = ("_bucket", "_limit", "_limits", "_node", "_run")

    def __init__(self, limits: RateLimits, run: RunState, node: Node, limit: RateLimit) -> None:
        self._limits = limits
        self._limit = limit
        self._node = node
        # A node's own bucket is named after the node, which outlives its actors.
        self._bucket = limit.key if limit.key is not None else f"node:{node.node_id}"
        self._run = run  # its clock, events, contexts and transport (filled by wiring)

    async def admit(self, item: Any, trace_id: str | None) -> bool:
        """Wait for this attempt's token; False if the item ended here (its deadline).

        Raises:
            asyncio.CancelledError: the wait was interrupted (the token is given back).
        """
        limit = self._limit
        limiter = self._limits.local if limit.key is None else self._limits.shared
        delay = await limiter.reserve(self._bucket, limit)
        if delay <= 0:
            return True
        deadline = item.deadline_s if isinstance(item, Message) else None
        clock = self._run.clock
        if deadline is not None and clock.time() + delay > deadline:
            await limiter.refund(self._bucket, limit)
            await self._skip_late(item, trace_id, deadline)
            return False
        try:
            await clock.sleep(delay)
        except BaseException:
            # Interrupted (trace cancel, stop()): the token was not used.
            await limiter.refund(self._bucket, limit)
            raise
        return True

    async def _skip_late(self, item: Message, trace_id: str | None, deadline: float) -> None:
        # The deadline branch of NodeActor._admit: the same event and final answer.
        extra = {"deadline_s": deadline}
        run = self._run
        await run.events.emit("deadline_skip", run.contexts[self._node], trace_id, extra=extra)
        if isinstance(item.payload, FinalAnswer):
            final = item.model_copy()
        else:
            final = with_final(item, DEADLINE_EXCEEDED_TEXT)
        await run.io.to_rookery(final, source=self._node)
