"""The handle everyone else holds: send, ask, interrupt and stop an actor."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from penguiflow.actors.envelope import _Ask
from penguiflow.errors import ActorStopped, MailboxClosed

if TYPE_CHECKING:
    from penguiflow.actors.cell import ActorCell
    from penguiflow.actors.ports import MailboxLike

__all__ = ["ActorRef"]


class ActorRef:
    """A stable address of an actor: valid across restarts, the mailbox included.

    Sending to a stopped actor raises ``ActorStopped`` and reports a dead letter;
    nothing is dropped silently.

    .. versionadded:: 3.0
    """

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell

    def __repr__(self) -> str:
        cell = self._cell
        state = "alive" if cell.alive else "stopped"
        return f"<ActorRef {cell.name!r} {state} incarnation={cell.incarnation}>"

    # -- inspection -----------------------------------------------------------------
    @property
    def name(self) -> str:
        """The actor's name (unique within its system)."""
        return self._cell.name

    @property
    def mailbox(self) -> MailboxLike:
        """The mailbox; it belongs to the address and survives restarts."""
        return self._cell.mailbox

    @property
    def alive(self) -> bool:
        """False once the actor stopped for good (restarts keep it True)."""
        return self._cell.alive

    @property
    def incarnation(self) -> int:
        """1 for the first incarnation, +1 for every restart."""
        return self._cell.incarnation

    @property
    def busy(self) -> bool:
        """True while a message is being handled."""
        return self._cell.busy

    @property
    def task(self) -> asyncio.Task[object] | None:
        """The current incarnation's task (for inspection); None while dormant."""
        return self._cell.task

    @property
    def dormant(self) -> bool:
        """True while a ``lazy`` actor waits for its first message (it has no task yet).

        .. versionadded:: 3.0
        """
        return self._cell.dormant

    def wake(self) -> None:
        """Start a dormant ``lazy`` actor now instead of at its first message.

        A no-op for an actor that already runs or has stopped.

        .. versionadded:: 3.0
        """
        self._cell._wake()

    # -- sending ----------------------------------------------------------------------
    def _stopped(self, msg: Any, cause: BaseException | None = None) -> ActorStopped:
        cell = self._cell
        cell.dead_letter(msg, "stopped")
        error = ActorStopped(f"actor {cell.name!r} has stopped", actor=cell.name)
        error.__cause__ = cause
        return error

    async def tell(self, msg: Any, *, lane: int = 0) -> None:
        """Enqueue ``msg``, waiting while the lane is full (backpressure).

        Raises:
            ActorStopped: the actor has stopped (the message is a dead letter).
        """
        cell = self._cell
        if not cell.alive:
            raise self._stopped(msg)
        try:
            await cell.mailbox.put(msg, lane)
        except MailboxClosed as exc:
            raise self._stopped(msg, exc) from exc

    def try_tell(self, msg: Any, *, lane: int = 0) -> bool:
        """Enqueue ``msg`` if the lane has room now; False when it is full.

        Raises:
            ActorStopped: the actor has stopped (the message is a dead letter).
        """
        cell = self._cell
        if not cell.alive:
            raise self._stopped(msg)
        try:
            return cell.mailbox.put_nowait(msg, lane)
        except MailboxClosed as exc:
            raise self._stopped(msg, exc) from exc

    async def ask(self, msg: Any, *, timeout: float | None = None) -> Any:
        """Send ``msg`` and wait for the value ``receive`` returns for it.

        ``timeout`` (seconds of the system clock) covers waiting for room and for
        the reply; a message whose caller gave up is skipped by the actor.

        Raises:
            TimeoutError: no reply within ``timeout``.
            ActorCrashed: the handler raised (the exception is ``__cause__``).
            ActorInterrupted: ``interrupt`` cancelled the handler.
            ActorStopped: the actor stopped before replying.
        """
        cell = self._cell
        reply: asyncio.Future[Any] = cell.loop.create_future()
        if timeout is None:
            return await self._ask(_Ask(msg, reply))
        clock = cell.clock
        async with clock.timeout_at(clock.monotonic() + timeout):
            return await self._ask(_Ask(msg, reply))

    async def _ask(self, envelope: _Ask) -> Any:
        reply = envelope.reply
        try:
            await self.tell(envelope)
        except ActorStopped:
            if reply.done() and not reply.cancelled():
                reply.exception()  # retrieved: the ActorStopped raised here says it all
            raise
        # Cancelling this await (timeout, caller cancelled) cancels ``reply``,
        # which tells the actor to skip the message.
        return await reply

    def tell_threadsafe(self, msg: Any, *, timeout: float | None = None) -> None:
        """Send ``msg`` from a plain thread, blocking while the mailbox is full.

        Built on aiologic: the thread blocks on a one-slot thread-safe queue that
        a pump task in the actor's loop drains into the mailbox, so backpressure
        reaches the thread.

        Raises:
            MailboxFull: no room within ``timeout`` seconds.
            ActorStopped: the actor has stopped.
            RuntimeError: called from the actor's own event-loop thread (use tell).
        """
        from penguiflow.actors.threads import ThreadIngress

        cell = self._cell
        if not cell.alive:
            raise self._stopped(msg)
        ThreadIngress.for_cell(cell).put(msg, timeout)

    # -- control ------------------------------------------------------------------------
    def interrupt(self, reason: object, *, when: Callable[[Any], bool] | None = None) -> bool:
        """Cancel the handler now running if ``when(message)`` is true (or ``when`` is None).

        The actor catches the cancellation, awaits ``on_interrupt(message, reason,
        ctx)`` and goes on with its next message; it is not restarted and the
        interrupted message is not redelivered (an ``ask`` gets ActorInterrupted).
        Returns True if a handler was interrupted. Call it from the actor's event
        loop but not from the actor's own task (that returns False: a handler
        that wants to stop returns or raises).
        """
        return self._cell.interrupt(reason, when)

    async def stop(self, *, timeout: float | None = None) -> None:
        """Stop the actor for good and wait until it has stopped.

        The message in hand is finished first (up to ``timeout`` seconds, default
        the child's shutdown setting, then the task is cancelled); queued messages
        become dead letters and pending asks fail with ActorStopped. Called from
        the actor's own task it only requests the stop and returns.
        """
        cell = self._cell
        if not cell.alive:
            return
        if asyncio.current_task() is cell.task:
            cell.request_stop("stopped", final=True)
            return
        await cell.supervisor.stop_cell(cell, timeout)
