"""Internal records of a supervisor: its children and the events in its inbox."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Hashable
from typing import TYPE_CHECKING, Any, Literal

from penguiflow._time import Clock

if TYPE_CHECKING:
    from penguiflow.actors.cell import ActorCell
    from penguiflow.actors.ref import ActorRef
    from penguiflow.supervision.specs import ChildSpec
    from penguiflow.supervision.supervisor import Supervisor
    from penguiflow.supervision.system import ActorSystem

__all__: list[str] = []

# Internal states; "stopping" is reported as "running" by which_children().
_State = Literal["running", "restarting", "stopping", "stopped"]


class _Child:
    """One child of a supervisor: its spec and its current worker cell or supervisor."""

    __slots__ = (
        "attempt",
        "cell",
        "gen",
        "kind",
        "registry",
        "restarts",
        "spec",
        "started_at",
        "state",
        "sup",
    )

    def __init__(self, spec: ChildSpec, kind: Literal["worker", "supervisor"]) -> None:
        self.spec = spec
        self.kind = kind
        self.cell: ActorCell | None = None
        self.sup: Supervisor | None = None
        self.state: _State = "running"
        self.restarts = 0
        self.gen = 0  # bumped per incarnation; stale exit events carry an older one
        self.started_at = 0.0
        self.attempt = 0  # consecutive backoff attempts
        self.registry: ActorSystem | None = None  # where the actor's name is registered

    @property
    def handle(self) -> ActorRef | Supervisor:
        if self.cell is not None:
            return self.cell.ref
        assert self.sup is not None
        return self.sup

    @property
    def task(self) -> asyncio.Task[Any] | None:
        if self.cell is not None:
            return self.cell.task
        assert self.sup is not None
        return self.sup._task


class _Exit:
    """A child's task ended (posted by its done-callback)."""

    __slots__ = ("gen", "id", "task")

    def __init__(self, child_id: Hashable, gen: int, task: asyncio.Task[Any]) -> None:
        self.id = child_id
        self.gen = gen
        self.task = task


class _Call:
    """An API call to run inside the supervisor's task (serialised with restarts)."""

    __slots__ = ("fn", "future")

    def __init__(self, fn: Callable[[], Awaitable[Any]], future: asyncio.Future[Any]) -> None:
        self.fn = fn
        self.future = future


class _RestartDue:
    """A backoff delay (or a failed restart's retry) has passed."""

    __slots__ = ("ids", "reason")

    def __init__(self, ids: tuple[Hashable, ...], reason: object) -> None:
        self.ids = ids
        self.reason = reason


class _StopRequest:
    """Stop every child in reverse start order, then exit."""

    __slots__ = ()


async def _wait_task(task: asyncio.Task[Any], clock: Clock, seconds: float | None) -> bool:
    """Wait up to ``seconds`` (None: forever) for ``task`` to end without cancelling it."""
    return await _wait_tasks((task,), clock, seconds)


async def _wait_tasks(
    tasks: Collection[asyncio.Task[Any]], clock: Clock, seconds: float | None
) -> bool:
    """Wait up to ``seconds`` (None: forever) for every task to end; True if all did."""
    if seconds is None:
        await asyncio.wait(tasks)
        return True
    if seconds > 0:
        try:
            async with clock.timeout_at(clock.monotonic() + seconds):
                await asyncio.wait(tasks)
        except TimeoutError:
            pass
    return all(task.done() for task in tasks)


async def _end_task(
    task: asyncio.Task[Any], clock: Clock, shutdown: float | None, grace: float
) -> bool:
    """Wait ``shutdown`` seconds, then cancel and wait ``grace``; False if abandoned.

    asyncio has no brutal kill: a task that swallows cancellation or blocks the
    loop cannot be stopped, only abandoned.
    """
    if task.done() or await _wait_task(task, clock, shutdown):
        return True
    task.cancel()
    return await _wait_task(task, clock, grace)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Done-callback: mark the task's exception as seen (we report it ourselves)."""
    if not task.cancelled():
        task.exception()
