"""The supervisor's engine: its task, its inbox, restarts, escalation, stopping.

Every decision is made in the supervisor's own task, one event at a time:
child exits (posted by task done-callbacks, the equivalent of OTP monitors),
API calls and backoff timers all arrive in its inbox (a ``Mailbox``), so a
``terminate_child`` can never race a restart. Only ``start_child_nowait`` acts
directly, because ``ActorSystem.spawn`` must work from synchronous code; it
changes nothing the loop holds across an ``await``. The public API is in
``supervisor.py``. This module stays whole (~490 lines): the loop and the
restart and stop steps it awaits share state best audited in one place.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import random
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from penguiflow._logging import get_logger
from penguiflow._time import SYSTEM_CLOCK, Clock
from penguiflow.actors.actor import Actor
from penguiflow.actors.cell import ActorCell
from penguiflow.actors.mailbox import Mailbox
from penguiflow.errors import Escalated, SupervisionError
from penguiflow.supervision._child import (
    _Call,
    _Child,
    _end_task,
    _Exit,
    _RestartDue,
    _retrieve,
    _StopRequest,
    _wait_tasks,
)
from penguiflow.supervision.specs import ChildSpec
from penguiflow.supervision.strategy import (
    STRATEGIES,
    RestartIntensity,
    Strategy,
    plan_restart,
    should_restart,
)

if TYPE_CHECKING:
    from penguiflow.actors.ports import MailboxLike
    from penguiflow.actors.ref import ActorRef
    from penguiflow.supervision.supervisor import Supervisor
    from penguiflow.supervision.system import ActorSystem

__all__: list[str] = []

LOGGER_NAME = "penguiflow.supervision"
_T = TypeVar("_T")


class _SupervisorCore:
    """Internal base of ``Supervisor`` (see the module docstring)."""

    def __init__(
        self,
        strategy: Strategy = "one_for_one",
        intensity: int = 3,
        period: float = 5.0,
        *,
        name: str = "supervisor",
        clock: Clock | None = None,
        children: Iterable[ChildSpec] = (),
        kill_grace: float = 1.0,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, not {strategy!r}")
        self.strategy: Strategy = strategy
        self.intensity = intensity
        self.period = period
        self.name = name
        self.kill_grace = kill_grace
        self._clock = clock
        self._limit = RestartIntensity(intensity, period)
        self._initial = list(children)
        self._template: ChildSpec | None = None
        if strategy == "simple_one_for_one":
            if len(self._initial) != 1:
                raise ValueError("simple_one_for_one needs exactly one child spec (the template)")
            self._template, self._initial = self._initial[0], []
        self._children: dict[Hashable, _Child] = {}  # insertion order = start order
        self._inbox = Mailbox(0)
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._escalation: Escalated | None = None
        self._timers: set[asyncio.Task[None]] = set()
        self._abandoned: set[asyncio.Task[Any]] = set()
        self._serial = itertools.count(1)
        self._parent: _SupervisorCore | None = None
        self._system: ActorSystem | None = None
        self._log = get_logger(LOGGER_NAME).bind(supervisor=name)

    def __repr__(self) -> str:
        return f"<Supervisor {self.name!r} {self.strategy} children={len(self._children)}>"

    @property
    def clock(self) -> Clock:
        """The clock used for timeouts, backoff and restart intensity."""
        return self._clock or SYSTEM_CLOCK

    @property
    def running(self) -> bool:
        """True while the supervisor's task runs."""
        return self._task is not None and not self._task.done()

    def _ensure_running(self) -> None:
        if self._stopped:
            raise SupervisionError(f"supervisor {self.name!r} has stopped")
        if self._task is not None:
            return
        self._task = asyncio.get_running_loop().create_task(
            self._main(), name=f"supervisor {self.name}"
        )
        self._task.add_done_callback(_retrieve)
        self._log.info("supervisor_started", strategy=self.strategy)
        for spec in self._initial:
            try:
                self._start_spec(spec, spec.start())
            except BaseException:
                # OTP: a child failing to start at init fails the supervisor.
                self._stopped = True
                self._task.cancel()
                raise

    def _adopt(self, parent: _SupervisorCore) -> None:
        """Become ``parent``'s child: inherit its system and clock, start running."""
        if self._parent is not None and self._parent is not parent:
            raise SupervisionError(f"supervisor {self.name!r} already has a parent")
        self._parent = parent
        if self._system is None:
            self._system = parent._system
        if self._clock is None:
            self._clock = parent._clock
        self._ensure_running()

    def _start_spec(
        self, spec: ChildSpec, made: Any, *, system: ActorSystem | None = None
    ) -> ActorRef | Supervisor:
        """Add a child for ``spec`` around what its ``start`` produced, and run it."""
        if isinstance(made, _SupervisorCore):
            sup = cast("Supervisor", made)  # every _SupervisorCore is a Supervisor
            child = _Child(spec, "supervisor")
            child.sup = sup
            sup._adopt(self)
            self._children[spec.id] = child
            self._watch(child)
            return sup
        if not (isinstance(made, Actor) or inspect.isawaitable(made)):
            raise TypeError(f"start of child {spec.id!r} returned {made!r}")
        owner = system or self._system
        mailbox: MailboxLike | None = spec.mailbox
        if mailbox is None:
            mailbox = Mailbox(spec.capacity, lanes=spec.lanes)
        worker_start: Any = spec.start  # a worker's start produces actors
        cell = ActorCell(
            str(spec.id),
            worker_start,
            mailbox=mailbox,
            owns_mailbox=spec.mailbox is None,
            supervisor=cast("Supervisor", self),  # every _SupervisorCore is a Supervisor
            system=owner,
            clock=self.clock,
        )
        if system is not None:
            system._register(cell)
        child = _Child(spec, "worker")
        child.cell = cell
        child.registry = system
        self._children[spec.id] = child
        if spec.lazy:
            # The supervisor hears of the task when the first message creates it.
            cell.launch_on_mail(made, functools.partial(self._watch, child))
        else:
            cell.launch(made)
            self._watch(child)
        return cell.ref

    def _watch(self, child: _Child) -> None:
        """Hear about the end of the child's current task (like an OTP monitor)."""
        task = child.task
        assert task is not None
        child.gen += 1
        child.state = "running"
        child.started_at = self.clock.monotonic()
        gen, child_id, inbox = child.gen, child.spec.id, self._inbox

        def exited(done: asyncio.Task[Any]) -> None:
            _retrieve(done)
            if not inbox.closed:
                inbox.put_system(_Exit(child_id, gen, done))

        task.add_done_callback(exited)

    async def _main(self) -> None:
        current: _Call | None = None
        try:
            while self._escalation is None:
                event = (await self._inbox.get()).item
                kind = type(event)
                if kind is _StopRequest:
                    break
                if kind is _Exit:
                    await self._on_exit(event)
                elif kind is _RestartDue:
                    await self._restart(event.ids, event.reason)
                elif kind is _Call:
                    current = event
                    await self._run_call(event)
                    current = None
            # From here on no child may be added: it would escape the stop below.
            self._stopped = True
            await self._stop_children("shutdown" if self._escalation is None else "escalated")
        except asyncio.CancelledError:
            self._stopped = True
            self._kill_children()
            raise
        finally:
            self._close(current)
        if self._escalation is not None:
            raise self._escalation

    async def _run_call(self, call: _Call) -> None:
        if call.future.done():
            return  # the caller gave up before we got to it
        try:
            result = await call.fn()
        except Exception as exc:
            if not call.future.done():
                call.future.set_exception(exc)
        else:
            if not call.future.done():
                call.future.set_result(result)

    async def _call(self, fn: Callable[[], Awaitable[_T]]) -> _T:
        """Run ``fn`` in the supervisor's task, after the events queued before it."""
        self._ensure_running()
        if asyncio.current_task() is self._task:
            return await fn()
        future: asyncio.Future[_T] = asyncio.get_running_loop().create_future()
        self._inbox.put_system(_Call(fn, future))
        return await future

    def _close(self, current: _Call | None) -> None:
        self._stopped = True
        pending = [d.item for d in self._inbox.close()]
        if current is not None:
            pending.append(current)
        for event in pending:
            if type(event) is _Call and not event.future.done():
                event.future.set_exception(
                    SupervisionError(f"supervisor {self.name!r} stopped before the call ran")
                )
        for timer in self._timers:
            timer.cancel()
        self._log.info("supervisor_stopped", escalated=self._escalation is not None)

    async def _on_exit(self, event: _Exit) -> None:
        child = self._children.get(event.id)
        if child is None or child.gen != event.gen or child.state != "running":
            return  # stale, or an exit we caused ourselves (terminate, restart)
        task = event.task
        error: BaseException | None
        if task.cancelled():
            error = asyncio.CancelledError("child task was cancelled")
        else:
            error = task.exception()
        normal = error is None
        reason: object = task.result() if normal else error
        if child.cell is not None and child.cell.stop_final:
            # The actor stopped itself for good (its own ref.stop()).
            self._finish(child, reason, delete=True)
            return
        if normal:
            self._log.info("child_exited", child_id=child.spec.id, reason=_short(reason))
        else:
            self._log.error("child_crashed", child_id=child.spec.id, exc_info=error)
        if not should_restart(child.spec.restart, normal=normal):
            self._finish(child, reason, delete=child.spec.restart == "temporary")
            return
        if self._limit.record(self.clock.monotonic()):
            self._escalate(child, error)
            return
        active = [
            (c.spec.id, c.spec.restart) for c in self._children.values() if c.state != "stopped"
        ]
        plan = plan_restart(self.strategy, active, child.spec.id)
        for sibling_id in plan.terminate:
            await self._terminate(
                self._children[sibling_id], final=sibling_id in plan.drop, reason="sibling_restart"
            )
        for sibling_id in plan.drop:
            self._children.pop(sibling_id, None)
        for child_id in plan.restart:
            self._children[child_id].state = "restarting"
        delay = self._backoff_delay(child)
        if delay > 0:
            self._log.info("child_restart_scheduled", child_id=child.spec.id, delay_s=delay)
            self._schedule(plan.restart, reason, delay)
        else:
            await self._restart(plan.restart, reason)

    def _escalate(self, child: _Child, error: BaseException | None) -> None:
        self._escalation = Escalated(
            f"supervisor {self.name!r}: more than {self.intensity} restarts in {self.period}s",
            cause=error,
            child_id=child.spec.id,
        )
        self._escalation.__cause__ = error
        self._log.error(
            "supervisor_escalated",
            child_id=child.spec.id,
            intensity=self.intensity,
            period=self.period,
            cause=_short(error),
        )

    def _backoff_delay(self, child: _Child) -> float:
        backoff = child.spec.backoff
        if backoff is None:
            return 0.0
        if self.clock.monotonic() - child.started_at >= backoff.reset_after:
            child.attempt = 0
        delay = backoff.delay(child.attempt, random.random())
        child.attempt += 1
        return delay

    def _schedule(self, ids: tuple[Hashable, ...], reason: object, delay: float) -> None:
        async def timer() -> None:
            await self.clock.sleep(delay)
            if not self._inbox.closed:
                self._inbox.put_system(_RestartDue(ids, reason))

        task = asyncio.get_running_loop().create_task(timer(), name=f"{self.name} backoff")
        self._timers.add(task)
        task.add_done_callback(self._timers.discard)

    async def _restart(self, ids: tuple[Hashable, ...], reason: object) -> None:
        """Start the listed children again, in start order."""
        for index, child_id in enumerate(ids):
            child = self._children.get(child_id)
            if child is None or child.state != "restarting":
                continue  # terminated or deleted meanwhile
            child.restarts += 1
            if child.cell is not None:
                cell = child.cell
                cell.clear_stop_requests()
                cell.launch(previous=cell.actor, reason=reason)
                self._watch(child)
                continue
            try:
                made = child.spec.start()
                if inspect.isawaitable(made):
                    made = await made
                if not isinstance(made, _SupervisorCore) or made._stopped or made._task is not None:
                    raise TypeError(f"start of {child_id!r} must return a new Supervisor")
            except Exception as exc:
                # A failed restart is retried through the inbox and counts towards
                # intensity, so an unstartable child eventually escalates.
                self._log.error("child_start_failed", child_id=child_id, exc_info=exc)
                if self._limit.record(self.clock.monotonic()):
                    self._escalate(child, exc)
                    return
                self._inbox.put_self(_RestartDue(ids[index:], reason))
                return
            child.sup = made
            made._adopt(self)
            self._watch(child)

    async def _terminate(
        self, child: _Child, *, final: bool, reason: object, timeout: float | None = None
    ) -> None:
        """Stop one child: request, wait ``shutdown``, cancel, wait, else abandon."""
        if child.state == "stopped":
            return
        child.state = "stopping"
        shutdown = child.spec.shutdown if timeout is None else timeout
        task = child.task
        if child.cell is not None:
            if task is not None and not task.done():
                child.cell.request_stop(reason, final=False)
                if not await _end_task(task, self.clock, shutdown, self.kill_grace):
                    self._abandon(child, task)
            child.cell.clear_stop_requests()
        elif child.sup is not None:
            await child.sup.stop(timeout=shutdown)
        if final:
            self._finish(child, reason, delete=False)
        else:
            child.state = "restarting"

    def _abandon(self, child: _Child, task: asyncio.Task[Any]) -> None:
        self._log.error("actor_kill_abandoned", child_id=child.spec.id, grace_s=self.kill_grace)
        self._abandoned.add(task)  # keep a reference; it may still end some day
        task.add_done_callback(self._abandoned.discard)

    def _finish(self, child: _Child, reason: object, *, delete: bool) -> None:
        child.state = "stopped"
        if child.cell is not None:
            _finalize(child.cell, child.registry, reason)
        if delete or self._template is not None:
            self._children.pop(child.spec.id, None)

    async def _stop_children(self, reason: object) -> None:
        children = [c for c in self._children.values() if c.state != "stopped"]
        if self._template is not None:
            # simple_one_for_one: no order among dynamic children; stop in parallel.
            await asyncio.gather(*(self._terminate(c, final=True, reason=reason) for c in children))
            return
        order = children[::-1]
        index = 0
        while index < len(order):
            if not _killed_at_once(order[index]):
                await self._terminate(order[index], final=True, reason=reason)
                index += 1
                continue
            end = index + 1
            while end < len(order) and _killed_at_once(order[end]):
                end += 1
            await self._kill_together(order[index:end], reason)
            index = end

    async def _kill_together(self, children: list[_Child], reason: object) -> None:
        """Stop adjacent ``shutdown=0`` workers as one: cancel each, then wait for all.

        ``_terminate`` one by one would cancel one, wait a loop turn for it, then
        the next (a 100-node flow: 100 turns). A zero shutdown lets no handler
        finish, so nothing is gained by waiting in between: the cancellations
        are still made (and delivered) in reverse start order, and every child
        is finished in that order once all have ended.
        """
        tasks = []
        for child in children:
            child.state = "stopping"
            task = child.task
            if task is not None and not task.done():
                task.cancel()
                tasks.append(task)
        if tasks:
            await _wait_tasks(tasks, self.clock, self.kill_grace)
        for child in children:
            cell = child.cell
            assert cell is not None
            task = child.task
            if task is not None and not task.done():
                self._abandon(child, task)
            cell.clear_stop_requests()
            self._finish(child, reason, delete=False)

    def _kill_children(self) -> None:
        """Our own task is being cancelled: cancel every child without waiting."""
        for child in self._children.values():
            task = child.task
            if child.cell is not None:
                cell = child.cell
                if task is not None and not task.done():
                    task.cancel()
                    task.add_done_callback(
                        functools.partial(_finalize_killed, cell, child.registry)
                    )
                else:
                    _finalize(cell, child.registry, "killed")
            elif task is not None:
                task.cancel()
            child.state = "stopped"


def _killed_at_once(child: _Child) -> bool:
    """A worker whose stop is a plain cancel (``shutdown=0``): see ``_kill_together``."""
    return child.cell is not None and child.spec.shutdown == 0


def _finalize(cell: ActorCell, registry: ActorSystem | None, reason: object) -> None:
    """End the cell's address for good and free its name in the system."""
    cell.finalize(reason)
    if registry is not None:
        registry._unregister(cell)


def _finalize_killed(
    cell: ActorCell, registry: ActorSystem | None, _task: asyncio.Task[Any]
) -> None:
    _finalize(cell, registry, "killed")


def _short(reason: object) -> object:
    return reason if isinstance(reason, str | int | float | type(None)) else repr(reason)
