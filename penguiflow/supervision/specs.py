"""Child specifications and the records a supervisor reports about its children."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from penguiflow.supervision.backoff import RestartBackoff
from penguiflow.supervision.strategy import RESTART_TYPES, RestartType

if TYPE_CHECKING:
    from penguiflow.actors.actor import Actor
    from penguiflow.actors.ports import MailboxLike
    from penguiflow.actors.ref import ActorRef
    from penguiflow.supervision.supervisor import Supervisor

__all__ = ["ChildCounts", "ChildInfo", "ChildSpec", "ChildState"]

ChildState = Literal["running", "restarting", "stopped"]


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """How a supervisor starts, restarts and stops one child.

    Args:
        id: unique among the supervisor's children.
        start: called with no arguments (``simple_one_for_one``: with the
            ``start_child`` arguments) for every incarnation; returns an
            ``Actor`` or a ``Supervisor``, or an awaitable of one.
        restart: ``"permanent"`` (always restarted), ``"transient"`` (restarted
            only after a crash) or ``"temporary"`` (never restarted).
        shutdown: seconds a stopping child may take before its task is
            cancelled; ``0`` cancels at once; ``None`` waits forever.
        backoff: delay restarts of this child (None: restart at once).
        capacity, lanes: the mailbox created for an actor child.
        mailbox: an externally owned mailbox to use instead (not closed when
            the actor stops).
        lazy: start an actor child's first incarnation only when its first
            message arrives. ``start`` is still called at once, but the task,
            ``on_start`` and everything after wait for mail, so an idle child
            costs no task; until then ``ref.task`` is None and a stop does not
            run ``on_stop``. Restarts start at once. *versionadded 3.0*

    .. versionadded:: 3.0
    """

    id: Hashable
    start: Callable[..., Actor | Supervisor | Awaitable[Actor | Supervisor]]
    restart: RestartType = "permanent"
    shutdown: float | None = 5.0
    backoff: RestartBackoff | None = None
    capacity: int = 64
    lanes: int = 1
    mailbox: MailboxLike | None = None
    lazy: bool = False

    def __post_init__(self) -> None:
        if self.restart not in RESTART_TYPES:
            raise ValueError(f"restart must be one of {RESTART_TYPES}, not {self.restart!r}")
        if self.shutdown is not None and self.shutdown < 0:
            raise ValueError("shutdown must be >= 0 or None")


@dataclass(frozen=True, slots=True)
class ChildInfo:
    """One row of ``Supervisor.which_children()``.

    ``ref`` is the child's ``ActorRef`` or ``Supervisor`` (None once stopped).

    .. versionadded:: 3.0
    """

    id: Hashable
    ref: ActorRef | Supervisor | None
    state: ChildState
    restarts: int
    kind: Literal["worker", "supervisor"] = "worker"


@dataclass(frozen=True, slots=True)
class ChildCounts:
    """``Supervisor.count_children()``: specs, running children, and by kind.

    .. versionadded:: 3.0
    """

    specs: int
    active: int
    supervisors: int
    workers: int
