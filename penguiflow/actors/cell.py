"""The address of an actor: its mailbox, its current incarnation and the receive loop.

The cell, not the actor instance, owns the mailbox. A restart replaces the
instance and the task but keeps the cell, so refs stay valid and queued
messages wait for the next incarnation. The supervisor owns the cell's tasks
(it launches each incarnation and hears how it ended); the cell never decides
about restarts. A lazy child's cell starts dormant (``launch_on_mail``): no
task until its mailbox hands it the first message.

A handler may ``detach``: the receive loop goes on in a new task with a
successor instance while the handler finishes in the task it runs in (the
cell owns such tasks: ``finalize`` cancels them). The successor's loop task
becomes the incarnation's task, watched by the owner (``task_replaced``).

This module stays whole (~560 lines): the receive loop and the lifecycle steps
around it (launch, dormancy, interrupt, detach, crash, finalize) share the
cell's in-flight state, and each step must leave it as the others expect.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from penguiflow._logging import get_logger, is_debug_enabled
from penguiflow._time import SYSTEM_CLOCK, Clock
from penguiflow.actors.actor import Actor, ActorContext
from penguiflow.actors.envelope import DeadLetter, _Ask, _Interrupt, _Stop
from penguiflow.actors.mailbox import _NOTHING, SYSTEM_LANE, absorb_rearmed_cancel
from penguiflow.actors.ref import ActorRef
from penguiflow.errors import ActorCrashed, ActorInterrupted, ActorStopped

if TYPE_CHECKING:
    from penguiflow.actors.mailbox import ItemWatch
    from penguiflow.actors.ports import ActorHost, CellOwner, MailboxLike
    from penguiflow.actors.threads import ThreadIngress

__all__ = ["LOGGER_NAME", "ActorCell", "ActorFactory"]

LOGGER_NAME = "penguiflow.actors"

ActorFactory = Callable[[], "Actor | Awaitable[Actor]"]

_Dormant = tuple[
    "ItemWatch", "Actor | Awaitable[Actor] | None", Callable[[], object], contextvars.Context
]

# Lifecycle events (started, stopped) are INFO: tested against the stdlib logger
# first, so a cell that never logs never binds its structlog logger.
_STDLIB_LOG = logging.getLogger(LOGGER_NAME)


class ActorCell:
    """Internal: one actor address (see the module docstring)."""

    __slots__ = (
        "_detached",
        "_dormant",
        "_handed",
        "_item",
        "_log_bound",
        "_pending_interrupt",
        "_redelivery",
        "_settled",
        "actor",
        "alive",
        "busy",
        "clock",
        "current",
        "current_lane",
        "incarnation",
        "loop",
        "mailbox",
        "name",
        "owns_mailbox",
        "ref",
        "start",
        "stop_final",
        "supervisor",
        "system",
        "task",
        "threads",
    )

    def __init__(
        self,
        name: str,
        start: ActorFactory,
        *,
        mailbox: MailboxLike,
        owns_mailbox: bool,
        supervisor: CellOwner,
        system: ActorHost | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.name = name
        self.start = start
        self.mailbox = mailbox
        self.owns_mailbox = owns_mailbox
        self.system = system
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.supervisor = supervisor  # owns this cell's tasks and stops it for good
        self.loop = asyncio.get_running_loop()
        self.ref = ActorRef(self)
        self.actor: Actor | None = None
        self.task: asyncio.Task[object] | None = None
        self.incarnation = 0
        self._settled = False  # the message in hand is done for good (``handled``)
        self.alive = True
        self.busy = False
        self.current: Any = None
        self.current_lane: int | None = None
        self.stop_final = False
        self.threads: ThreadIngress | None = None
        self._item: Any = None  # the mailbox item in flight (an _Ask or the message)
        self._pending_interrupt: _Interrupt | None = None
        # (item, crashes so far) of the message redelivered after a crash.
        self._redelivery: tuple[Any, int] | None = None
        # (watch, first, on_launch, context) while the first incarnation waits for mail.
        self._dormant: _Dormant | None = None
        # The watch holding the first message of a woken dormant actor (in
        # transit, as for an idle actor) until the new task takes it.
        self._handed: ItemWatch | None = None
        self._log_bound: Any = None
        # Tasks finishing a detached handler (made on the first detach).
        self._detached: set[asyncio.Task[object]] | None = None

    @property
    def _log(self) -> Any:
        # Bound on first use: most cells of a short-lived flow never log above
        # the level the application lets through, and a bound structlog logger
        # costs ~40 µs and ~250 bytes.
        log = self._log_bound
        if log is None:
            log = self._log_bound = get_logger(LOGGER_NAME).bind(actor=self.name)
        return log

    def __repr__(self) -> str:
        return f"<ActorCell {self.name!r} incarnation={self.incarnation} alive={self.alive}>"

    # -- lifecycle, driven by the supervisor ----------------------------------------
    def launch(
        self,
        first: Actor | Awaitable[Actor] | None = None,
        *,
        previous: Actor | None = None,
        reason: object = None,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[object]:
        """Start the next incarnation in a new task (created now) and return it.

        ``context``: the contextvars the task runs in (default: a copy of the
        caller's, as for any task).
        """
        self._disarm()
        self.incarnation += 1
        self.stop_final = False
        self._pending_interrupt = None  # one that died with the last incarnation
        task = self.loop.create_task(
            self._run(first, previous, reason),
            name=f"actor {self.name}#{self.incarnation}",
            context=context,
        )
        self.task = task
        return task

    def launch_on_mail(
        self, first: Actor | Awaitable[Actor] | None, on_launch: Callable[[], object]
    ) -> None:
        """Start the first incarnation when the first message arrives, then ``on_launch()``.

        Until then the actor is dormant: no task, nothing but the cell. A
        message (any lane), ``close`` or ``fail_getters`` on the mailbox wakes
        it; so does ``launch``. A mailbox without ``call_on_item`` (or one that
        already holds mail) starts it now.
        """
        call_on_item = getattr(self.mailbox, "call_on_item", None)
        watch = call_on_item(self._wake) if call_on_item is not None else None
        if watch is None:
            self.launch(first)
            on_launch()
            return
        # The task runs in the spawner's context, as an eager one would: not in
        # that of whoever sends the first message (its tracing span, say).
        self._dormant = (watch, first, on_launch, contextvars.copy_context())

    @property
    def dormant(self) -> bool:
        """True while the first incarnation waits for mail (``launch_on_mail``)."""
        return self._dormant is not None

    def _wake(self) -> None:
        dormant = self._dormant
        if dormant is None:
            return
        self._dormant = None
        watch, first, on_launch, context = dormant
        watch.cancel()  # still armed if woken by wake(): withdraw it (else a no-op)
        self.launch(first, context=context)
        if watch.delivery is not None:
            self._handed = watch
        on_launch()

    def _disarm(self) -> None:
        """Withdraw a dormant watch, or give back a first message not yet taken."""
        dormant = self._dormant
        if dormant is not None:
            self._dormant = None
            dormant[0].cancel()
        handed = self._handed
        if handed is not None:
            # The task ended (or is replaced) before it took its first message.
            self._handed = None
            handed.give_back()

    def request_stop(self, reason: object, *, final: bool) -> None:
        """Ask the receive loop to stop after the message in hand (system lane)."""
        if not self.mailbox.closed:
            self.mailbox.put_system(_Stop(reason, final=final))

    def clear_stop_requests(self) -> None:
        """Drop stop requests the last incarnation did not get to (before a restart)."""
        self.mailbox.purge(_is_stop, lanes=(SYSTEM_LANE,))

    def interrupt(self, reason: object, when: Callable[[Any], bool] | None) -> bool:
        """Cancel the handler in progress if ``when(current)`` holds (see ActorRef)."""
        task = self.task
        if not self.busy or task is None or task.done() or self._pending_interrupt is not None:
            return False
        # From another task the actor is suspended inside the handler, so the
        # cancellation lands there. From the actor's own task it could land after
        # the handler returned, on the next message: refuse instead.
        if task is _current_task():
            return False
        if when is not None and not when(self.current):
            return False
        self._pending_interrupt = _Interrupt(reason, self.current)
        task.cancel()
        return True

    def detach(self, successor: Actor) -> bool:
        """Let the handler in progress finish in its task; ``successor`` takes the loop.

        Called from the handler, in the incarnation's task. A new task runs the
        receive loop with ``successor`` (its ``on_start`` first) and becomes the
        incarnation's task; the owner is told (``CellOwner.task_replaced``). The
        calling task then only finishes the message in hand: the reply is set,
        ``on_stop`` of the instance that detached runs, and the task ends. If the
        handler crashes there, the message is settled as by a crash (an ``ask``
        fails with ``ActorCrashed``; a ``tell`` is redelivered to the loop when
        the actor opts into redelivery, else dead-lettered) without a restart.
        ``finalize`` cancels detached handlers still running.

        Returns False (nothing happens) outside the incarnation's task, outside
        a handler, or with an interrupt pending.
        """
        task = _current_task()
        if (
            task is None
            or task is not self.task
            or not self.busy
            or self._pending_interrupt is not None
            or not self.alive
        ):
            return False
        detached = self._detached
        if detached is None:
            detached = self._detached = set()
        detached.add(task)
        task.add_done_callback(detached.discard)
        # The message in hand now belongs to the detached task alone.
        if self._redelivery is not None and self._redelivery[0] is self._item:
            self._redelivery = None
        self._item = None
        self.busy = False
        self.current = None
        self.current_lane = None
        self.actor = successor
        self.task = self.loop.create_task(
            self._run(successor, None, None, resumed=True),
            name=f"actor {self.name}#{self.incarnation}",
        )
        self.supervisor.task_replaced(self)
        return True

    def finalize(self, reason: object) -> None:
        """Mark the address dead and dead-letter what is left (the task has ended)."""
        if not self.alive:
            return
        if self._detached:
            for handler in tuple(self._detached):
                handler.cancel()
        self._disarm()  # before close(): a dormant actor is not woken to be stopped
        self.alive = False
        self.busy = False
        self.current = None
        self._redelivery = None
        # Thread bridge first: its parked item is reported once, by whichever holds it.
        leftovers = self.threads.close() if self.threads is not None else []
        if self.owns_mailbox:
            leftovers.extend(d.item for d in self.mailbox.close())
        else:
            # Someone else owns the mailbox: take out only what the kernel put in.
            self.clear_stop_requests()
            leftovers.extend(d.item for d in self.mailbox.purge(_is_ask))
        for item in leftovers:
            self.dead_letter(item, "stopped")
        if _STDLIB_LOG.isEnabledFor(logging.INFO):
            self._log.info("actor_stopped", reason=_describe(reason), incarnation=self.incarnation)

    def dead_letter(self, item: Any, reason: str) -> None:
        """Report an undeliverable item; a pending ``ask`` fails with ActorStopped."""
        if type(item) is _Stop:
            return
        message = item
        if type(item) is _Ask:
            message = item.msg
            if not item.reply.done():
                item.reply.set_exception(
                    ActorStopped(f"actor {self.name!r} stopped before replying", actor=self.name)
                )
        self._log.warning("dead_letter", reason=reason, message_type=type(message).__name__)
        if self.system is not None:
            self.system.dead_letter(DeadLetter(self.name, message, reason))

    # -- the incarnation's task ------------------------------------------------------
    async def _run(
        self,
        first: Actor | Awaitable[Actor] | None,
        previous: Actor | None,
        reason: object,
        *,
        resumed: bool = False,
    ) -> object:
        task = asyncio.current_task()
        assert task is not None
        if previous is not None:
            await previous.on_restart(reason)
            self.actor = None  # on_restart ran; a failing factory must not rerun it
        # This frame lives as long as the incarnation: holding the old instance or
        # the crash (its traceback holds the old incarnation's frames, and so on
        # back) would keep every earlier incarnation and its messages alive.
        previous = reason = None
        made: Any = self.start() if first is None else first
        if inspect.isawaitable(made):
            made = await made
        if not isinstance(made, Actor):
            raise TypeError(f"the factory of actor {self.name!r} returned {made!r}, not an Actor")
        instance = self.actor = made
        ctx = ActorContext(self)
        await instance.on_start(ctx)
        if not resumed and _STDLIB_LOG.isEnabledFor(logging.INFO):
            ctx.log.info("actor_restarted" if self.incarnation > 1 else "actor_started")
        # Cached once per incarnation: a per-message DEBUG event costs one bool test.
        debug = is_debug_enabled(LOGGER_NAME)
        mailbox = self.mailbox
        next_now = mailbox.poll
        next_item = mailbox.next
        receive = instance.receive
        # A woken dormant actor's first message was handed over while it slept.
        handed, self._handed = self._handed, None
        item = _NOTHING if handed is None else handed.accept()
        handed = None
        while True:
            # The whole iteration sits in the try, so an interrupt that lands after
            # the handler finished (e.g. while waiting in get) is still absorbed.
            try:
                if item is _NOTHING:
                    item = next_now()  # no coroutine while messages are queued
                    if item is _NOTHING:
                        if self.busy:
                            # Idle from here: the last message is let go (an idle
                            # actor must not pin it, nor all it references).
                            # Between queued messages the next one overwrites it.
                            self.busy = False
                            self.current = None
                            self.current_lane = None
                            self._item = None
                        msg = result = None
                        item = await next_item()
                kind = type(item)
                if kind is _Stop:
                    self.stop_final = item.final
                    stop_reason = item.reason
                    break
                reply: asyncio.Future[Any] | None
                if kind is _Ask:
                    reply = item.reply
                    if reply.done():
                        item = _NOTHING
                        continue  # the caller gave up (timeout or cancel) before delivery
                    msg = item.msg
                else:
                    reply = None
                    msg = item
                lane = mailbox.last_lane
                self._item = item
                self._settled = False
                self.current = msg
                self.current_lane = lane
                self.busy = True
                if debug:
                    ctx.log.debug("actor_message", lane=lane, message_type=kind.__name__)
                try:
                    result = await receive(msg, ctx)
                except asyncio.CancelledError:
                    if self.task is not task:
                        await self._detached_cancelled(instance, reply)
                    raise
                except BaseException as exc:
                    # A non-Cancelled BaseException escaping the handler is a crash
                    # too: the in-flight message is settled like any other crash's.
                    if self.task is not task:
                        await self._detached_crashed(instance, item, reply, exc, lane)
                        return None
                    self._crashed(item, reply, exc, lane)
                    raise
                if self.task is not task:
                    # The handler detached (``detach``): the loop runs elsewhere.
                    if reply is not None and not reply.done():
                        reply.set_result(result)
                    await instance.on_stop("detached")
                    return None
                # Still busy with this message until the next one or the wait
                # for one (nothing runs in between): the top of the loop settles it.
                if self._redelivery is not None and self._redelivery[0] is item:
                    self._redelivery = None
                if reply is not None and not reply.done():
                    reply.set_result(result)
                if self._pending_interrupt is not None:
                    # The handler returned although it was interrupted: it swallowed
                    # the CancelledError, or the cancellation is still armed (a put
                    # that completed first re-arms it: Mailbox.put). Absorb it here,
                    # where it belongs to this message, never to the next one.
                    self._pending_interrupt = None
                    self._item = None  # handled: a stop from here redelivers nothing
                    item = _NOTHING
                    task.uncancel()
                    await absorb_rearmed_cancel()  # a stop or shutdown cancel still wins
                item = _NOTHING
            except asyncio.CancelledError:
                item = _NOTHING
                if self.task is not task:
                    raise  # a detached handler cancelled (settled above)
                interrupt = self._absorb_interrupt(task, ctx)
                if interrupt is None:
                    self._requeue_in_flight()
                    raise
                await instance.on_interrupt(interrupt.message, interrupt.reason, ctx)
        await instance.on_stop(stop_reason)
        return stop_reason

    async def _detached_cancelled(self, instance: Actor, reply: asyncio.Future[Any] | None) -> None:
        """A detached handler was cancelled: its message is dropped, its instance stopped."""
        if reply is not None and not reply.done():
            reply.set_exception(
                ActorStopped(f"actor {self.name!r} stopped before replying", actor=self.name)
            )
        await instance.on_stop("detached handler cancelled")

    async def _detached_crashed(
        self,
        instance: Actor,
        item: Any,
        reply: asyncio.Future[Any] | None,
        exc: BaseException,
        lane: int,
    ) -> None:
        """A detached handler crashed: settle its message as a crash would, no restart."""
        self._log.error("detached_handler_crashed", message_type=type(item).__name__)
        if reply is not None:
            if not reply.done():
                error = ActorCrashed(
                    f"actor {self.name!r} crashed while handling an ask", actor=self.name
                )
                error.__cause__ = exc
                reply.set_exception(error)
        elif instance.poison_limit > 1 and self.alive and not self.mailbox.closed:
            self.mailbox.requeue_front(item, lane)
        else:
            self.dead_letter(item, "crashed")
        await instance.on_stop(exc)

    def _absorb_interrupt(self, task: asyncio.Task[object], ctx: ActorContext) -> _Interrupt | None:
        """Return the interrupt a CancelledError came from, or None for a real cancel."""
        interrupt = self._pending_interrupt
        if interrupt is None:
            return None
        self._pending_interrupt = None
        if task.uncancel() > 0:
            return None  # a shutdown cancel arrived too: that one wins
        item = self._item
        if type(item) is _Ask and not item.reply.done():
            item.reply.set_exception(
                ActorInterrupted(
                    f"actor {self.name!r} was interrupted", actor=self.name, reason=interrupt.reason
                )
            )
        self._item = None
        self.busy = False
        self.current = None
        self.current_lane = None
        ctx.log.info("actor_interrupted", reason=_describe(interrupt.reason))
        return interrupt

    def handled(self) -> None:
        """The message in hand is done for good: no cancel or crash puts it back."""
        self._settled = True
        if self._redelivery is not None and self._redelivery[0] is self._item:
            self._redelivery = None

    def _requeue_in_flight(self) -> None:
        """Put the message in hand back in front: the task is being cancelled."""
        item = self._item
        if item is None:
            return
        lane = self.current_lane if self.current_lane is not None else 0
        self._item = None
        self.busy = False
        self.current = None
        self.current_lane = None
        if self._settled:  # handled for good (``handled``): nothing to redo
            self._settled = False
            if type(item) is _Ask and not item.reply.done():
                item.reply.set_exception(
                    ActorStopped(f"actor {self.name!r} stopped before replying", actor=self.name)
                )
            return
        # Not counted towards the poison limit: the message did not cause this.
        self.mailbox.requeue_front(item, lane)

    def _crashed(
        self, item: Any, reply: asyncio.Future[Any] | None, exc: BaseException, lane: int
    ) -> None:
        """Settle the in-flight message of a crashing incarnation."""
        self._item = None
        self.busy = False
        self.current = None
        self.current_lane = None
        if reply is not None:
            if not reply.done():
                error = ActorCrashed(
                    f"actor {self.name!r} crashed while handling an ask", actor=self.name
                )
                error.__cause__ = exc
                reply.set_exception(error)
            return
        limit = self.actor.poison_limit if self.actor is not None else Actor.poison_limit
        if self._settled:  # handled for good before the crash: redoing it is wrong
            self._settled = False
            self._redelivery = None
            self._log.error("message_crashed_actor", message_type=type(item).__name__)
            return
        if limit <= 1:
            # The default, as in Erlang/OTP and Akka typed: the message dies with the
            # incarnation it crashed, so one bad message costs one restart.
            self._redelivery = None
            self._log.error("message_crashed_actor", message_type=type(item).__name__)
            self.dead_letter(item, "crashed")
            return
        previous = self._redelivery
        crashes = 1 + (previous[1] if previous is not None and previous[0] is item else 0)
        if crashes >= limit:
            self._redelivery = None
            self._log.error("poison_message", crashes=crashes, message_type=type(item).__name__)
            self.dead_letter(item, "poison")
        else:
            self._redelivery = (item, crashes)
            self.mailbox.requeue_front(item, lane)


def _current_task() -> asyncio.Task[Any] | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop: a plain thread
        return None


def _is_stop(item: Any) -> bool:
    return type(item) is _Stop


def _is_ask(item: Any) -> bool:
    return type(item) is _Ask


def _describe(reason: object) -> object:
    """Log-friendly reason: strings as-is, exceptions and other objects by repr."""
    return reason if isinstance(reason, str | int | float | type(None)) else repr(reason)
