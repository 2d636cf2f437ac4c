"""The thread -> actor boundary: blocking, backpressured sends over aiologic.

A plain thread cannot touch the mailbox (it is not thread-safe and lives in one
event loop). ``ThreadIngress`` gives each actor that receives from threads a
one-slot ``aiologic.Queue``: threads block on it (``green_put``), and one pump
task in the actor's loop moves items into the mailbox with an awaited ``put``.
When the mailbox is full the pump waits, the slot stays taken and the next
thread blocks: backpressure crosses the boundary. aiologic is used only here,
never on the same-loop hot path (it is ~10x slower than the deque mailbox).
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import aiologic

from penguiflow.errors import ActorStopped, MailboxClosed, MailboxFull

if TYPE_CHECKING:
    from penguiflow.actors.cell import ActorCell

__all__ = ["ThreadIngress"]

_CREATE_LOCK = threading.Lock()
_NOTHING: Any = object()


class ThreadIngress:
    """Internal: the per-actor thread bridge described in the module docstring."""

    __slots__ = ("_cell", "_closed", "_holding", "_pump", "_queue")

    def __init__(self, cell: ActorCell) -> None:
        self._cell = cell
        self._queue: Any = aiologic.Queue(1)
        self._closed = False
        self._holding: Any = _NOTHING  # taken from the queue, not yet in the mailbox
        self._pump: asyncio.Task[None] | None = None
        # The pump is created in the actor's loop; items queued meanwhile wait.
        cell.loop.call_soon_threadsafe(self._start_pump)

    @classmethod
    def for_cell(cls, cell: ActorCell) -> ThreadIngress:
        """The cell's bridge, created on first use (from any thread)."""
        ingress = cell.threads
        if ingress is None:
            with _CREATE_LOCK:
                ingress = cell.threads
                if ingress is None:
                    ingress = cell.threads = cls(cell)
        return ingress

    def _start_pump(self) -> None:
        if not self._closed:
            self._pump = asyncio.ensure_future(self._run())

    def put(self, msg: Any, timeout: float | None) -> None:
        """Block the calling thread until ``msg`` is handed to the pump."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._cell.loop:
            raise RuntimeError("tell_threadsafe() would block the actor's own loop; use tell()")
        if self._closed:
            raise ActorStopped(f"actor {self._cell.name!r} has stopped", actor=self._cell.name)
        try:
            self._queue.green_put(msg, timeout=timeout)
        except aiologic.QueueFull as exc:
            raise MailboxFull(
                f"mailbox of actor {self._cell.name!r} stayed full for {timeout}s",
                actor=self._cell.name,
            ) from exc

    async def _run(self) -> None:
        cell = self._cell
        while True:
            msg = self._holding = await self._queue.async_get()
            try:
                await cell.mailbox.put(msg)
            except MailboxClosed:
                cell.dead_letter(msg, "stopped")
            self._holding = _NOTHING

    def close(self) -> list[Any]:
        """Stop the pump; return what threads had handed over but not yet delivered."""
        self._closed = True
        if self._pump is not None:
            self._pump.cancel()
        leftovers = []
        holding = self._holding
        # Parked in a waiting put, the item is not in the mailbox yet: report it
        # here. If the mailbox already took it, its own leftovers report it.
        if holding is not _NOTHING and not any(
            item is holding for item in self._cell.mailbox.snapshot(0)
        ):
            leftovers.append(holding)
        while True:
            try:
                leftovers.append(self._queue.green_get(blocking=False))
            except aiologic.QueueEmpty:
                return leftovers
