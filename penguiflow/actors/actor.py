"""The actor base class and the context handed to its hooks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from penguiflow.actors.cell import ActorCell
    from penguiflow.actors.ports import ActorHost
    from penguiflow.actors.ref import ActorRef

__all__ = ["Actor", "ActorContext"]


class Actor:
    """Base class of user actors: override ``receive`` and any lifecycle hook.

    An actor runs in exactly one task; ``receive`` handles one message at a time
    and its return value answers an ``ask``. All hooks run in the actor's task.

    ``poison_limit`` says what becomes of a ``tell``ed message whose handler
    crashed the actor. The default, 1, drops it to dead letters (reason
    ``"crashed"``) on the first crash, as Erlang/OTP and Akka typed do: the
    restarted actor goes on with the messages queued behind it. A subclass that
    sets ``poison_limit = n`` with ``n > 1`` opts into redelivery: the message
    is handed to the next incarnation first, until it has crashed ``n``
    incarnations, and then becomes a dead letter (reason ``"poison"``). An
    ``ask`` is never redelivered: its caller gets ``ActorCrashed``.

    .. versionadded:: 3.0
    """

    poison_limit: ClassVar[int] = 1

    async def on_start(self, ctx: ActorContext) -> None:
        """Called in the new incarnation's task before the first message."""

    async def receive(self, message: Any, ctx: ActorContext) -> Any:
        """Handle one message; the return value answers an ``ask``."""
        return None

    async def on_stop(self, reason: object) -> None:
        """Called when the actor is stopped gracefully (not after a crash)."""

    async def on_restart(self, reason: object) -> None:
        """Called on the old instance, in the new task, before its replacement starts."""

    async def on_interrupt(self, message: Any, reason: object, ctx: ActorContext) -> None:
        """Called after ``ActorRef.interrupt`` cancelled the handler of ``message``."""


class ActorContext:
    """What an actor knows about itself: its ref, system and current message.

    .. versionadded:: 3.0
    """

    __slots__ = ("_cell", "_incarnation", "_log", "self_ref", "system")

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell
        self._incarnation = cell.incarnation
        self._log: Any = None
        self.self_ref: ActorRef = cell.ref
        # The ActorSystem (typed by the kernel's port: the kernel is below it).
        self.system: ActorHost | None = cell.system

    @property
    def log(self) -> Any:
        """A structlog logger bound with ``actor=`` and ``incarnation=``."""
        log = self._log
        if log is None:
            # Bound on first use: binding costs more than most actors ever log.
            log = self._log = self._cell._log.bind(incarnation=self._incarnation)
        return log

    @property
    def current(self) -> Any:
        """The message being handled now (None between messages)."""
        return self._cell.current

    @property
    def lane(self) -> int | None:
        """The mailbox lane the current message came from (None between messages)."""
        return self._cell.current_lane

    @property
    def incarnation(self) -> int:
        """1 for the first incarnation, +1 for every restart."""
        return self._cell.incarnation

    def send_self(self, msg: Any) -> None:
        """Enqueue ``msg`` on the unbounded self lane; never blocks."""
        self._cell.mailbox.put_self(msg)

    def detach(self, successor: Actor) -> bool:
        """Finish the current handler in this task while ``successor`` takes the next messages.

        For a handler about to wait a long time (for a person, say) without
        holding up the mailbox. Call it from the handler, in the actor's own
        task. A new task runs the receive loop with ``successor`` (a fresh
        instance: its ``on_start`` runs first); the current task only finishes
        this handler: its return value answers an ``ask``, then ``on_stop`` of
        the instance that detached runs and the task ends. The actor does not
        restart if the handler crashes after detaching: the message is settled
        as a crash settles it. Detached handlers still running when the actor
        stops for good are cancelled (their ``ask`` fails with ``ActorStopped``).

        Returns False, and nothing happens, when called outside a handler, from
        another task, or with an ``ActorRef.interrupt`` pending.

        .. versionadded:: 3.0
        """
        return self._cell.detach(successor)

    def handled(self) -> None:
        """Mark the message in hand as done for good, though the handler goes on.

        From here on neither a cancellation of the handler (``stop``, a shutdown)
        nor a crash puts the message back in the mailbox: for a handler whose
        effect is already recorded elsewhere (a durable step that committed), so
        that handling it again would repeat or contradict that record. An
        ``ask`` cancelled after this fails with ``ActorStopped``.

        .. versionadded:: 3.0
        """
        self._cell.handled()

    def stop(self, reason: object = "normal") -> None:
        """Exit normally after this message (``on_stop`` runs).

        As in OTP the restart type decides what follows: a ``permanent`` child is
        restarted, ``transient`` and ``temporary`` ones are not. To stop an actor
        for good use ``await ctx.self_ref.stop()``.
        """
        self._cell.request_stop(reason, final=False)
