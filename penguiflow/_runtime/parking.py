"""Parked traces: ``ctx.interrupt`` waits for ``flow.resume`` without holding its node.

``Parking.interrupt`` runs in the node function. It registers a one-time token,
asks the node actor to give up the item in hand (``Parker.park``: the actor
detaches the invocation, so the node's receive loop goes on with the next item
in a new task while this one waits in its own), sends an ``Interrupt`` to
Rookery and waits for the token's future. Only an interrupt costs a task; the
hot path knows nothing of this module.

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
  hand). On a durable flow a parked item is kept instead (``Held``): a
  ``resume`` after the next ``run()`` hands it to its node again.
* The node's ``timeout_s``: the wait counts against it (the timer belongs to the
  invocation); on timeout the token is withdrawn and the attempt fails as a
  timeout.

On a durable flow (an open ``durable.Step``) the interrupt is journaled
(``Journal.park``, the ``Interrupt`` notice as a Rookery item) before the notice
is seen, ``resume`` journals the value before it wakes anything, and the step's
commit marks the tokens it used. After a crash ``recover`` hands this module the
entries parked and not resumed (``hold``): they wait off their edge until
``resume``, which puts them back, and the node runs again from the top, its
``ctx.interrupt`` calls answered from the journal in the order they were asked
(``replay``) before any new one parks.

``parked()`` lists what waits (``hosting.parked_interrupts``): each waiting
token with the notice its ``Interrupt`` carried, then each held item's.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from penguiflow._runtime.durable import STEP, current_step, outcome_of
from penguiflow._runtime.signals import HANDLER
from penguiflow._runtime.tracing import PRODUCING_TRACE, Journaled
from penguiflow._runtime.transport import Transport
from penguiflow.errors import InterruptTokenError, InterruptUnavailable, SerializationError
from penguiflow.interrupts import Interrupt, ParkedInterrupt

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context
    from penguiflow._runtime.durable import Step
    from penguiflow._runtime.run_state import RunState
    from penguiflow.actors import Mailbox
    from penguiflow.journal import InterruptRecord, Journal

__all__ = ["Held", "Parker", "Parking"]

_TOKEN_BYTES = 24  # 192 bits, URL-safe text: unguessable


class Parker(Protocol):
    """What ``interrupt`` asks of the node actor running the invocation."""

    run: Any
    node: Any

    def park(self) -> int | None:
        """Give up the item in hand (detaching); its lane, or None if it cannot."""
        ...

    def unpark(self) -> None:
        """Take the item back after a ``park`` that succeeded."""
        ...

    def cancel_detached(self) -> None:
        """Cancel the detached invocation as a trace cancel would."""
        ...


@dataclass(slots=True)
class Held:
    """A journaled item parked off its edge until ``resume`` (recovered, or kept by stop)."""

    trace: str | None
    item: Journaled
    mailbox: Mailbox  # the node's (wiring makes every node mailbox a Mailbox)
    lane: int
    counted: bool  # already counted for its trace (recover counts; stop's reset does not)
    notice: Interrupt | None = None  # what parked it (None: recovered, see Parking.parked)
    since: float | None = None  # when this process parked it (None: recovered)


@dataclass(slots=True)
class _Wait:
    trace: str | None
    future: asyncio.Future[Any]
    held: Held | None  # what stop() keeps of a durable invocation (None: not durable)
    since: float = 0.0  # wall-clock time of the park
    notice: Interrupt | None = None  # set once built (parked() lists only waits that have one)


@dataclass(slots=True)
class _Asked:
    """One interrupt of a journaled entry, in park order: its token and its answer."""

    token: str
    answered: bool = False
    answer: Any = None


class Parking:
    """The tokens waiting for ``resume`` and the detached invocations of one flow."""

    __slots__ = (
        "_recovered",
        "_run",
        "detached",
        "held",
        "journal",
        "refused",
        "replay",
        "waiting",
    )

    def __init__(self, run: RunState, journal: Journal | None = None) -> None:
        self._run = run
        self.journal = journal
        self.waiting: dict[str, _Wait] = {}
        # Invocations that detached from their node actor, until their task ends:
        # task -> (trace, the actor instance running it).
        self.detached: dict[asyncio.Task[Any], tuple[str | None, Parker]] = {}
        self.held: dict[str, Held] = {}  # token -> parked journaled item
        self.replay: dict[int, list[_Asked]] = {}  # entry id -> its interrupts
        self.refused: str | None = None  # hosting.refuse_interrupts: why not here
        # recover(): the journal's records of the interrupts parked and not resumed.
        self._recovered: dict[str, InterruptRecord] = {}

    def parked(self) -> list[ParkedInterrupt]:
        """The interrupts waiting for ``resume``, oldest first (held ones after the rest)."""
        found: list[ParkedInterrupt] = []
        for token, wait in self.waiting.items():
            notice = wait.notice
            if notice is not None and not wait.future.done():
                found.append(
                    ParkedInterrupt(notice.trace_id, notice.node, notice.payload, token, wait.since)
                )
        for token, held in self.held.items():  # never also waiting: stop() clears that
            if held.notice is not None:
                notice = held.notice
                found.append(
                    ParkedInterrupt(notice.trace_id, notice.node, notice.payload, token, held.since)
                )
                continue
            record = self._recovered.get(token)
            if record is not None:
                found.append(
                    ParkedInterrupt(record.trace_id, record.node, _payload(record), token, None)
                )
        return found

    # -- resume, cancel, stop --------------------------------------------------------
    async def resume(self, token: str, value: Any) -> None:
        """Wake the ``interrupt`` waiting on ``token`` with ``value``.

        Raises:
            InterruptTokenError: the token is unknown, already used or withdrawn.
            JournalError: a durable flow's journal did not store the value.
        """
        waiting = self.waiting.get(token)
        if self.journal is not None and (waiting is None or waiting.held is not None):
            # Journaled first: an answer given survives a crash from here on.
            call = asyncio.ensure_future(self.journal.resume(token, value))
            try:
                record = await asyncio.shield(call)
            except asyncio.CancelledError:
                # The caller was cancelled while the value was being journaled. It
                # may be stored all the same, and the token is then used: a retry
                # would be refused, so wake the trace now (else it stays parked
                # until a restart's recover()).
                await outcome_of(call)
                if call.done() and not call.cancelled() and call.exception() is None:
                    with contextlib.suppress(InterruptTokenError):  # withdrawn meanwhile
                        self._wake(token, call.result(), value)
                raise
            self._wake(token, record, value)
            return
        self._set(token, waiting, value)

    def _wake(self, token: str, record: InterruptRecord, value: Any) -> None:
        """Continue what waits on ``token`` once the journal stored its answer."""
        self._answered(record, value)
        held = self.held.pop(token, None)
        self._recovered.pop(token, None)
        if held is not None:
            if not held.counted and held.item.trace_id is not None:
                self._run.traces.add(held.item.trace_id)
            held.mailbox.put_beyond(held.item, held.lane)
            return
        self._set(token, self.waiting.get(token), value)

    def _set(self, token: str, waiting: _Wait | None, value: Any) -> None:
        if waiting is None or waiting.future.done():
            raise InterruptTokenError(
                "unknown, already used or withdrawn interrupt token", token=token
            )
        del self.waiting[token]
        waiting.future.set_result(value)

    def cancel_trace(self, trace_id: str) -> list[Journaled]:
        """Withdraw the trace's tokens, cancel its detached invocations; its held items.

        Returns the held items that were counted, for the caller to finish.
        """
        for token, wait in tuple(self.waiting.items()):
            if wait.trace == trace_id:
                del self.waiting[token]
        for trace, parker in tuple(self.detached.values()):
            if trace == trace_id:
                parker.cancel_detached()
        dropped = []
        for token, held in tuple(self.held.items()):
            if held.trace == trace_id:
                del self.held[token]
                self._recovered.pop(token, None)
                if held.counted:
                    dropped.append(held.item)
        return dropped

    async def stop(self) -> None:
        """Withdraw every token; cancel every detached invocation and wait for it."""
        for token, wait in self.waiting.items():
            if wait.held is not None:
                self.held[token] = wait.held  # durable: resumable after the next run()
        self.waiting.clear()
        tasks = tuple(self.detached)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- recovery (durable flows) -------------------------------------------------------
    def recovered(self, interrupts: tuple[InterruptRecord, ...]) -> dict[int, str]:
        """Learn the journal's unused interrupts; the entries parked and not resumed.

        Returns entry id -> the token its ``resume`` takes.
        """
        parked: dict[int, str] = {}
        for record in interrupts:
            if record.entry_id is None:
                continue
            asked = _Asked(record.token)
            if record.resumed:
                asked.answered, asked.answer = True, record.decode_resume_value()
            else:
                parked[record.entry_id] = record.token
                self._recovered[record.token] = record
            self.replay.setdefault(record.entry_id, []).append(asked)
        return parked

    def hold(self, token: str, held: Held) -> None:
        """Keep a recovered parked item off its edge until ``resume(token)``."""
        self.held[token] = held

    def _answered(self, record: InterruptRecord, value: Any) -> None:
        for asked in self.replay.get(record.entry_id or -1, ()):
            if asked.token == record.token:
                asked.answered, asked.answer = True, value

    # -- the wait ------------------------------------------------------------------------
    async def interrupt(self, ctx: Context, payload: Any) -> Any:
        """``Context.interrupt``: park the trace until ``resume``; return the resume value.

        Raises:
            InterruptUnavailable: not inside a node invocation of this running flow.
        """
        run = self._run
        handler: Any = HANDLER.get()
        owner = ctx.owner
        name = str(getattr(owner, "name", owner))
        if (
            not run.running
            or handler is None
            or getattr(handler, "run", None) is not run
            or getattr(handler, "node", None) is not owner
            or not getattr(handler, "_invoking", False)
        ):
            raise InterruptUnavailable(
                f"ctx.interrupt needs a node invocation of a running flow ({name!r} has none here)",
                node=name,
            )
        if self.refused is not None:
            raise InterruptUnavailable(f"ctx.interrupt in {name!r}: {self.refused}", node=name)
        step = current_step() if self.journal is not None else None
        if step is not None and step.io is not run.io:
            step = None  # a step of another flow (this one runs inside its node)
        asked: _Asked | None = None
        if step is not None:
            index = step.interrupts
            step.interrupts += 1
            asks = self.replay.setdefault(step.entry, [])
            if index < len(asks):
                asked = asks[index]
                if asked.answered:
                    step.used.append(asked.token)
                    return asked.answer  # answered before: the node runs again from the top
        parker: Parker = handler
        trace_id = PRODUCING_TRACE.get()
        token = asked.token if asked is not None else secrets.token_urlsafe(_TOKEN_BYTES)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        wait = _Wait(trace_id, future, None, run.clock.time())
        self.waiting[token] = wait
        lane = parker.park()
        answered = False
        try:
            if lane is not None:
                task = asyncio.current_task()
                assert task is not None  # park() succeeds only in the actor's task
                self._track(task, trace_id, parker)
            notice = Interrupt(trace_id=trace_id, node=name, payload=payload, token=token)
            wait.notice = notice
            if step is None:
                # After park(): a full Rookery holds up this invocation, not the node.
                await run.io.to_rookery(notice, source=owner)
            elif asked is None:
                await self._journal_park(step, notice, owner)
            if step is not None and lane is not None:
                mailbox = cast("Mailbox", run.mailboxes[owner])
                wait.held = Held(
                    trace_id,
                    step.item,
                    mailbox,
                    lane,
                    counted=False,
                    notice=notice,
                    since=wait.since,
                )
            value = await future
            answered = True
            return value
        finally:
            if self.waiting.get(token) is wait:
                del self.waiting[token]  # withdrawn: cancelled, timed out, failed
            if step is not None and (
                answered or not (run.stopping or run.traces.cancelled(trace_id or ""))
            ):
                step.used.append(token)  # answered or given up: the commit marks it used
            if lane is not None:
                parker.unpark()

    async def _journal_park(self, step: Step, notice: Interrupt, source: Any) -> None:
        """Journal the interrupt with its notice, then put the notice in Rookery."""
        result = await step.io.park(step, notice.token, notice.payload, rookery=(notice,))
        self.replay.setdefault(step.entry, []).append(_Asked(notice.token))
        (rookery_id,) = result.rookery_ids
        journaled = Journaled(notice, rookery_id, notice.trace_id, notice.trace_id)
        # Past the step (its puts wait for its commit): the notice is committed
        # already and must be seen now. STEP is this task's own: reset below.
        outside = STEP.set(None)
        try:
            await Transport.to_rookery(step.io, journaled, source=source)
        finally:
            STEP.reset(outside)

    def _track(self, task: asyncio.Task[Any], trace_id: str | None, parker: Parker) -> None:
        """Remember a detached invocation until its task ends."""
        if task in self.detached:
            return
        self.detached[task] = (trace_id, parker)
        task.add_done_callback(self._forget)

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self.detached.pop(task, None)


def _payload(record: InterruptRecord) -> Any:
    """A recovered interrupt's payload; its journal text if it cannot be decoded here."""
    try:
        return record.decode_payload()
    except SerializationError:
        return record.payload
