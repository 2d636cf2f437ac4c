"""The journal seam of durable flows: what must survive a kill -9, and its operations.

A durable flow writes to a ``Journal`` exactly what sits in its mailboxes and
decides a trace's outcome: accepted inputs (with their idempotency keys), the
entries waiting on each edge, join buckets and controller budgets (as per-trace
state), cancellations, Rookery items with a delivered mark, and interrupts.
Every operation is one transaction: it returns only once its data is committed,
and a failure (``penguiflow.errors.JournalError``) means none of it was stored.

Items are stored as text made by the item codec (``encode_item``: tagged JSON,
the encoding of ``penguiflow.distributed``); a value the codec cannot represent
raises ``penguiflow.errors.SerializationError`` before anything is journaled.
Records keep that text (``.item``); ``.decode()`` rebuilds the value.

This module is the model layer: records and the Protocol only, no runtime and no
storage code. Implementations: ``penguiflow.stores.SQLiteStateStore().journal``
and the in-memory ``penguiflow.testkit.InMemoryJournal``; the contract suite
``penguiflow.testkit.JOURNAL_CHECKS`` holds both to one behaviour.

.. versionadded:: 3.0

It stays one module past ~400 lines: one Protocol and its records, a seam read
as a whole by every implementation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "Acceptance",
    "EdgeEntry",
    "Input",
    "InterruptRecord",
    "Journal",
    "JournalSnapshot",
    "Outgoing",
    "RookeryEntry",
    "StateEntry",
    "StateUpdate",
    "StepResult",
    "TraceRecord",
    "TraceStatus",
    "decode_item",
    "encode_item",
    "journal_of",
]

TraceStatus = Literal["running", "parked", "undelivered", "cancelled", "finished"]
"""Where a journaled trace stands, derived from what the journal holds for it.

``running``: edge entries or state are left (or a resumed interrupt not yet
used); ``parked``: an interrupt waits for ``resume``; ``undelivered``: only
Rookery items not yet fetched are left; ``cancelled``: cancelled (a cancel
drops everything of the trace, its unfetched Rookery items included);
``finished``: nothing is left.

A trace with nothing left (``finished``, or ``cancelled`` and fully fetched) is
*settled*: ``load``, ``traces`` and ``unfinished_traces`` leave it out, while
its idempotency keys stay in the journal for good.

.. versionadded:: 3.0
"""


def encode_item(value: Any) -> str:
    """Encode ``value`` as journal text (tagged JSON, see ``penguiflow._codec``).

    Raises:
        penguiflow.errors.SerializationError: part of ``value`` has no JSON form
            (the error's ``path`` says where).

    .. versionadded:: 3.0
    """
    from penguiflow._codec import dumps

    return dumps(value)


def decode_item(text: str) -> Any:
    """Rebuild the value ``encode_item`` encoded.

    Raises:
        penguiflow.errors.SerializationError: a tagged type cannot be imported here.

    .. versionadded:: 3.0
    """
    from penguiflow._codec import loads

    return loads(text)


# --- what callers hand in ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Input:
    """One message a producer emits, as ``Journal.accept`` takes it.

    Args:
        edge: the ingress edge it enters the graph on (``"OpenSea->triage"``).
        item: the message itself (encoded by the journal).
        trace_id: its trace (``Message.trace_id``), ``None`` for a bare payload.
        idempotency_key: an input whose key the journal already holds is not
            added again (``None``: every input is new).
        deadline: absolute deadline (epoch seconds) of the message, if any.

    .. versionadded:: 3.0
    """

    edge: str
    item: Any
    trace_id: str | None = None
    idempotency_key: str | None = None
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One item a step puts on an edge (``Journal.commit_step(produced=...)``).

    ``trace_id=None`` means the step's own trace. A plain ``(edge, item)`` pair
    is the same as ``Outgoing(edge, item)``.

    .. versionadded:: 3.0
    """

    edge: str
    item: Any
    trace_id: str | None = None
    deadline: float | None = None


@dataclass(frozen=True, slots=True)
class StateUpdate:
    """Set (``value`` given) or delete (``delete=True``) one piece of per-trace state.

    The runtime names its own keys: ``"join:<node>"`` for a join bucket,
    ``"controller:<node>"`` for loop budgets and WM, and so on. ``trace_id=None``
    means the step's own trace.

    .. versionadded:: 3.0
    """

    key: str
    value: Any = None
    delete: bool = False
    trace_id: str | None = None


# --- what the journal returns ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Acceptance:
    """What ``accept`` did with one input, in input order.

    ``duplicate`` is true when the idempotency key was already journaled
    (running, finished or delivered); then ``entry_id`` is ``None`` and
    ``trace_id`` is the trace the key was first accepted for. ``cancelled`` is
    true when the input's trace was cancelled: nothing was added (a cancelled
    trace stays cancelled), but the key is kept.

    .. versionadded:: 3.0
    """

    trace_id: str | None
    entry_id: int | None
    duplicate: bool = False
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class StepResult:
    """The ids ``commit_step`` (or ``park``) gave to what it stored.

    ``entry_ids`` follow ``produced`` and ``rookery_ids`` follow ``rookery``;
    both are empty when the trace was cancelled (the step's outputs are dropped,
    its consumption still recorded: ``dropped`` is then true).

    .. versionadded:: 3.0
    """

    entry_ids: tuple[int, ...] = ()
    rookery_ids: tuple[int, ...] = ()
    dropped: bool = False


@dataclass(frozen=True, slots=True)
class EdgeEntry:
    """An item waiting on (or taken from) an edge. Entries of one edge are FIFO by ``id``.

    ``holder`` names the node that has the entry in hand (``Journal.hold``), and
    ``attempt`` its retry count; a held entry is handled again after a crash.

    .. versionadded:: 3.0
    """

    id: int
    edge: str
    trace_id: str | None
    item: str
    attempt: int = 0
    deadline: float | None = None
    holder: str | None = None

    def decode(self) -> Any:
        """The item as the producer gave it."""
        return decode_item(self.item)


@dataclass(frozen=True, slots=True)
class StateEntry:
    """One piece of per-trace state (a join bucket, a controller's budgets and WM).

    .. versionadded:: 3.0
    """

    trace_id: str
    key: str
    value: str

    def decode(self) -> Any:
        """The value as the runtime stored it."""
        return decode_item(self.value)


@dataclass(frozen=True, slots=True)
class RookeryEntry:
    """A final or stream chunk bound for ``fetch``, in journal order (``id``).

    .. versionadded:: 3.0
    """

    id: int
    trace_id: str | None
    item: str
    delivered: bool = False

    def decode(self) -> Any:
        """The item as the runtime stored it."""
        return decode_item(self.item)


@dataclass(frozen=True, slots=True)
class InterruptRecord:
    """A parked ``ctx.interrupt``: who waits, for what, and the value it resumes with.

    ``entry_id`` is the edge entry the node had in hand (re-run from the top
    after a crash); ``resume_value`` is encoded text once ``resume`` was called.

    .. versionadded:: 3.0
    """

    token: str
    trace_id: str | None
    node: str
    payload: str
    entry_id: int | None = None
    resume_value: str | None = None
    resumed: bool = False
    used: bool = False

    def decode_payload(self) -> Any:
        """The payload the node interrupted with."""
        return decode_item(self.payload)

    def decode_resume_value(self) -> Any:
        """The value ``resume`` stored (``None`` before that)."""
        return None if self.resume_value is None else decode_item(self.resume_value)


@dataclass(frozen=True, slots=True)
class TraceRecord:
    """A journaled trace and where it stands.

    .. versionadded:: 3.0
    """

    trace_id: str
    status: TraceStatus
    idempotency_keys: tuple[str, ...] = ()
    entries: int = 0
    undelivered: int = 0


@dataclass(frozen=True, slots=True)
class JournalSnapshot:
    """Everything unfinished in a journal, as ``load()`` returns it for recovery.

    ``entries`` are in journal order (so each edge's entries are FIFO);
    ``rookery`` holds the undelivered items in journal order; ``interrupts`` the
    unused ones in park order; ``traces`` every trace not settled.
    Cancelled traces have no entries, state or interrupts here.

    .. versionadded:: 3.0
    """

    entries: tuple[EdgeEntry, ...] = ()
    state: tuple[StateEntry, ...] = ()
    rookery: tuple[RookeryEntry, ...] = ()
    interrupts: tuple[InterruptRecord, ...] = ()
    traces: tuple[TraceRecord, ...] = field(default=())

    def edge(self, name: str) -> tuple[EdgeEntry, ...]:
        """The entries of one edge, oldest first."""
        return tuple(e for e in self.entries if e.edge == name)


# --- the seam -------------------------------------------------------------------------


@runtime_checkable
class Journal(Protocol):
    """The storage of durable flows; every method is one atomic transaction.

    Concurrent calls may share one commit (group commit); each still returns
    only once its own data is committed, and a failed commit fails every call
    it carried with ``JournalError``. Items are encoded before anything is
    written, so a ``SerializationError`` leaves the journal untouched.

    .. versionadded:: 3.0
    """

    async def accept(self, inputs: Sequence[Input]) -> list[Acceptance]:
        """Journal new inputs as edge entries; a known idempotency key is reported, not added."""
        ...

    async def hold(self, entry_id: int, *, node: str, attempt: int = 0) -> None:
        """Record that ``node`` has the entry in hand at retry ``attempt``.

        Raises ``JournalConflict`` if the entry is not in the journal.
        """
        ...

    async def commit_step(
        self,
        trace_id: str | None,
        *,
        consumed: int | None = None,
        produced: Sequence[Outgoing | tuple[str, Any]] = (),
        rookery: Sequence[Any] = (),
        state: Sequence[StateUpdate] = (),
        interrupts_used: Sequence[str] = (),
    ) -> StepResult:
        """Record one step of ``trace_id``: its input consumed and its outputs, together.

        Raises ``JournalConflict`` (nothing stored) if ``consumed`` is not in the
        journal and the trace is not cancelled; ``InterruptTokenError`` if a
        token in ``interrupts_used`` is unknown or already used.
        """
        ...

    async def mark_delivered(self, rookery_id: int) -> bool:
        """Mark a Rookery item delivered; ``False`` if it already was (deliver it once)."""
        ...

    async def park(
        self,
        token: str,
        *,
        trace_id: str | None,
        node: str,
        payload: Any,
        entry_id: int | None = None,
        rookery: Sequence[Any] = (),
    ) -> StepResult:
        """Journal an interrupt (and its Rookery items, e.g. the ``Interrupt`` notice)."""
        ...

    async def resume(self, token: str, value: Any) -> InterruptRecord:
        """Store the value a parked interrupt resumes with; returns the updated record.

        Raises ``InterruptTokenError`` if the token is unknown, resumed or used.
        """
        ...

    async def cancel(self, trace_id: str) -> bool:
        """Cancel a trace for good; ``False`` if it already was.

        Its entries, state and interrupts go, and its Rookery items not fetched
        yet are marked delivered (a cancel drops them from Rookery), so nothing
        of it is handed out again after ``recover``.
        """
        ...

    async def load(self) -> JournalSnapshot:
        """Everything unfinished, in journal order (what ``recover`` puts back)."""
        ...

    async def traces(self, *, include_finished: bool = False) -> list[TraceRecord]:
        """The traces not settled (or all: ``include_finished``), oldest first."""
        ...

    async def unfinished_traces(self) -> list[str]:
        """Ids of the traces not settled, oldest first."""
        ...

    async def parked_traces(self) -> list[str]:
        """Ids of the traces with an interrupt waiting for ``resume``."""
        ...


def journal_of(store: object) -> Journal:
    """Return the journal of ``store`` (its ``journal`` attribute, or itself).

    Raises:
        TypeError: the store keeps no journal (it names the store's type), so a
            durable flow cannot run on it.

    .. versionadded:: 3.0
    """
    candidate = getattr(store, "journal", store)
    if isinstance(candidate, Journal):
        return candidate
    kind = type(store)
    raise TypeError(
        f"{kind.__module__}.{kind.__qualname__} keeps no journal, so a durable flow "
        "cannot use it; use penguiflow.stores.SQLiteStateStore (or a store whose "
        "'journal' attribute implements penguiflow.journal.Journal)"
    )
