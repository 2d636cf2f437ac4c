"""The actor system: a root supervisor, a name registry and dead-letter accounting.

It lives with supervision, above the kernel: the kernel reaches it only through
the ``ActorHost`` port (``penguiflow.actors.ports``).
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from penguiflow._time import SYSTEM_CLOCK, Clock
from penguiflow.actors.actor import Actor
from penguiflow.actors.envelope import DeadLetter
from penguiflow.errors import AlreadyStarted
from penguiflow.supervision.specs import ChildSpec
from penguiflow.supervision.supervisor import Supervisor

if TYPE_CHECKING:
    from penguiflow.actors.cell import ActorCell
    from penguiflow.actors.ports import MailboxLike
    from penguiflow.actors.ref import ActorRef
    from penguiflow.supervision.backoff import RestartBackoff
    from penguiflow.supervision.strategy import RestartType

__all__ = ["ActorSystem"]


class ActorSystem:
    """Home of a tree of actors: ``async with ActorSystem("name") as system``.

    Args:
        name: names the root supervisor in logs.
        clock: time source for every timeout, backoff and restart window.
        on_dead_letter: called with a ``DeadLetter`` for every message that
            could not be delivered or processed.
        intensity, period: restart intensity of the root supervisor.

    Leaving the ``async with`` block shuts the system down; if the root
    supervisor escalated meanwhile, ``Escalated`` is raised there.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        name: str = "penguiflow",
        clock: Clock | None = None,
        *,
        on_dead_letter: Callable[[DeadLetter], None] | None = None,
        intensity: int = 3,
        period: float = 5.0,
    ) -> None:
        self.name = name
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.on_dead_letter = on_dead_letter
        self.root: Supervisor = Supervisor(
            "one_for_one", intensity, period, name=name, clock=self.clock
        )
        self.root._system = self
        self._registry: dict[str, ActorRef] = {}
        self._dead_letters = 0

    def __repr__(self) -> str:
        return f"<ActorSystem {self.name!r} actors={len(self._registry)}>"

    async def __aenter__(self) -> ActorSystem:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        escalated = self.root._escalation
        await self.shutdown()
        escalated = escalated or self.root._escalation
        if escalated is not None and exc_type is None:
            raise escalated

    @property
    def dead_letters(self) -> int:
        """How many dead letters this system has seen."""
        return self._dead_letters

    def spawn(
        self,
        factory: Callable[[], Actor | Any],
        *,
        name: str,
        capacity: int = 64,
        lanes: int = 1,
        mailbox: MailboxLike | None = None,
        supervisor: Supervisor | None = None,
        restart: RestartType = "permanent",
        backoff: RestartBackoff | None = None,
        shutdown: float | None = 5.0,
        lazy: bool = False,
    ) -> ActorRef:
        """Start an actor now (synchronously) under ``supervisor`` (default: the root).

        ``factory`` is called for every incarnation. A given ``mailbox`` is owned by
        the caller: stopping the actor does not close it. ``lazy`` defers the
        actor's task to its first message (see ``ChildSpec``; *versionadded 3.0*).

        Raises:
            AlreadyStarted: an actor of that name is alive in this system.
        """
        spec = ChildSpec(
            id=name,
            start=factory,
            restart=restart,
            shutdown=shutdown,
            backoff=backoff,
            capacity=capacity,
            lanes=lanes,
            mailbox=mailbox,
            lazy=lazy,
        )
        return (supervisor or self.root)._spawn(spec, self)

    def lookup(self, name: str) -> ActorRef | None:
        """The live actor spawned under ``name``, or None."""
        return self._registry.get(name)

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Stop every actor (reverse start order); past ``timeout`` cancel what is left."""
        await self.root.stop(timeout=timeout)

    def dead_letter(self, letter: DeadLetter) -> None:
        """Count ``letter`` and hand it to ``on_dead_letter`` (the kernel reports here)."""
        self._dead_letters += 1
        if self.on_dead_letter is not None:
            self.on_dead_letter(letter)

    # -- registry, kept by the supervisors ------------------------------------------------
    def _register(self, cell: ActorCell) -> None:
        existing = self._registry.get(cell.name)
        if existing is not None and existing.alive:
            raise AlreadyStarted(f"an actor named {cell.name!r} is alive", child_id=cell.name)
        self._registry[cell.name] = cell.ref

    def _unregister(self, cell: ActorCell) -> None:
        if self._registry.get(cell.name) is cell.ref:
            del self._registry[cell.name]
