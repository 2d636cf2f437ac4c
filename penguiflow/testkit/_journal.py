"""``InMemoryJournal``: the journal of durable flows kept in dicts, for tests.

It passes the journal contract suite (``penguiflow.testkit.JOURNAL_CHECKS``)
that the SQLite journal passes, so a runtime test written against it holds for
the real one. Each operation checks everything first and then applies its
changes without awaiting, so it is atomic for every task of the loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from penguiflow._journal_steps import EncodedStep, derive_status, encode_inputs
from penguiflow.errors import InterruptTokenError, JournalConflict, JournalError, JournalInUse
from penguiflow.journal import (
    Acceptance,
    EdgeEntry,
    Input,
    InterruptRecord,
    JournalSnapshot,
    Outgoing,
    RookeryEntry,
    StateEntry,
    StateUpdate,
    StepResult,
    TraceRecord,
    encode_item,
)

__all__ = ["InMemoryJournal"]


@dataclass(slots=True)
class _Trace:
    cancelled: bool = False
    keys: list[str] = field(default_factory=list)


class InMemoryJournal:
    """A ``penguiflow.journal.Journal`` in memory (lost with the object).

    Attributes:
        fail_with: when set, every write raises ``JournalError`` from it and
            stores nothing (reads still work), to test that a failing journal
            fails the caller.
        commits: how many writes were applied.

    .. versionadded:: 3.0
    """

    def __init__(self) -> None:
        self.fail_with: BaseException | None = None
        self.commits = 0
        self._traces: dict[str, _Trace] = {}
        self._keys: dict[str, str | None] = {}
        self._entries: dict[int, EdgeEntry] = {}
        self._state: dict[tuple[str, str], str] = {}
        self._rookery: dict[int, RookeryEntry] = {}
        self._interrupts: dict[str, InterruptRecord] = {}
        self._next_entry = 1
        self._next_rookery = 1
        self._claimed = False

    def __repr__(self) -> str:
        return f"InMemoryJournal(traces={len(self._traces)}, entries={len(self._entries)})"

    def claim(self) -> None:
        """Make the calling durable flow the journal's one owner, as the stores do.

        Raises:
            penguiflow.errors.JournalInUse: a durable flow that is still running owns it.
        """
        if self._claimed:
            raise JournalInUse(
                "this InMemoryJournal is owned by a durable flow that is still running: "
                "stop it before running another"
            )
        self._claimed = True

    def unclaim(self) -> None:
        """Let go of the journal (``stop()`` of its flow); no-op if not claimed."""
        self._claimed = False

    # --- helpers --------------------------------------------------------------------

    def _write(self) -> None:
        if self.fail_with is not None:
            raise JournalError(f"journal write failed: {self.fail_with}") from self.fail_with
        self.commits += 1

    def _trace(self, trace_id: str | None) -> _Trace | None:
        if trace_id is None:
            return None
        return self._traces.setdefault(trace_id, _Trace())

    def _cancelled(self, trace_id: str | None) -> bool:
        trace = self._traces.get(trace_id) if trace_id is not None else None
        return trace is not None and trace.cancelled

    def _add_entry(self, edge: str, trace_id: str | None, item: str, deadline: float | None) -> int:
        entry_id = self._next_entry
        self._next_entry += 1
        self._trace(trace_id)
        self._entries[entry_id] = EdgeEntry(entry_id, edge, trace_id, item, 0, deadline)
        return entry_id

    def _add_rookery(self, trace_id: str | None, items: Sequence[str]) -> tuple[int, ...]:
        ids = []
        for item in items:
            ids.append(self._next_rookery)
            self._rookery[self._next_rookery] = RookeryEntry(self._next_rookery, trace_id, item)
            self._next_rookery += 1
        return tuple(ids)

    def _record(self, trace_id: str) -> tuple[TraceRecord, bool]:
        trace = self._traces[trace_id]
        entries = sum(1 for e in self._entries.values() if e.trace_id == trace_id)
        undelivered = sum(
            1 for r in self._rookery.values() if r.trace_id == trace_id and not r.delivered
        )
        interrupts = [i for i in self._interrupts.values() if i.trace_id == trace_id and not i.used]
        has_state = any(owner == trace_id for owner, _ in self._state)
        status = derive_status(
            cancelled=trace.cancelled,
            waiting=any(not i.resumed for i in interrupts),
            running=bool(entries) or has_state or bool(interrupts),
            undelivered=bool(undelivered),
        )
        settled = not (entries or has_state or interrupts or undelivered)
        record = TraceRecord(trace_id, status, tuple(trace.keys), entries, undelivered)
        return record, settled

    # --- Journal --------------------------------------------------------------------

    async def accept(self, inputs: Sequence[Input]) -> list[Acceptance]:
        """Journal new inputs; a known idempotency key is reported, not added."""
        encoded = encode_inputs(inputs)
        self._write()
        results = []
        for item in encoded:
            if item.key is not None and item.key in self._keys:
                results.append(Acceptance(self._keys[item.key], None, duplicate=True))
                continue
            if item.key is not None:
                self._keys[item.key] = item.trace_id
                trace = self._trace(item.trace_id)
                if trace is not None:
                    trace.keys.append(item.key)
            if self._cancelled(item.trace_id):
                results.append(Acceptance(item.trace_id, None, cancelled=True))
                continue
            entry_id = self._add_entry(item.edge, item.trace_id, item.item, item.deadline)
            results.append(Acceptance(item.trace_id, entry_id))
        return results

    async def hold(self, entry_id: int, *, node: str, attempt: int = 0) -> None:
        """Record that ``node`` has the entry in hand at retry ``attempt``."""
        if entry_id not in self._entries:
            raise JournalConflict(f"edge entry {entry_id} is not in the journal", entry_id=entry_id)
        self._write()
        self._entries[entry_id] = replace(self._entries[entry_id], holder=node, attempt=attempt)

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
        """Record one step: its input consumed and its outputs, together."""
        step = EncodedStep.build(
            trace_id,
            consumed=consumed,
            produced=produced,
            rookery=rookery,
            state=state,
            interrupts_used=interrupts_used,
        )
        if self._cancelled(trace_id):
            self._write()
            if consumed is not None:
                self._entries.pop(consumed, None)
            return StepResult(dropped=True)
        if consumed is not None and consumed not in self._entries:
            raise JournalConflict(
                f"edge entry {consumed} is not in the journal (consumed already?)",
                entry_id=consumed,
            )
        for token in step.interrupts_used:
            record = self._interrupts.get(token)
            if record is None or record.used:
                raise InterruptTokenError(
                    f"interrupt token {token!r} is unknown or already used", token=token
                )
        self._write()
        if consumed is not None:
            del self._entries[consumed]
        entry_ids = tuple(
            self._add_entry(out.edge, out.trace_id, out.item, out.deadline) for out in step.produced
        )
        self._trace(trace_id)
        rookery_ids = self._add_rookery(trace_id, step.rookery)
        for update in step.state:
            self._trace(update.trace_id)
            if update.value is None:
                self._state.pop((update.trace_id, update.key), None)
            else:
                self._state[(update.trace_id, update.key)] = update.value
        for token in step.interrupts_used:
            self._interrupts[token] = replace(self._interrupts[token], used=True)
        return StepResult(entry_ids, rookery_ids)

    async def mark_delivered(self, rookery_id: int) -> bool:
        """Mark a Rookery item delivered; ``False`` if it already was."""
        entry = self._rookery.get(rookery_id)
        if entry is None:
            raise JournalError(f"Rookery item {rookery_id} is not in the journal")
        if entry.delivered:
            return False
        self._write()
        self._rookery[rookery_id] = replace(entry, delivered=True)
        return True

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
        """Journal an interrupt and its Rookery items."""
        encoded = encode_item(payload)
        items = [encode_item(item) for item in rookery]
        if token in self._interrupts:
            raise InterruptTokenError(f"interrupt token {token!r} is already parked", token=token)
        if self._cancelled(trace_id):
            return StepResult(dropped=True)
        if entry_id is not None and entry_id not in self._entries:
            raise JournalConflict(f"edge entry {entry_id} is not in the journal", entry_id=entry_id)
        self._write()
        self._trace(trace_id)
        self._interrupts[token] = InterruptRecord(token, trace_id, node, encoded, entry_id)
        return StepResult(rookery_ids=self._add_rookery(trace_id, items))

    async def resume(self, token: str, value: Any) -> InterruptRecord:
        """Store the value a parked interrupt resumes with."""
        encoded = encode_item(value)
        record = self._interrupts.get(token)
        if record is None or record.resumed or record.used:
            state = "unknown" if record is None else "already resumed"
            raise InterruptTokenError(f"interrupt token {token!r} is {state}", token=token)
        self._write()
        record = replace(record, resume_value=encoded, resumed=True)
        self._interrupts[token] = record
        return record

    async def cancel(self, trace_id: str) -> bool:
        """Cancel a trace for good; ``False`` if it already was."""
        if self._cancelled(trace_id):
            return False
        self._write()
        trace = self._trace(trace_id)
        assert trace is not None
        trace.cancelled = True
        for entry_id in [i for i, e in self._entries.items() if e.trace_id == trace_id]:
            del self._entries[entry_id]
        for key in [k for k in self._state if k[0] == trace_id]:
            del self._state[key]
        for token in [t for t, i in self._interrupts.items() if i.trace_id == trace_id]:
            del self._interrupts[token]
        # Its Rookery items not fetched yet are dropped, as cancel drops them from
        # Rookery: marked delivered, so recover() never hands them out.
        for rookery_id, entry in list(self._rookery.items()):
            if entry.trace_id == trace_id and not entry.delivered:
                self._rookery[rookery_id] = replace(entry, delivered=True)
        return True

    async def load(self) -> JournalSnapshot:
        """Everything unfinished, in journal order."""
        return JournalSnapshot(
            entries=tuple(self._entries.values()),
            state=tuple(StateEntry(t, k, v) for (t, k), v in self._state.items()),
            rookery=tuple(r for r in self._rookery.values() if not r.delivered),
            interrupts=tuple(i for i in self._interrupts.values() if not i.used),
            traces=tuple(await self.traces()),
        )

    async def traces(self, *, include_finished: bool = False) -> list[TraceRecord]:
        """The traces with something left (or all: ``include_finished``), oldest first."""
        records = [self._record(trace_id) for trace_id in self._traces]
        return [r for r, settled in records if include_finished or not settled]

    async def unfinished_traces(self) -> list[str]:
        """Ids of the traces with something left, oldest first."""
        return [r.trace_id for r in await self.traces()]

    async def parked_traces(self) -> list[str]:
        """Ids of the traces with an interrupt waiting for ``resume``."""
        return [r.trace_id for r in await self.traces() if r.status == "parked"]
