"""Steps of a durable flow: what a node puts while it handles one journaled item.

On a durable flow (``create(..., durable=True)``) every item on an edge is a
journal entry and travels as ``Journaled(item, entry)``. The node actor that
takes one opens a ``Step`` for it (``open_step``, in the actor's task context:
``STEP``). While the step is open every put the node makes, from its own task or
a task it started (``ctx.emit``, routed results, stream chunks, a ``FlowError``
or deadline final for Rookery), is kept in the step instead of reaching a
mailbox: ``DurableTransport`` overrides the four puts of ``Transport``. When the
item ends, whatever the outcome, ``DurableTransport.commit`` journals the
consumption of the entry with every output and per-trace state update in one
``Journal.commit_step``, and only then releases the outputs, in order, each as
``Journaled(item, new_entry)`` through the ordinary sends (counted, waiting on
full edges). Nothing a step produced is visible downstream before its commit,
so after a crash ``recover`` finds exactly the edges of the last commit.

A step that does not commit (the actor crashed, the flow stopped) is dropped
with its outputs; the entry is still journaled and is handled again. A commit
that raises fails the hop like a crash (the supervisor restarts the node and
the kernel redelivers the item).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.events import save_stored
from penguiflow._runtime.graph import ROOKERY
from penguiflow._runtime.tracing import PRODUCING_TRACE, Carried, Journaled, trace_id_of
from penguiflow._runtime.transport import Transport
from penguiflow.actors import SELF_LANE
from penguiflow.journal import Acceptance, Input, Outgoing, StateUpdate
from penguiflow.types import Message

if TYPE_CHECKING:
    from penguiflow._runtime.graph import Endpoint, Floe
    from penguiflow.journal import Journal, StepResult
    from penguiflow.node import Node
    from penguiflow.state import StoredEvent

__all__ = [
    "OUTCOME_WAIT_S",
    "STEP",
    "DurableTransport",
    "Step",
    "current_step",
    "open_step",
    "outcome_of",
    "record_state",
]


#: The longest a cancelled caller waits for its journal call's outcome (a stalled
#: network must not make stop() hang); past it the call is cancelled, its outcome
#: left to recover().
OUTCOME_WAIT_S = 10.0


async def outcome_of(call: asyncio.Future[Any]) -> None:
    """Wait until ``call`` is done, through any number of cancellations of the caller.

    For a journal call whose caller was cancelled (``stop()``, an interrupt): the
    call may land all the same, and what the caller does next (put its outputs,
    requeue an item) depends on whether it did. The caller re-raises its own
    ``CancelledError`` after. The wait is bounded (``OUTCOME_WAIT_S``): a call
    still running then is cancelled and counts as not landed.
    """
    deadline = asyncio.get_running_loop().time() + OUTCOME_WAIT_S
    while not call.done():
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            call.cancel()
            return
        try:
            await asyncio.wait((call,), timeout=left)
        except asyncio.CancelledError:
            continue  # cancelled again: the outcome still decides what exists


#: A committed output: its edge (``None``: Rookery via ``to_rookery``), source, item.
_Output = tuple["Floe | None", "Node | Endpoint | None", Journaled]


def _accepted(
    floes: tuple[Floe, ...],
    item: Any,
    own: str | None,
    owner: str | None,
    accepted: list[Acceptance],
) -> list[_Output]:
    """The journaled copies of an emitted ``item``, one per ingress edge that took it."""
    return [
        (floe, None, Journaled(item, acceptance.entry_id, own, owner))
        for floe, acceptance in zip(floes, accepted, strict=True)
        if acceptance.entry_id is not None  # else a duplicate key, or a cancelled trace
    ]


class Step:
    """One journaled item in hand, and what its node produced so far.

    ``outputs`` are ``(floe, source, item)`` in put order: ``floe`` is the edge
    (Rookery edges included), or ``None`` for an item ``to_rookery`` delivers from
    ``source`` (``Transport.to_rookery`` picks its edge on release).
    """

    __slots__ = (
        "committed",
        "entry",
        "events",
        "interrupts",
        "io",
        "item",
        "landed",
        "node",
        "open",
        "outputs",
        "state",
        "trace",
        "used",
    )

    def __init__(self, io: DurableTransport, item: Journaled, node: str) -> None:
        self.io = io
        self.item = item
        self.entry = item.entry
        self.trace = item.trace
        self.node = node
        self.open = True
        self.outputs: list[tuple[Floe | None, Node | Endpoint | None, Any]] = []
        self.state: list[StateUpdate] = []
        # The step's events, when they join its commit (DurableTransport.joins_events).
        self.events: list[StoredEvent] = []
        # ctx.interrupt (parking): calls made so far, and the tokens to mark used.
        self.interrupts = 0
        self.used: list[str] = []
        # Called once the commit landed (NodeActor: ActorContext.handled, so that no
        # stop or crash puts the consumed item back in the mailbox).
        self.landed: Callable[[], None] | None = None
        self.committed = False  # the commit landed: the journal consumed the entry

    def reopen(self) -> None:
        """Forget what the step produced (its commit failed): start it empty again."""
        self.outputs = []
        self.state = []
        self.open = True

    async def hold(self, attempt: int) -> None:
        """Journal that attempt ``attempt`` (a retry) of the entry starts now."""
        await self.io.journal.hold(self.entry, node=self.node, attempt=attempt)
        self.item.attempt = attempt  # a redelivery in this process resumes the count too

    async def commit(self) -> None:
        """Journal the step and release its outputs (``DurableTransport.commit``)."""
        await self.io.commit(self)


#: The step of the item the current node actor is handling (set per item by the
#: actor; tasks a node starts inherit it). A step belongs to one transport: a
#: flow run inside a node (a playbook) has its own.
STEP: ContextVar[Step | None] = ContextVar("penguiflow_durable_step", default=None)


def open_step(io: Transport, item: Journaled, node: str) -> Step:
    """Open the step of ``item`` in the calling task; ``io`` is a ``DurableTransport``."""
    assert isinstance(io, DurableTransport)  # only durable flows put Journaled items
    step = Step(io, item, node)
    STEP.set(step)
    return step


def current_step() -> Step | None:
    """The open step of the calling task, if a durable node is handling an item."""
    step = STEP.get()
    return step if step is not None and step.open else None


def record_state(key: str, value: Any = None, *, delete: bool = False) -> bool:
    """Journal per-trace state ``key`` with the step in hand (``join:<node>``...).

    Committed together with the step's consumption and outputs. Returns False
    (nothing recorded) outside a durable step.
    """
    step = current_step()
    if step is None:
        return False
    step.state.append(StateUpdate(key, value, delete=delete))
    return True


class DurableTransport(Transport):
    """``Transport`` of a durable flow: puts made inside a step wait for its commit."""

    __slots__ = ("joins_events", "journal")

    durable = True

    def __init__(self, *, journal: Journal, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.journal = journal
        # The flow's events go into its steps' transactions when the journal and
        # the event history share one store (SQLiteStateStore): one commit per
        # step instead of a round trip per event, and events as durable as steps.
        events = self._events
        joins = getattr(journal, "joins_events_of", None)
        self.joins_events = (
            events.state_store is not None and joins is not None and bool(joins(events.state_store))
        )
        if self.joins_events:
            events.step_events = self._step_events

    def _step_events(self) -> list[StoredEvent] | None:
        """The event list of the calling task's open step (EventPipeline.step_events)."""
        step = STEP.get()
        if step is not None and step.open and step.io is self:
            return step.events
        return None

    def _step(self) -> Step | None:
        step = STEP.get()
        if step is not None and step.open and step.io is self:
            return step
        return None

    # -- puts: kept in the open step, else as a plain transport ---------------------
    async def send(self, floe: Floe, item: Any) -> None:
        step = self._step()
        if step is None:
            await Transport.send(self, floe, item)
        else:
            step.outputs.append((floe, None, item))

    def offer(self, floe: Floe, item: Any) -> bool:
        step = self._step()
        if step is None:
            return Transport.offer(self, floe, item)
        step.outputs.append((floe, None, item))
        return True

    def send_nowait(self, floe: Floe, item: Any) -> None:
        step = self._step()
        if step is None:
            Transport.send_nowait(self, floe, item)
        else:
            step.outputs.append((floe, None, item))

    async def to_rookery(self, item: Any, *, source: Node | Endpoint | None = None) -> None:
        step = self._step()
        if step is None:
            await Transport.to_rookery(self, item, source=source)
        else:
            step.outputs.append((None, source, item))

    # -- commit and release ----------------------------------------------------------
    async def commit(self, step: Step) -> None:
        """Journal ``step`` (consumption, outputs, state) and then put its outputs.

        Raises what the journal raises (``JournalError``, ``SerializationError``):
        nothing was stored and nothing is put; the caller fails the hop.
        """
        step.open = False
        plan: list[tuple[Floe | None, Node | Endpoint | None, Any, str | None, str | None]] = []
        produced: list[Outgoing] = []
        rookery: list[Any] = []
        for floe, source, item in step.outputs:
            if type(item) is Carried:  # already carrying its trace
                own: str | None = None
                owner: str | None = item.trace
                item = item.item
            else:
                own = trace_id_of(item)
                owner = own if own is not None else step.trace
            plan.append((floe, source, item, own, owner))
            if floe is None or floe.target is ROOKERY:
                rookery.append(item)
            else:
                deadline = item.deadline_s if isinstance(item, Message) else None
                produced.append(Outgoing(floe.name, item, owner, deadline))
        used = tuple(dict.fromkeys(step.used))
        # Only a journal that joins events (SQLiteJournal) is handed them.
        extra: dict[str, Any] = {"events": step.events} if step.events else {}
        commit_step: Any = self.journal.commit_step
        call = asyncio.ensure_future(
            commit_step(
                step.trace,
                consumed=step.entry,
                produced=produced,
                rookery=rookery,
                state=step.state,
                interrupts_used=used,
                **extra,
            )
        )
        try:
            result = await asyncio.shield(call)
        except asyncio.CancelledError:
            # stop() (or a trace interrupt) came while the commit was under way. It
            # may land anyway: wait for it, and if it did, its outputs go on their
            # edges at once (never waiting), as they would have: the journal holds
            # them, and a later run() of this flow must find them where they are.
            await outcome_of(call)
            if call.done() and not call.cancelled() and call.exception() is None:
                step.events = []
                step.committed = True
                if step.landed is not None:
                    step.landed()
                done: StepResult = call.result()
                if not done.dropped:
                    self._release_now(self._journaled(plan, done))
            raise
        step.events = []
        step.committed = True
        if step.landed is not None:
            step.landed()
        if result.dropped:
            return  # the trace was cancelled: its outputs are dropped
        await self._release(plan, result)

    def _journaled(
        self,
        plan: list[tuple[Floe | None, Node | Endpoint | None, Any, str | None, str | None]],
        result: StepResult,
    ) -> list[_Output]:
        """The committed outputs, each as ``Journaled(item, its new entry)``, in put order."""
        entries = iter(result.entry_ids)
        rookery = iter(result.rookery_ids)
        out: list[_Output] = []
        for floe, source, item, own, owner in plan:
            edge_item = item if own is not None or owner is None else Carried(item, owner)
            entry = next(rookery) if floe is None or floe.target is ROOKERY else next(entries)
            out.append((floe, source, Journaled(edge_item, entry, own, owner)))
        return out

    async def _release(
        self,
        plan: list[tuple[Floe | None, Node | Endpoint | None, Any, str | None, str | None]],
        result: StepResult,
    ) -> None:
        outputs = self._journaled(plan, result)
        for index, (floe, source, journaled) in enumerate(outputs):
            try:
                if floe is None:
                    await Transport.to_rookery(self, journaled, source=source)
                else:
                    await Transport.send(self, floe, journaled)
            except asyncio.CancelledError:
                # Committed: what is not on its edge yet goes there now, without
                # waiting (a cancelled put enqueued nothing), so stop() and a
                # later run() lose none of it.
                self._release_now(outputs[index:])
                raise

    def _release_now(
        self, outputs: list[tuple[Floe | None, Node | Endpoint | None, Journaled]]
    ) -> None:
        """Put committed outputs on their edges at once, past capacity if need be."""
        for floe, source, journaled in outputs:
            if floe is None:
                incoming = self._rookery_ctx._incoming
                floe = incoming.get(source) if source is not None else None
                if floe is None and incoming:
                    floe = next(iter(incoming.values()))
            trace_id = trace_id_of(journaled)
            if trace_id is not None:
                self._traces.add(trace_id)
            if floe is None:
                self._rookery.put_self(journaled)  # the Rookery buffer
                continue
            mailbox = floe.mailbox
            assert mailbox is not None  # runtime edges are always attached
            if floe.lane == SELF_LANE:
                mailbox.put_self(journaled)
            else:
                mailbox.put_beyond(journaled, floe.lane)

    # -- OpenSea and Rookery ---------------------------------------------------------
    async def emit(self, floes: tuple[Floe, ...], msg: Any, idempotency_key: str | None) -> None:
        """Journal ``msg`` on the ingress edges ``floes``, then put it on them.

        Returns once the journal holds it. A known ``idempotency_key`` (or a
        cancelled trace) puts nothing. With several edges the first takes the key
        and the others ``"<key>#<edge>"``, in the same transaction.

        Raises:
            SerializationError: ``msg`` has no journal form (nothing journaled).
            JournalError: the journal did not store it.
        """
        own = trace_id_of(msg)
        owner = own if own is not None else PRODUCING_TRACE.get()
        deadline = msg.deadline_s if isinstance(msg, Message) else None
        key = idempotency_key
        inputs = [
            Input(
                floe.name,
                msg,
                owner,
                key if key is None or index == 0 else f"{key}#{floe.name}",
                deadline,
            )
            for index, floe in enumerate(floes)
        ]
        edge_item = msg if own is not None or owner is None else Carried(msg, owner)
        call = asyncio.ensure_future(self.journal.accept(inputs))
        try:
            accepted = await asyncio.shield(call)
        except asyncio.CancelledError:
            # The caller was cancelled (a timeout around emit, stop()) while the input
            # was being journaled. It may be journaled all the same: wait for that, and
            # if it is, put it on its edges at once. Else the trace would sit in the
            # journal unrun until a restart, and a retry with the same key (a no-op)
            # would never be answered.
            await outcome_of(call)
            if call.done() and not call.cancelled() and call.exception() is None:
                self._release_now(_accepted(floes, edge_item, own, owner, call.result()))
            raise
        outputs = _accepted(floes, edge_item, own, owner, accepted)
        for index, (floe, _, journaled) in enumerate(outputs):
            assert floe is not None  # an ingress edge
            try:
                await Transport.send(self, floe, journaled)
            except asyncio.CancelledError:
                # Journaled: what is not on its edge yet (a cancelled put enqueued
                # nothing) goes there now, past capacity, for the same reason.
                self._release_now(outputs[index:])
                raise

    async def fetch(self, lanes: list[int] | None) -> tuple[Any, str | None]:
        """The next Rookery item not delivered yet, and its trace; marked delivered first.

        An item the journal already marked delivered (fetched before a crash) is
        skipped. If marking fails the item goes back in front and the error is
        raised; if the caller is cancelled meanwhile it is kept for the next fetch.
        """
        ctx = self._rookery_ctx
        while True:
            delivery = await ctx._take(lanes)
            item = delivery.item
            if type(item) is Journaled:
                mark = asyncio.ensure_future(self.journal.mark_delivered(item.entry))
                try:
                    fresh = await asyncio.shield(mark)
                except asyncio.CancelledError:
                    # The mark may be committed: wait for it, then keep the item for
                    # the next fetch (unwrapped if it was marked: not marked twice).
                    try:
                        await outcome_of(mark)
                    finally:
                        marked = (
                            mark.done()
                            and not mark.cancelled()
                            and mark.exception() is None
                            and mark.result() is True
                        )
                        self._rookery.requeue_front(item.item if marked else item, delivery.lane)
                    raise
                except BaseException:
                    self._rookery.requeue_front(item, delivery.lane)
                    raise
                await self.finish(item)
                if not fresh:
                    continue  # delivered before a crash: each item is fetched once
                item = item.item
            elif type(item) is not Carried:
                await self.finish(item)
            if type(item) is Carried:
                return item.item, item.trace
            return item, trace_id_of(item)

    # -- the interrupt seam ----------------------------------------------------------
    async def park(
        self, step: Step, token: str, payload: Any, *, rookery: tuple[Any, ...] = ()
    ) -> StepResult:
        """Journal an interrupt of the entry ``step`` has in hand (``Journal.park``).

        The seam ``ctx.interrupt`` uses on a durable flow; the step stays open.
        Its events so far (``node_start``...) are saved first: the step commits
        only after ``resume``, maybe in another process, and the history of a
        parked trace must show it.
        """
        if step.events:
            events, step.events = step.events, []
            store = self._events.state_store
            for stored in events:
                await save_stored(store, stored)
        return await self.journal.park(
            token,
            trace_id=step.trace,
            node=step.node,
            payload=payload,
            entry_id=step.entry,
            rookery=rookery,
        )
