"""The kernel's ports: what the actor kernel needs from the layers around it.

The kernel (mailbox, cell, ref, actor) sits at the bottom of the package and
imports nothing above it. Whatever it must call on its neighbours is typed by
one of these Protocols instead: a mailbox (``Mailbox`` or a stand-in such as
the distributed origin's ``RemoteMailbox``), the owner that stops a cell (a
``penguiflow.supervision.Supervisor``) and the host that receives dead letters
(a ``penguiflow.supervision.ActorSystem``).

.. versionadded:: 3.0
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from penguiflow.actors.cell import ActorCell
    from penguiflow.actors.envelope import DeadLetter, Delivery, MailboxStatistics
    from penguiflow.actors.ref import ActorRef

__all__ = ["ActorHost", "CellOwner", "DeadLetterSink", "MailboxLike"]


@runtime_checkable
class MailboxLike(Protocol):
    """The mailbox surface the actor cell and the flow runtime use.

    The receive loop takes items with ``poll()`` (synchronous; returns
    ``Mailbox.NOTHING`` when it cannot take one now) and then ``await next()`` (may
    serve the system or self lane, or wait); after either, ``last_lane`` is the
    lane of the item just taken. ``put_system`` carries the kernel's stop
    requests, ``requeue_front`` puts back a message whose handler was
    cancelled (or that an actor opted to have redelivered after a crash), and
    ``purge``/``close`` hand back what is left when the actor stops.
    """

    capacity: int
    lanes: int
    last_lane: int

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        ...

    def __len__(self) -> int: ...

    def poll(self) -> Any:
        """The next data item if one can be taken now, else ``Mailbox.NOTHING``."""
        ...

    async def next(self) -> Any:
        """The next item (system lane first), waiting for one; sets ``last_lane``."""
        ...

    async def get(self, lanes: Sequence[int] | None = None) -> Delivery:
        """The next item with its lane, waiting for one."""
        ...

    def get_nowait(self, lanes: Sequence[int] | None = None) -> Delivery:
        """The next item with its lane, or raise ``MailboxEmpty``."""
        ...

    async def put(self, item: Any, lane: int = 0) -> None:
        """Enqueue ``item``, waiting while the lane is full."""
        ...

    def put_nowait(self, item: Any, lane: int = 0) -> bool:
        """Enqueue ``item`` if there is room now."""
        ...

    def put_system(self, item: Any) -> None:
        """Enqueue a kernel message, served before everything else."""
        ...

    def put_self(self, item: Any) -> None:
        """Enqueue on the self lane, served before the data lanes."""
        ...

    def requeue_front(self, item: Any, lane: int = 0) -> None:
        """Put ``item`` back at the front of ``lane``, ignoring capacity."""
        ...

    def purge(
        self, predicate: Callable[[Any], bool], *, lanes: Sequence[int] | None = None
    ) -> list[Delivery]:
        """Remove and return the queued items matching ``predicate``."""
        ...

    def close(self) -> list[Delivery]:
        """Close the mailbox and return what was queued."""
        ...

    def snapshot(self, lane: int | None = None) -> tuple[Any, ...]:
        """Copy of the queued items."""
        ...

    def depth(self, lane: int | None = None) -> int:
        """Items queued (in ``lane``, or in every data lane)."""
        ...

    def statistics(self) -> MailboxStatistics:
        """A frozen record of depths, capacity and waiters."""
        ...

    async def wait_empty(self) -> None:
        """Return once nothing is queued."""
        ...


class CellOwner(Protocol):
    """Who owns a cell's tasks and stops it for good (a supervisor)."""

    async def stop_cell(self, cell: ActorCell, timeout: float | None) -> None:
        """Terminate ``cell``'s actor for good and forget it (``ActorRef.stop``)."""
        ...

    def task_replaced(self, cell: ActorCell) -> None:
        """``cell``'s receive loop moved to a new task (``ActorContext.detach``): watch it.

        .. versionadded:: 3.0
        """
        ...


class DeadLetterSink(Protocol):
    """Where the kernel reports every message it could not deliver or process."""

    def dead_letter(self, letter: DeadLetter) -> None:
        """Record ``letter`` (count it, hand it to a callback, ...)."""
        ...


class ActorHost(DeadLetterSink, Protocol):
    """The system an actor lives in, as the kernel sees it (``ActorContext.system``)."""

    @property
    def name(self) -> str:
        """The system's name."""
        ...

    def lookup(self, name: str) -> ActorRef | None:
        """The live actor registered under ``name``, or None."""
        ...
