"""Journal calls encoded up front, shared by the journal implementations.

Every journal operation turns its arguments into these plain records *before*
it touches storage, in the caller's task: a value the codec rejects raises
``SerializationError`` while nothing is written, and the storage side (a SQLite
thread, a Redis script, the in-memory fake) only moves text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from penguiflow.journal import Input, Outgoing, StateUpdate, TraceStatus, encode_item

__all__ = [
    "EncodedInput",
    "EncodedOutgoing",
    "EncodedState",
    "EncodedStep",
    "derive_status",
    "encode_inputs",
]


@dataclass(frozen=True, slots=True)
class EncodedInput:
    edge: str
    item: str
    trace_id: str | None
    key: str | None
    deadline: float | None


@dataclass(frozen=True, slots=True)
class EncodedOutgoing:
    edge: str
    item: str
    trace_id: str | None
    deadline: float | None


@dataclass(frozen=True, slots=True)
class EncodedState:
    trace_id: str
    key: str
    value: str | None  # None: delete


@dataclass(frozen=True, slots=True)
class EncodedStep:
    trace_id: str | None
    consumed: int | None
    produced: tuple[EncodedOutgoing, ...]
    rookery: tuple[str, ...]
    state: tuple[EncodedState, ...]
    interrupts_used: tuple[str, ...]

    @classmethod
    def build(
        cls,
        trace_id: str | None,
        *,
        consumed: int | None,
        produced: Sequence[Outgoing | tuple[str, Any]],
        rookery: Sequence[Any],
        state: Sequence[StateUpdate],
        interrupts_used: Sequence[str],
    ) -> EncodedStep:
        outgoing = []
        for out in produced:
            if not isinstance(out, Outgoing):
                edge, item = out
                out = Outgoing(edge, item)
            outgoing.append(
                EncodedOutgoing(
                    out.edge,
                    encode_item(out.item),
                    trace_id if out.trace_id is None else out.trace_id,
                    out.deadline,
                )
            )
        updates = []
        for update in state:
            owner = trace_id if update.trace_id is None else update.trace_id
            if owner is None:
                raise ValueError(f"state update {update.key!r} has no trace to belong to")
            value = None if update.delete else encode_item(update.value)
            updates.append(EncodedState(owner, update.key, value))
        return cls(
            trace_id,
            consumed,
            tuple(outgoing),
            tuple(encode_item(item) for item in rookery),
            tuple(updates),
            tuple(interrupts_used),
        )


def encode_inputs(inputs: Sequence[Input]) -> list[EncodedInput]:
    """Encode every input (all or none: the first bad one raises)."""
    return [
        EncodedInput(i.edge, encode_item(i.item), i.trace_id, i.idempotency_key, i.deadline)
        for i in inputs
    ]


def derive_status(
    *, cancelled: bool, waiting: bool, running: bool, undelivered: bool
) -> TraceStatus:
    """The one rule every implementation uses to name a trace's status."""
    if cancelled:
        return "cancelled"
    if waiting:
        return "parked"
    if running:
        return "running"
    if undelivered:
        return "undelivered"
    return "finished"
