"""Parked traces: ``ctx.interrupt`` waits for ``flow.resume`` without holding its node.

``interrupt`` runs in the node function. It registers a one-time token, asks
the node actor to give up the item in hand (``Parker.park``: the actor detaches
the invocation, so the node's receive loop goes on with the next item in a new
task while this one waits in its own), sends an ``Interrupt`` to Rookery and
waits for the token's future. Only an interrupt costs a task; the hot path
knows nothing of this module.

While parked the trace stays outstanding (its item is still counted, and so is
the ``Interrupt`` until fetched), but the item is not *busy*: ``wait_idle`` does
not wait for a person. On waking, however it wakes, the item is taken back
(``Parker.unpark``), so the node actor's accounting ends it as any other.

Who ends what:

* ``flow.resume(token, value)``: the future gets ``value``; the node continues.
* ``flow.cancel(trace)``: its tokens are withdrawn at once and its detached
  invocations are cancelled as a node cancelling its own trace is (the node sees
  ``CancelledError``; the trace ends as cancelled).
* ``flow.stop()``: every token is withdrawn and every detached invocation is
  cancelled and awaited (their items are dropped, as ``stop`` drops any item in
  hand).
* The node's ``timeout_s``: the wait counts against it (the timer belongs to the
  invocation); on timeout the token is withdrawn and the attempt fails as a
  timeout.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING, Any, Protocol

from penguiflow._runtime.signals import HANDLER
from penguiflow._runtime.tracing import PRODUCING_TRACE
from penguiflow.errors import InterruptTokenError, InterruptUnavailable
from penguiflow.interrupts import Interrupt

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context
    from penguiflow._runtime.run_state import RunState

__all__ = ["Parker", "Parking", "interrupt"]

_TOKEN_BYTES = 24  # 192 bits, URL-safe text: unguessable


class Parker(Protocol):
    """What ``interrupt`` asks of the node actor running the invocation."""

    run: Any
    node: Any

    def park(self) -> bool:
        """Give up the item in hand (detaching the invocation); False if it cannot."""
        ...

    def unpark(self) -> None:
        """Take the item back after a ``park`` that returned True."""
        ...

    def cancel_detached(self) -> None:
        """Cancel the detached invocation as a trace cancel would."""
        ...


class Parking:
    """The tokens waiting for ``resume`` and the detached invocations of one flow."""

    __slots__ = ("detached", "waiting")

    def __init__(self) -> None:
        # token -> (trace, the future ``interrupt`` waits on)
        self.waiting: dict[str, tuple[str | None, asyncio.Future[Any]]] = {}
        # Invocations that detached from their node actor, until their task ends:
        # task -> (trace, the actor instance running it).
        self.detached: dict[asyncio.Task[Any], tuple[str | None, Parker]] = {}

    def resume(self, token: str, value: Any) -> None:
        """Wake the ``interrupt`` waiting on ``token`` with ``value``.

        Raises:
            InterruptTokenError: the token is unknown, already used or withdrawn.
        """
        waiting = self.waiting.pop(token, None)
        if waiting is None or waiting[1].done():
            raise InterruptTokenError(
                "unknown, already used or withdrawn interrupt token", token=token
            )
        waiting[1].set_result(value)

    def cancel_trace(self, trace_id: str) -> None:
        """Withdraw the trace's tokens and cancel its detached invocations."""
        for token, (trace, _) in tuple(self.waiting.items()):
            if trace == trace_id:
                del self.waiting[token]
        for trace, parker in tuple(self.detached.values()):
            if trace == trace_id:
                parker.cancel_detached()

    async def stop(self) -> None:
        """Withdraw every token; cancel every detached invocation and wait for it."""
        self.waiting.clear()
        tasks = tuple(self.detached)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def track(self, task: asyncio.Task[Any], trace_id: str | None, parker: Parker) -> None:
        """Remember a detached invocation until its task ends."""
        if task in self.detached:
            return
        self.detached[task] = (trace_id, parker)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self.detached.pop(task, None)


def parking_of(run: RunState) -> Parking:
    """The flow's ``Parking``, made on the first interrupt."""
    parking = run.parking
    if parking is None:
        parking = run.parking = Parking()
    return parking


async def interrupt(ctx: Context, payload: Any) -> Any:
    """``Context.interrupt``: park the trace until ``resume``; return the resume value.

    Raises:
        InterruptUnavailable: not inside a node invocation of this running flow.
    """
    run = ctx._run
    handler: Any = HANDLER.get()
    owner = ctx.owner
    name = str(getattr(owner, "name", owner))
    if (
        run is None
        or not run.running
        or handler is None
        or getattr(handler, "run", None) is not run
        or getattr(handler, "node", None) is not owner
        or not getattr(handler, "_invoking", False)
    ):
        raise InterruptUnavailable(
            f"ctx.interrupt needs a node invocation of a running flow ({name!r} has none here)",
            node=name,
        )
    assert run is not None  # checked above
    parker: Parker = handler
    parking = parking_of(run)
    trace_id = PRODUCING_TRACE.get()
    token = secrets.token_urlsafe(_TOKEN_BYTES)
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    parking.waiting[token] = (trace_id, future)
    parked = parker.park()
    try:
        if parked:
            task = asyncio.current_task()
            assert task is not None  # park() succeeds only in the actor's task
            parking.track(task, trace_id, parker)
        # After park(): a full Rookery holds up this invocation, not the node.
        notice = Interrupt(trace_id=trace_id, node=name, payload=payload, token=token)
        await run.io.to_rookery(notice, source=owner)
        return await future
    finally:
        if parking.waiting.get(token, (None, None))[1] is future:
            del parking.waiting[token]  # withdrawn: cancelled, timed out, failed
        if parked:
            parker.unpark()
