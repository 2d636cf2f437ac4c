"""Pausing a run and finding it again: the tool context, pause records, resume tokens.

A tool pauses with ``await ctx.pause(reason, payload)``. The record is kept in memory
under a fresh resume token and, when the planner has a state store offering
``save_planner_state``/``load_planner_state`` (sync or async, spec/distribution.md),
saved there as JSON-ready data, so another process can resume the run.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from penguiflow.planner._models import PlannerPause, Trajectory

__all__ = [
    "PAUSE_DISABLED",
    "PauseBook",
    "PauseRecord",
    "PauseSignal",
    "ToolContext",
]

PAUSE_DISABLED = "Pause/resume is disabled for this planner"


class PauseSignal(Exception):
    """Raised inside a tool by ``ctx.pause`` to stop it; carries the ``PlannerPause``.

    An ``Exception`` subclass as in 2.2.5, so a tool catching bare ``Exception``
    around ``ctx.pause`` swallows the pause.
    """

    def __init__(self, pause: PlannerPause) -> None:
        super().__init__(pause.reason)
        self.pause = pause


class ToolContext:
    """The ``ctx`` a planner tool receives: ``meta`` and ``pause`` (not a flow Context).

    Attributes:
        meta: a dict copy of the run's ``context_meta``; joins get extra
            ``parallel_*`` keys.

    Tools are called by the planner, never construct one; import it from
    ``penguiflow.planner`` to annotate a tool's ``ctx`` parameter.

    .. versionadded:: 3.0 public as ``penguiflow.planner.ToolContext``.
    """

    __slots__ = ("_enabled", "_record_pause", "meta")

    def __init__(
        self,
        meta: dict[str, Any],
        *,
        pause_enabled: bool,
        record_pause: Callable[[str, Mapping[str, Any] | None], Awaitable[PlannerPause]],
    ) -> None:
        self.meta = meta
        self._enabled = pause_enabled
        self._record_pause = record_pause

    async def pause(self, reason: str, payload: Mapping[str, Any] | None = None) -> NoReturn:
        """Pause the run: record it and stop this tool; ``run`` returns a ``PlannerPause``.

        Raises:
            RuntimeError: pausing is disabled for this planner.
            pydantic.ValidationError: ``reason`` is not a known pause reason.
        """
        if not self._enabled:
            # A plain RuntimeError: the tool-failure text the model sees names the
            # type ("raised RuntimeError: ..."), which 2.2.5 programs match.
            raise RuntimeError(PAUSE_DISABLED)
        raise PauseSignal(await self._record_pause(reason, payload))


@dataclass(slots=True)
class PauseRecord:
    """What a resume needs: the trajectory, why it paused, and the budgets left."""

    trajectory: Trajectory
    reason: str
    payload: dict[str, Any]
    constraints: dict[str, Any] | None

    def to_payload(self) -> dict[str, Any]:
        """Return the JSON-ready form handed to ``save_planner_state``."""
        return {
            "trajectory": self.trajectory.serialise(),
            "reason": self.reason,
            "payload": dict(self.payload),
            "constraints": self.constraints,
        }

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> PauseRecord:
        """Rebuild a record from ``load_planner_state`` output."""
        constraints = data.get("constraints")
        return cls(
            trajectory=Trajectory.from_serialised(data["trajectory"]),
            reason=str(data.get("reason")),
            payload=dict(data.get("payload") or {}),
            constraints=dict(constraints) if constraints is not None else None,
        )


class PauseBook:
    """Pause records by resume token: in memory, mirrored to an optional state store."""

    __slots__ = ("_records", "_store")

    def __init__(self, state_store: Any | None) -> None:
        self._records: dict[str, PauseRecord] = {}
        self._store = state_store

    async def save(self, token: str, record: PauseRecord) -> None:
        """Keep ``record`` under ``token`` and save it to the store when it can."""
        self._records[token] = record
        saver = getattr(self._store, "save_planner_state", None)
        if saver is not None:
            await _maybe_await(saver(token, record.to_payload()))

    def discard(self, token: str) -> None:
        """Forget an in-memory record that will never be resumed."""
        self._records.pop(token, None)

    async def take(self, token: str) -> PauseRecord:
        """Remove and return the record for ``token`` (memory first, then the store).

        Raises:
            KeyError: no such token, or the store returned ``None``.
        """
        record = self._records.pop(token, None)
        if record is not None:
            return record
        loader = getattr(self._store, "load_planner_state", None)
        if loader is None:
            raise KeyError(token)
        data = await _maybe_await(loader(token))
        if data is None:
            raise KeyError(token)
        return PauseRecord.from_payload(data)


async def _maybe_await(value: Any) -> Any:
    # Store methods may be sync or async (spec/distribution.md); accept both.
    if inspect.isawaitable(value):
        return await value
    return value
