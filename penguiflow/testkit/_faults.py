"""Fault injection for chaos tests: faulty nodes, killed actors and slow consumers.

Three kinds of trouble, each deterministic by seed:

* **Node faults** (``FaultPlan.wrap`` / ``FaultPlan.node``): an invocation
  raises ``InjectedFault``, times out (sleeps on the clock past its policy
  ``timeout_s``), or hangs until it is cancelled. Which invocation fails is a
  pure function of ``(seed, node, key, call number)``, never of scheduling
  order, so a run's outcomes depend only on the seed.
* **Actor kills** (``kill_actor``, and the ``crash`` fault): the node actor's
  task is cancelled from outside the node function, through the flow's
  ``supervisor``; the supervisor restarts it and the kernel redelivers the
  message in hand. A ``crash`` parks the node function at a safe point (before
  it has emitted anything) and kills the actor from a loop callback, so the
  redelivery cannot duplicate an emission.
* **Slow consumers** (``SlowConsumer``): a node function that takes one item
  per permit, so the mailboxes in front of it stay full and producers feel
  backpressure.

It stays one module past ~400 lines because the three are one harness: the
plan paces kills and crash faults against the same supervisor.

.. versionadded:: 3.0
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from typing import Any

from penguiflow._time import SYSTEM_CLOCK, Clock
from penguiflow.actors import ActorRef
from penguiflow.node import Node, NodePolicy

__all__ = [
    "FaultKind",
    "FaultPlan",
    "FaultStatistics",
    "InjectedFault",
    "SlowConsumer",
    "kill_actor",
]

NodeFunc = Callable[[Any, Any], Awaitable[Any]]
KeyFunc = Callable[[Any], str]


class FaultKind(enum.Enum):
    """What one invocation of a faulty node does."""

    NONE = "none"
    RAISE = "raise"
    TIMEOUT = "timeout"
    HANG = "hang"
    CRASH = "crash"


class InjectedFault(RuntimeError):
    """The exception a ``FaultKind.RAISE`` invocation raises.

    Attributes ``node``, ``key`` (the trace id by default) and ``call`` (1-based
    invocation number for that key) say which decision produced it.
    """

    def __init__(self, node: str, key: str, call: int) -> None:
        super().__init__(f"injected fault in {node} for {key} (call {call})")
        self.node = node
        self.key = key
        self.call = call


@dataclass(frozen=True, slots=True)
class FaultStatistics:
    """How many invocations a ``FaultPlan`` saw and how many it broke, by kind."""

    calls: int
    raised: int
    timeouts: int
    hangs: int
    crashes: int
    kills: int

    @property
    def injected(self) -> int:
        """Every fault: raised, timed out, hung, crashed, plus outside kills."""
        return self.raised + self.timeouts + self.hangs + self.crashes + self.kills


def _default_key(message: Any) -> str:
    trace_id = getattr(message, "trace_id", None)
    return str(trace_id) if trace_id is not None else repr(message)


def kill_actor(flow: Any, node: Node | str, *, only_idle: bool = False) -> bool:
    """Kill ``node``'s actor as a crash outside the node function would.

    The actor's current task is cancelled; the flow's ``supervisor`` sees the
    abnormal exit and restarts it (counting towards its restart intensity), and
    the kernel puts the message in hand back at the front of the mailbox. A node
    that already emitted part of its output emits it again on redelivery
    (at-least-once); ``only_idle=True`` kills only an actor waiting for work.

    Args:
        flow: a running ``PenguiFlow``.
        node: the ``Node`` or its name (its child id under the flow supervisor).
        only_idle: refuse (return False) while the actor handles a message.

    Returns:
        True if a live actor was killed.
    """
    supervisor = getattr(flow, "supervisor", None)
    if supervisor is None:
        return False
    name = node if isinstance(node, str) else node.name
    for info in supervisor.which_children():
        if info.id != name or info.state != "running":
            continue
        ref = info.ref
        if isinstance(ref, ActorRef) and ref.dormant:
            ref.wake()  # a lazy actor not started yet: give it a task to kill
        task = getattr(ref, "task", None)
        if task is None or task.done():
            return False
        if only_idle and ref.busy:
            return False
        task.cancel()
        return True
    return False


class FaultPlan:
    """Seeded fault decisions for the invocations of faulty nodes.

    Args:
        seed: the same seed gives the same decisions.
        raise_rate, timeout_rate, hang_rate, crash_rate: probability of each
            fault per invocation (their sum must be at most 1).
        clock: where ``timeout`` faults sleep and ``crash`` faults are paced
            (the flow's clock; ``FakeClock`` in tests).
        timeout_sleep_s: how long a ``timeout`` fault sleeps before raising
            ``TimeoutError`` itself; set it above the node's ``timeout_s`` so the
            policy timeout fires first.
        crash_interval_s: at least this many clock seconds between two kills, so
            periodic crashes stay within the supervisor's restart intensity (the
            flow allows 3 restarts in 5 s). A crash decided sooner is skipped.

    Raises:
        ValueError: a rate is negative or the rates add up to more than 1.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        seed: int = 0,
        *,
        raise_rate: float = 0.0,
        timeout_rate: float = 0.0,
        hang_rate: float = 0.0,
        crash_rate: float = 0.0,
        clock: Clock | None = None,
        timeout_sleep_s: float = 3600.0,
        crash_interval_s: float = 2.0,
    ) -> None:
        rates = (raise_rate, timeout_rate, hang_rate, crash_rate)
        if any(rate < 0 for rate in rates) or sum(rates) > 1.0:
            raise ValueError("fault rates must be >= 0 and add up to at most 1")
        self.seed = seed
        kinds = (FaultKind.RAISE, FaultKind.TIMEOUT, FaultKind.HANG, FaultKind.CRASH)
        bounds: list[tuple[float, FaultKind]] = []
        total = 0.0
        for rate, kind in zip(rates, kinds, strict=True):
            total += rate
            bounds.append((total, kind))
        self._bounds = tuple(bounds)
        self.clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self.timeout_sleep_s = timeout_sleep_s
        self.crash_interval_s = crash_interval_s
        self._last_kill: float | None = None
        # After a kill: (supervisor, restart count that shows it was handled).
        self._awaiting: tuple[Any, int] | None = None
        # (node, key) -> invocations so far; an entry leaves on success or when
        # the node's last attempt was made, so finished traces leave nothing behind.
        self._calls: dict[tuple[str, str], list[int]] = {}
        self._counts = dict.fromkeys(("calls", "raised", "timeouts", "hangs", "crashes"), 0)
        self._kills = 0

    # -- decisions ---------------------------------------------------------------------
    def decide(self, node: str, key: str, call: int) -> FaultKind:
        """The fault for invocation ``call`` (1-based) of ``node`` for ``key``; pure."""
        digest = hashlib.blake2b(
            f"{self.seed}|{node}|{key}|{call}".encode(), digest_size=8
        ).digest()
        draw = int.from_bytes(digest, "big") / 2.0**64
        for bound, kind in self._bounds:
            if draw < bound:
                return kind
        return FaultKind.NONE

    def statistics(self) -> FaultStatistics:
        """Counters so far (a frozen copy)."""
        c = self._counts
        return FaultStatistics(
            c["calls"], c["raised"], c["timeouts"], c["hangs"], c["crashes"], self._kills
        )

    @property
    def tracked_keys(self) -> int:
        """Keys with an unfinished run of invocations (0 once every trace ended)."""
        return len(self._calls)

    def forget(self) -> None:
        """Drop the per-key call counters (after cancelled traces left some behind)."""
        self._calls.clear()

    # -- kills -------------------------------------------------------------------------
    def kill(self, flow: Any, node: Node | str, *, only_idle: bool = False) -> bool:
        """``kill_actor`` paced by ``crash_interval_s``; counted in ``statistics().kills``."""
        if not self._kill_allowed(flow):
            return False
        if not kill_actor(flow, node, only_idle=only_idle):
            return False
        self._killed(flow)
        self._kills += 1
        return True

    def _kill_allowed(self, flow: Any) -> bool:
        """True if a kill now keeps restarts ``crash_interval_s`` apart.

        The supervisor stamps a restart when it handles the exit, which can be
        later than the kill (a fake clock may jump meanwhile), so the interval
        is counted from the moment the last victim's restart was seen.
        """
        awaiting = self._awaiting
        if awaiting is not None:
            supervisor, expected = awaiting
            if supervisor is getattr(flow, "supervisor", None) and _restarts(supervisor) < expected:
                return False
            self._awaiting = None
            self._last_kill = self.clock.monotonic()  # the restart was stamped by now
        last = self._last_kill
        return last is None or self.clock.monotonic() - last >= self.crash_interval_s

    def _killed(self, flow: Any) -> None:
        supervisor = getattr(flow, "supervisor", None)
        self._last_kill = self.clock.monotonic()
        if supervisor is not None:
            self._awaiting = (supervisor, _restarts(supervisor) + 1)

    # -- faulty nodes ------------------------------------------------------------------
    def wrap(
        self,
        func: NodeFunc,
        *,
        node: str,
        key: KeyFunc | None = None,
        max_faults: int | None = None,
        attempts: int | None = None,
        faults: Collection[FaultKind] | None = None,
    ) -> NodeFunc:
        """Return a node function that consults the plan before calling ``func``.

        Args:
            func: the real node function ``(message, ctx)``.
            node: the node name used in decisions (and for killing its actor).
            key: ``message -> str`` naming the unit of work (default: the trace
                id). Invocations with the same key are numbered 1, 2, ...
            max_faults: at most this many faulty invocations per key; with the
                node's ``max_retries`` the faults are transient (the last attempt
                always runs ``func``).
            attempts: the node's total attempts (``1 + max_retries``); the key's
                counter is dropped once they are used up.
            faults: the kinds this node may suffer (default: all); a decision
                of another kind runs ``func`` normally. A node without
                ``timeout_s`` should not get ``HANG``: nothing would end it.
        """
        key_of = key if key is not None else _default_key
        calls = self._calls
        counts = self._counts

        async def faulty(message: Any, ctx: Any) -> Any:
            unit = (node, key_of(message))
            state = calls.get(unit)
            if state is None:
                state = calls[unit] = [0, 0]  # invocations, crashes among them
            state[0] += 1
            call = state[0]
            counts["calls"] += 1
            kind = self.decide(node, unit[1], call)
            if (max_faults is not None and call > max_faults) or (
                faults is not None and kind not in faults
            ):
                kind = FaultKind.NONE
            runtime = getattr(ctx, "runtime", None)
            if kind is FaultKind.CRASH and not self._kill_allowed(runtime):
                kind = FaultKind.NONE
            if kind is FaultKind.NONE:
                result = await func(message, ctx)
                calls.pop(unit, None)
                return result
            if kind is FaultKind.CRASH:
                # A redelivery after a kill starts the runtime's attempts afresh.
                state[1] += 1
            elif attempts is not None and call - state[1] >= attempts:
                calls.pop(unit, None)  # the runtime makes no further attempt
            await self._inject(kind, node, unit[1], call, ctx)
            raise AssertionError("unreachable: an injected fault always raises")  # pragma: no cover

        faulty.__name__ = getattr(func, "__name__", node)
        faulty.__qualname__ = faulty.__name__
        return faulty

    def node(
        self,
        func: NodeFunc,
        *,
        name: str,
        policy: NodePolicy | None = None,
        allow_cycle: bool = False,
        key: KeyFunc | None = None,
        transient: bool = False,
        faults: Collection[FaultKind] | None = None,
    ) -> Node:
        """Build a ``Node`` named ``name`` running ``func`` under this plan.

        With ``transient=True`` the node's last attempt never faults, so every
        message eventually succeeds (retries absorb the faults); otherwise a
        message whose every attempt faults ends as a ``FlowError``. ``faults``
        restricts the kinds, as for ``wrap``.
        """
        policy = policy if policy is not None else NodePolicy(validate="none")
        attempts = 1 + max(0, policy.max_retries)
        wrapped = self.wrap(
            func,
            node=name,
            key=key,
            max_faults=attempts - 1 if transient else None,
            attempts=attempts,
            faults=faults,
        )
        return Node(wrapped, name=name, policy=policy, allow_cycle=allow_cycle)

    async def _inject(self, kind: FaultKind, node: str, key: str, call: int, ctx: Any) -> None:
        counts = self._counts
        if kind is FaultKind.RAISE:
            counts["raised"] += 1
            raise InjectedFault(node, key, call)
        if kind is FaultKind.TIMEOUT:
            counts["timeouts"] += 1
            await self.clock.sleep(self.timeout_sleep_s)
            raise TimeoutError(f"injected timeout in {node} for {key} (call {call})")
        never: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if kind is FaultKind.CRASH:
            runtime = getattr(ctx, "runtime", None)
            counts["crashes"] += 1
            self._killed(runtime)
            # Killed from a loop callback, outside this function: it is parked on
            # ``never`` at that point, having emitted nothing.
            asyncio.get_running_loop().call_soon(kill_actor, runtime, node)
        else:
            counts["hangs"] += 1
        await never  # ends only by cancellation: policy timeout, trace cancel, kill, stop


def _restarts(supervisor: Any) -> int:
    return sum(info.restarts for info in supervisor.which_children())


class SlowConsumer:
    """A node function that handles one item per permit, keeping its mailbox full.

    ``Node(consumer.func, name=...)``; ``release(n)`` lets ``n`` more items
    through, ``open()`` lets everything through from now on. ``waiting`` is how
    many invocations are parked, and ``wait_parked(n)`` waits for that count.
    ``func`` (default: return the message unchanged) runs after the permit.

    .. versionadded:: 3.0
    """

    def __init__(self, func: NodeFunc | None = None) -> None:
        self._inner = func
        self._permits = 0
        self._open = False
        self.waiting = 0
        self.handled = 0
        self._changed: asyncio.Event | None = None
        self._released: asyncio.Event | None = None

        async def consume(message: Any, ctx: Any) -> Any:
            await self._acquire()
            self.handled += 1
            if self._inner is None:
                return message
            return await self._inner(message, ctx)

        self.func: NodeFunc = consume

    def release(self, count: int = 1) -> None:
        """Let ``count`` more items through."""
        self._permits += count
        self._wake_released()

    def open(self) -> None:
        """Let every item through from now on."""
        self._open = True
        self._wake_released()

    async def wait_parked(self, count: int = 1) -> None:
        """Wait until ``count`` invocations are parked waiting for a permit."""
        while self.waiting < count:
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()

    def _wake_released(self) -> None:
        if self._released is not None:
            self._released.set()
            self._released = None

    async def _acquire(self) -> None:
        self.waiting += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None
        try:
            while not self._open and self._permits <= 0:
                if self._released is None:
                    self._released = asyncio.Event()
                await self._released.wait()
        finally:
            self.waiting -= 1
        if not self._open:
            self._permits -= 1
