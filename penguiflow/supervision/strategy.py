"""Restart decisions and restart intensity: pure functions, no asyncio, no clock.

The supervisor asks this module what to do and does it; keeping the rules here
makes them easy to read against OTP's ``supervisor.erl`` and to test alone.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "RESTART_TYPES",
    "STRATEGIES",
    "RestartIntensity",
    "RestartPlan",
    "RestartType",
    "Strategy",
    "plan_restart",
    "should_restart",
]

Strategy = Literal["one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one"]
RestartType = Literal["permanent", "transient", "temporary"]
STRATEGIES: tuple[Strategy, ...] = (
    "one_for_one",
    "one_for_all",
    "rest_for_one",
    "simple_one_for_one",
)
RESTART_TYPES: tuple[RestartType, ...] = ("permanent", "transient", "temporary")


def should_restart(restart: RestartType, *, normal: bool) -> bool:
    """Whether a child that exited (``normal`` or by crashing) is restarted.

    ``permanent``: always. ``transient``: only after an abnormal exit.
    ``temporary``: never.
    """
    if restart == "permanent":
        return True
    if restart == "transient":
        return not normal
    return False


@dataclass(frozen=True, slots=True)
class RestartPlan:
    """What a crash of one child does to its siblings.

    ``terminate``: siblings to stop first, in reverse start order.
    ``restart``: children to start again, in start order (the failed one included).
    ``drop``: temporary siblings that are stopped and deleted, never restarted.

    .. versionadded:: 3.0
    """

    terminate: tuple[Hashable, ...]
    restart: tuple[Hashable, ...]
    drop: tuple[Hashable, ...]


def plan_restart(
    strategy: Strategy,
    children: Sequence[tuple[Hashable, RestartType]],
    failed: Hashable,
) -> RestartPlan:
    """Plan the restart after ``failed`` crashed; ``children`` is (id, restart) in start order.

    ``one_for_one`` and ``simple_one_for_one`` restart the failed child alone.
    ``one_for_all`` stops every other child and restarts all; ``rest_for_one``
    stops the children started after the failed one and restarts it and them.
    Temporary siblings caught up in this are stopped and dropped.
    """
    ids = [child_id for child_id, _ in children]
    if strategy in ("one_for_one", "simple_one_for_one"):
        return RestartPlan(terminate=(), restart=(failed,), drop=())
    if strategy == "one_for_all":
        affected = list(children)
    elif strategy == "rest_for_one":
        affected = list(children[ids.index(failed) :])
    else:
        raise ValueError(f"unknown strategy {strategy!r}")
    siblings = [(cid, restart) for cid, restart in affected if cid != failed]
    return RestartPlan(
        terminate=tuple(cid for cid, _ in reversed(siblings)),
        restart=tuple(cid for cid, restart in affected if cid == failed or restart != "temporary"),
        drop=tuple(cid for cid, restart in siblings if restart == "temporary"),
    )


class RestartIntensity:
    """Counts restarts in a sliding window: more than ``intensity`` in ``period`` trips it.

    ``intensity=0`` means the first restart already trips it (any crash
    escalates). Times are monotonic seconds supplied by the caller.

    .. versionadded:: 3.0
    """

    __slots__ = ("_times", "intensity", "period")

    def __init__(self, intensity: int, period: float) -> None:
        if intensity < 0:
            raise ValueError("intensity must be >= 0")
        if period <= 0:
            raise ValueError("period must be > 0")
        self.intensity = intensity
        self.period = period
        self._times: deque[float] = deque()

    def record(self, now: float) -> bool:
        """Record a restart at ``now``; True when the limit is exceeded."""
        times = self._times
        times.append(now)
        while times and times[0] <= now - self.period:
            times.popleft()
        return len(times) > self.intensity

    @property
    def recent(self) -> int:
        """Restarts currently inside the window (as of the last ``record``)."""
        return len(self._times)
