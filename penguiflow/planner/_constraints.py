"""Budgets and planning hints: what the planner refuses before it calls a tool.

The hop budget and the deadline stop runaway loops (spec/planner.md section 7); the
hints steer the model and block disallowed or out-of-order tools (section 8). All of
this is pure bookkeeping: no I/O, no asyncio.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from penguiflow.planner import prompts
from penguiflow.planner._models import Trajectory

__all__ = ["ConstraintTracker", "PlanningHints"]

_ORDERING_KEY = "ordering_state"


@dataclass(frozen=True, slots=True)
class PlanningHints:
    """The parsed ``planning_hints`` mapping."""

    ordering_hints: tuple[str, ...] = ()
    parallel_groups: tuple[tuple[str, ...], ...] = ()
    sequential_only: frozenset[str] = frozenset()
    disallow_nodes: frozenset[str] = frozenset()
    prefer_nodes: tuple[str, ...] = ()
    max_parallel: int | None = None
    budget_hints: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, hints: Mapping[str, Any] | None) -> PlanningHints:
        """Parse a ``planning_hints`` mapping; every key is optional."""
        if not hints:
            return cls()
        budget = dict(hints.get("budget_hints") or {})
        max_parallel = hints.get("max_parallel")
        if not _is_int(max_parallel):
            # 2.2.5 falls back to the budget hint when the top-level value is unusable.
            fallback = budget.get("max_parallel")
            max_parallel = fallback if _is_int(fallback) else None
        return cls(
            ordering_hints=tuple(hints.get("ordering_hints") or ()),
            parallel_groups=tuple(tuple(group) for group in hints.get("parallel_groups") or ()),
            sequential_only=frozenset(hints.get("sequential_only") or ()),
            disallow_nodes=frozenset(hints.get("disallow_nodes") or ()),
            prefer_nodes=tuple(hints.get("prefer_nodes") or ()),
            max_parallel=max_parallel,
            budget_hints=budget,
        )

    def prompt_payload(self) -> dict[str, Any]:
        """The payload for ``prompts.render_planning_hints``; only non-empty keys."""
        constraints: list[str] = []
        if self.max_parallel is not None:
            constraints.append(f"max_parallel={self.max_parallel}")
        if self.sequential_only:
            constraints.append(f"sequential_only={','.join(sorted(self.sequential_only))}")
        payload: dict[str, Any] = {}
        if constraints:
            payload["constraints"] = "; ".join(constraints)
        if self.ordering_hints:
            payload["preferred_order"] = list(self.ordering_hints)
        if self.parallel_groups:
            payload["parallel_groups"] = [list(group) for group in self.parallel_groups]
        if self.disallow_nodes:
            payload["disallow_nodes"] = sorted(self.disallow_nodes)
        if self.prefer_nodes:
            payload["preferred_nodes"] = list(self.prefer_nodes)
        if self.budget_hints:
            payload["budget"] = dict(self.budget_hints)
        return payload

    def check(self, node_name: str, trajectory: Trajectory) -> str | None:
        """Return the error text for a sequential call the hints forbid, else ``None``.

        An out-of-order call is refused once; the model may then insist.
        """
        if node_name in self.disallow_nodes:
            return prompts.render_disallowed_node(node_name)
        if not self.ordering_hints:
            return None
        state = _ordering_state(trajectory)
        expected = self._expected(state)
        if expected is None or node_name not in self.ordering_hints or node_name == expected:
            return None
        if state["warned"]:
            return None
        state["warned"] = True
        return prompts.render_ordering_hint_violation(list(self.ordering_hints), node_name)

    def record_success(self, node_name: str, trajectory: Trajectory) -> None:
        """Advance the ordering progress when the expected tool succeeded."""
        if not self.ordering_hints:
            return
        state = _ordering_state(trajectory)
        if node_name == self._expected(state):
            state["completed"].append(node_name)
            state["warned"] = False

    def _expected(self, state: Mapping[str, Any]) -> str | None:
        index = len(state["completed"])
        return self.ordering_hints[index] if index < len(self.ordering_hints) else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ordering_state(trajectory: Trajectory) -> dict[str, Any]:
    state: dict[str, Any] = trajectory.hint_state.setdefault(
        _ORDERING_KEY, {"completed": [], "warned": False}
    )
    return state


class ConstraintTracker:
    """Hop budget and deadline of one run (or of one resumed continuation)."""

    __slots__ = ("_now", "deadline_at", "deadline_triggered", "hop_budget", "hops_used")

    def __init__(
        self,
        *,
        deadline_s: float | None,
        hop_budget: int | None,
        time_source: Callable[[], float],
        hops_used: int = 0,
    ) -> None:
        self._now = time_source
        self.deadline_at = None if deadline_s is None else time_source() + deadline_s
        self.hop_budget = hop_budget
        self.hops_used = hops_used
        self.deadline_triggered = False

    @classmethod
    def from_snapshot(
        cls, snapshot: Mapping[str, Any], *, time_source: Callable[[], float]
    ) -> ConstraintTracker:
        """Rebuild a tracker on resume: hops are kept, the deadline keeps its remainder."""
        return cls(
            deadline_s=snapshot.get("deadline_remaining_s"),
            hop_budget=snapshot.get("hop_budget"),
            time_source=time_source,
            hops_used=int(snapshot.get("hops_used") or 0),
        )

    @property
    def hop_exhausted(self) -> bool:
        """Whether every hop of the budget is used (true at once for a zero budget)."""
        return self.hop_budget is not None and self.hops_used >= self.hop_budget

    def deadline_reached(self) -> bool:
        """Check the deadline now; latches ``deadline_triggered`` when it has passed."""
        if self.deadline_at is not None and self._now() >= self.deadline_at:
            self.deadline_triggered = True
        return self.deadline_triggered

    def check_hop(self) -> str | None:
        """Return the refusal text when no hop is left for a sequential call."""
        if self.hop_exhausted:
            return prompts.render_hop_budget_violation(self.hop_budget or 0)
        return None

    def record_hop(self) -> None:
        """Count one tool invocation (only when a hop budget is set, as in 2.2.5)."""
        if self.hop_budget is not None:
            self.hops_used += 1

    def snapshot(self) -> dict[str, Any]:
        """Return the constraint state reported in finish metadata and pause records."""
        remaining = None
        if self.deadline_at is not None:
            remaining = max(self.deadline_at - self._now(), 0.0)
        return {
            "deadline_at": self.deadline_at,
            "deadline_remaining_s": remaining,
            "hop_budget": self.hop_budget,
            "hops_used": self.hops_used,
            "deadline_triggered": self.deadline_triggered,
            "hop_exhausted": self.hop_exhausted,
        }

    def finish_thought(self) -> str | None:
        """The budget text a run ends with, or ``None`` when no budget stopped it."""
        if self.deadline_triggered:
            return prompts.render_deadline_exhausted()
        if self.hop_exhausted:
            return prompts.render_hop_budget_violation(self.hop_budget or 0)
        return None
