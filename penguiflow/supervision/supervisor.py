"""The supervisor: starts children, restarts them per strategy, escalates past a limit.

The engine (its task, restarts, stopping) is ``_core.py``; this module is the
public API: starting children and managing them the OTP way.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any

from penguiflow.actors.cell import ActorCell
from penguiflow.errors import (
    AlreadyPresent,
    AlreadyStarted,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    SimpleOneForOneError,
    SupervisionError,
)
from penguiflow.supervision._child import _Child, _end_task, _StopRequest
from penguiflow.supervision._core import _SupervisorCore
from penguiflow.supervision.specs import ChildCounts, ChildInfo, ChildSpec

if TYPE_CHECKING:
    from penguiflow.actors.ref import ActorRef
    from penguiflow.supervision.system import ActorSystem

__all__ = ["Supervisor"]


class Supervisor(_SupervisorCore):
    """Starts children, restarts them when they crash, and gives up past a limit.

    Args:
        strategy: ``"one_for_one"`` (restart the crashed child),
            ``"one_for_all"`` (restart every child), ``"rest_for_one"`` (restart
            the crashed child and those started after it) or
            ``"simple_one_for_one"`` (one template spec given in ``children``;
            ``start_child(*args)`` starts instances of it).
        intensity, period: more than ``intensity`` restarts within ``period``
            seconds make the supervisor stop its children and exit with
            ``Escalated``; its parent then applies its own strategy.
        name: for logs.
        clock: time source for shutdown timeouts, backoff and intensity
            (default: the parent's, else the system clock).
        children: specs started (in order) when the supervisor starts.
        kill_grace: seconds to wait after cancelling a child that ignored its
            shutdown timeout before abandoning it (logged ``actor_kill_abandoned``).

    A supervisor is itself a valid child of another supervisor.

    .. versionadded:: 3.0
    """

    def _resolve(self, args: tuple[Any, ...]) -> tuple[ChildSpec, tuple[Any, ...]]:
        """The spec to start and the arguments for its ``start``."""
        if self._template is not None:
            if args and isinstance(args[0], ChildSpec):
                raise SimpleOneForOneError(
                    "simple_one_for_one children are started with start_child(*args)"
                )
            spec = self._template
            child_id = f"{spec.id}-{next(self._serial)}"
            start = functools.partial(spec.start, *args) if args else spec.start
            return ChildSpec(
                id=child_id,
                start=start,
                restart=spec.restart,
                shutdown=spec.shutdown,
                backoff=spec.backoff,
                capacity=spec.capacity,
                lanes=spec.lanes,
                lazy=spec.lazy,
            ), ()
        if len(args) != 1 or not isinstance(args[0], ChildSpec):
            raise TypeError("start_child takes one ChildSpec")
        spec = args[0]
        existing = self._children.get(spec.id)
        if existing is not None:
            if existing.state == "stopped":
                raise AlreadyPresent(f"child {spec.id!r} is present", child_id=spec.id)
            raise AlreadyStarted(f"child {spec.id!r} is already started", child_id=spec.id)
        return spec, ()

    def _spawn(self, spec: ChildSpec, system: ActorSystem) -> ActorRef:
        """``ActorSystem.spawn``: start an actor child registered in ``system``."""
        self._ensure_running()
        spec, _ = self._resolve((spec,))
        made = spec.start()
        if isinstance(made, Supervisor):
            raise TypeError("ActorSystem.spawn starts actors; use start_child for supervisors")
        handle = self._start_spec(spec, made, system=system)
        assert not isinstance(handle, Supervisor)
        return handle

    def start_child_nowait(self, *args: Any) -> ActorRef | Supervisor:
        """Start a child now, synchronously (its task is created before returning).

        A ``lazy`` actor child gets its task when its first message arrives.

        ``args`` is one ``ChildSpec``, or for ``simple_one_for_one`` the extra
        arguments for the template's ``start``. Works from synchronous code running
        inside the event loop. An async ``start`` is awaited in the child's task
        and must produce an ``Actor``.

        Raises:
            AlreadyStarted / AlreadyPresent: the id is taken.
            SupervisionError: the supervisor has stopped.
        """
        self._ensure_running()
        spec, _ = self._resolve(args)
        return self._start_spec(spec, spec.start())

    async def start_child(self, *args: Any) -> ActorRef | Supervisor:
        """Start a child (see ``start_child_nowait``); an async ``start`` is awaited first."""

        async def run() -> ActorRef | Supervisor:
            spec, _ = self._resolve(args)
            made = spec.start()
            if inspect.isawaitable(made):
                made = await made
            return self._start_spec(spec, made)

        return await self._call(run)

    async def stop(self, *, timeout: float | None = None) -> None:
        """Stop every child in reverse start order, then the supervisor itself.

        Each child gets its ``shutdown`` time. With ``timeout`` the whole stop is
        bounded: past it the supervisor's task is cancelled, which cancels every
        child at once. Does not raise ``Escalated`` (``wait`` does).
        """
        task = self._task
        if task is None:
            self._stopped = True
            self._inbox.close()
            return
        if task.done():
            return
        if asyncio.current_task() is task:
            raise SupervisionError("a supervisor cannot wait for its own stop; use its parent")
        if not self._inbox.closed:
            self._inbox.put_system(_StopRequest())
        if not await _end_task(task, self.clock, timeout, self.kill_grace):
            self._log.error("actor_kill_abandoned", child_id=self.name, grace_s=self.kill_grace)

    async def wait(self) -> None:
        """Return when the supervisor has exited (starting it if needed).

        Raises:
            Escalated: it exited because restart intensity was exceeded.
        """
        if self._task is None and not self._stopped:
            self._ensure_running()
        task = self._task
        if task is None:
            return
        await asyncio.wait({task})
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error

    def _find(self, target: Any) -> _Child:
        child = self._children.get(target) if isinstance(target, Hashable) else None
        if child is None:
            for candidate in self._children.values():
                if candidate.cell is not None and candidate.cell.ref is target:
                    return candidate
                if candidate.sup is target:
                    return candidate
            raise ChildNotFound(f"no child {target!r}", child_id=target)
        return child

    async def terminate_child(self, target: Any) -> None:
        """Stop a child (by id, ref or supervisor); its spec stays unless temporary.

        Raises:
            ChildNotFound: no such child.
        """

        async def run() -> None:
            child = self._find(target)
            await self._terminate(child, final=True, reason="shutdown")
            if child.spec.restart == "temporary":
                self._children.pop(child.spec.id, None)

        await self._call(run)

    async def restart_child(self, child_id: Hashable) -> ActorRef | Supervisor:
        """Start a stopped child again from its spec (a fresh address).

        Raises:
            ChildNotFound, ChildRunning, ChildRestarting, SimpleOneForOneError.
        """
        self._no_simple("restart_child")

        async def run() -> ActorRef | Supervisor:
            child = self._check_stopped(child_id)
            made = child.spec.start()
            if inspect.isawaitable(made):
                made = await made
            # Replacing the entry keeps the child's place in the start order.
            handle = self._start_spec(child.spec, made, system=child.registry)
            self._children[child_id].restarts = child.restarts
            return handle

        return await self._call(run)

    async def delete_child(self, child_id: Hashable) -> None:
        """Forget a stopped child's spec.

        Raises:
            ChildNotFound, ChildRunning, ChildRestarting, SimpleOneForOneError.
        """
        self._no_simple("delete_child")

        async def run() -> None:
            self._check_stopped(child_id)
            del self._children[child_id]

        await self._call(run)

    def _no_simple(self, operation: str) -> None:
        if self._template is not None:
            raise SimpleOneForOneError(f"{operation} is not supported by simple_one_for_one")

    def _check_stopped(self, child_id: Hashable) -> _Child:
        child = self._find(child_id)
        if child.state in ("running", "stopping"):
            raise ChildRunning(f"child {child_id!r} is running", child_id=child_id)
        if child.state == "restarting":
            raise ChildRestarting(f"child {child_id!r} is restarting", child_id=child_id)
        return child

    async def stop_cell(self, cell: ActorCell, timeout: float | None) -> None:
        """Terminate the actor child ``cell`` for good and forget its spec.

        The kernel's ``CellOwner`` port: ``ActorRef.stop`` calls it; use that.
        """

        async def run() -> None:
            for child in list(self._children.values()):
                if child.cell is cell:
                    await self._terminate(child, final=True, reason="stopped", timeout=timeout)
                    self._children.pop(child.spec.id, None)

        if self._stopped:
            # We are stopping (or stopped): every child is being stopped anyway.
            task = cell.task
            if task is not None and not task.done():
                await asyncio.wait({task})
            return
        await self._call(run)

    def task_replaced(self, cell: ActorCell) -> None:
        """Watch the new task of ``cell``, whose receive loop moved (``ActorContext.detach``).

        The kernel's ``CellOwner`` port; the exit of the task it left is stale
        from now on. Restart bookkeeping (backoff reset time) is kept.
        """
        for child in self._children.values():
            if child.cell is cell:
                if child.state in ("running", "stopping"):
                    state, started_at = child.state, child.started_at
                    self._watch(child)
                    child.state, child.started_at = state, started_at
                return

    def which_children(self) -> list[ChildInfo]:
        """One record per child, in start order."""
        return [
            ChildInfo(
                id=child.spec.id,
                ref=None if child.state == "stopped" else child.handle,
                state="running" if child.state == "stopping" else child.state,
                restarts=child.restarts,
                kind=child.kind,
            )
            for child in self._children.values()
        ]

    def count_children(self) -> ChildCounts:
        """How many specs, running children, supervisors and workers."""
        children = list(self._children.values())
        return ChildCounts(
            specs=len(children),
            active=sum(1 for c in children if c.state in ("running", "stopping")),
            supervisors=sum(1 for c in children if c.kind == "supervisor"),
            workers=sum(1 for c in children if c.kind == "worker"),
        )
