"""The contract suite of ``penguiflow.journal.Journal`` implementations: one suite, any journal.

The in-memory fake, the SQLite journal (and any third party's) run the same
checks. Each check is a coroutine function taking a fresh, empty journal and
raising ``AssertionError`` on a violation, so the suite works under pytest
(parametrize over ``JOURNAL_CHECKS``) or alone (``await check_journal(factory)``).
The module is long because it is one list of checks, read top to bottom.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from penguiflow.errors import (
    InterruptTokenError,
    JournalConflict,
    JournalError,
    SerializationError,
)
from penguiflow.journal import (
    EdgeEntry,
    Input,
    Journal,
    Outgoing,
    StateUpdate,
    journal_of,
)
from penguiflow.testkit._contracts import _build, _close
from penguiflow.types import Headers, Message

__all__ = ["JOURNAL_CHECKS", "check_journal", "check_journal_reopen"]

JournalCheck = Callable[[Journal], Awaitable[None]]
JournalFactory = Callable[[], Any]


def _message(trace_id: str, n: int = 0) -> Message:
    return Message(
        payload={"n": n, "text": "héllo", "rows": [1, 2.5, None, True]},
        headers=Headers(tenant="acme", topic="orders"),
        trace_id=trace_id,
        ts=1_700_000_000.0 + n,
        deadline_s=1_900_000_000.0 + n,
        meta={"attempt": n, "tags": ("a", "b")},
    )


def _input(trace_id: str, n: int = 0, *, key: str | None = None, edge: str = "ingress") -> Input:
    return Input(edge, _message(trace_id, n), trace_id=trace_id, idempotency_key=key)


async def _expect(error: type[BaseException], call: Awaitable[Any]) -> BaseException:
    try:
        await call
    except error as exc:
        return exc
    raise AssertionError(f"expected {error.__name__}")


async def _one_entry(journal: Journal, trace_id: str, **kwargs: Any) -> EdgeEntry:
    (accepted,) = await journal.accept([_input(trace_id, **kwargs)])
    assert accepted.entry_id is not None
    snapshot = await journal.load()
    return next(e for e in snapshot.entries if e.id == accepted.entry_id)


async def _status(journal: Journal, trace_id: str) -> str:
    for record in await journal.traces(include_finished=True):
        if record.trace_id == trace_id:
            return record.status
    raise AssertionError(f"trace {trace_id!r} is not journaled")


# --- accept ---------------------------------------------------------------------------


async def journal_satisfies_protocol(journal: Journal) -> None:
    """The journal is a ``Journal`` (structurally), and ``journal_of`` finds it."""
    assert isinstance(journal, Journal), f"{journal!r} lacks a Journal method"
    assert journal_of(journal) is journal


async def empty_journal_loads_nothing(journal: Journal) -> None:
    """A fresh journal has no entries, state, Rookery items, interrupts or traces."""
    snapshot = await journal.load()
    assert (snapshot.entries, snapshot.state, snapshot.rookery) == ((), (), ())
    assert (snapshot.interrupts, snapshot.traces) == ((), ())
    assert await journal.unfinished_traces() == []
    assert await journal.parked_traces() == []


async def accepted_input_round_trips(journal: Journal) -> None:
    """An accepted message reads back as an edge entry: edge, trace, deadline, the message."""
    message = _message("j-rt", 3)
    (accepted,) = await journal.accept(
        [Input("OpenSea->a", message, trace_id="j-rt", deadline=message.deadline_s)]
    )
    assert (accepted.trace_id, accepted.duplicate, accepted.cancelled) == ("j-rt", False, False)
    (entry,) = (await journal.load()).entries
    assert (entry.id, entry.edge, entry.trace_id) == (accepted.entry_id, "OpenSea->a", "j-rt")
    assert (entry.attempt, entry.deadline, entry.holder) == (0, message.deadline_s, None)
    decoded = entry.decode()
    assert isinstance(decoded, Message)
    assert decoded == message


async def entries_of_an_edge_are_fifo(journal: Journal) -> None:
    """Entries read back in acceptance order per edge, with rising ids."""
    inputs = [_input(f"j-fifo-{n}", n, edge="a" if n % 2 else "b") for n in range(8)]
    accepted = await journal.accept(inputs)
    ids = [a.entry_id for a in accepted if a.entry_id is not None]
    assert len(ids) == len(inputs)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    snapshot = await journal.load()
    assert [e.trace_id for e in snapshot.edge("a")] == [f"j-fifo-{n}" for n in (1, 3, 5, 7)]
    assert [e.trace_id for e in snapshot.edge("b")] == [f"j-fifo-{n}" for n in (0, 2, 4, 6)]


async def known_key_is_reported_not_added(journal: Journal) -> None:
    """A second input with a journaled key is a duplicate naming the first trace."""
    await journal.accept([_input("j-key", key="order-17")])
    (again,) = await journal.accept([_input("j-key-resent", key="order-17")])
    assert (again.duplicate, again.entry_id, again.trace_id) == (True, None, "j-key")
    assert len((await journal.load()).entries) == 1


async def key_outlives_the_finished_trace(journal: Journal) -> None:
    """After a trace finished (and its final was delivered) its key still dedups."""
    entry = await _one_entry(journal, "j-done", key="k-done")
    result = await journal.commit_step("j-done", consumed=entry.id, rookery=["final"])
    assert await _status(journal, "j-done") == "undelivered"
    assert await journal.mark_delivered(result.rookery_ids[0]) is True
    assert await _status(journal, "j-done") == "finished"
    (again,) = await journal.accept([_input("j-done-2", key="k-done")])
    assert again.duplicate
    assert again.trace_id == "j-done"
    assert (await journal.load()).entries == ()


async def duplicate_key_in_one_call_is_added_once(journal: Journal) -> None:
    """Two inputs with one key in the same ``accept``: the first is added, the second not."""
    first, second = await journal.accept(
        [_input("j-one-a", key="same"), _input("j-one-b", key="same")]
    )
    assert not first.duplicate
    assert second.duplicate
    assert second.trace_id == "j-one-a"


async def concurrent_accepts_of_one_key_add_it_once(journal: Journal) -> None:
    """Producers racing with one key: exactly one input is added."""
    results = await asyncio.gather(
        *(journal.accept([_input(f"j-race-{n}", n, key="raced")]) for n in range(20))
    )
    added = [r[0] for r in results if not r[0].duplicate]
    assert len(added) == 1
    assert all(r[0].trace_id == added[0].trace_id for r in results)
    assert len((await journal.load()).entries) == 1


async def unserialisable_input_journals_nothing(journal: Journal) -> None:
    """One bad input fails the whole ``accept`` with SerializationError; nothing is stored."""
    bad = Input("ingress", {"socket": object()}, trace_id="j-bad", idempotency_key="k-bad")
    error = await _expect(SerializationError, journal.accept([_input("j-good"), bad]))
    assert "socket" in getattr(error, "path", "")
    assert (await journal.load()).entries == ()
    (retry,) = await journal.accept([_input("j-bad", key="k-bad")])
    assert not retry.duplicate  # the key was not kept either


async def accepting_nothing_returns_nothing(journal: Journal) -> None:
    """``accept([])`` returns an empty list and stores nothing."""
    assert await journal.accept([]) == []
    assert (await journal.load()).entries == ()


async def traceless_input_is_journaled(journal: Journal) -> None:
    """A bare payload (no trace) is an edge entry that belongs to no trace."""
    (accepted,) = await journal.accept([Input("ingress", "bare")])
    (entry,) = (await journal.load()).entries
    assert (entry.id, entry.trace_id, entry.decode()) == (accepted.entry_id, None, "bare")
    assert await journal.unfinished_traces() == []


# --- steps ----------------------------------------------------------------------------


async def step_consumes_and_produces_together(journal: Journal) -> None:
    """After a step, its input is gone and its outputs wait on their edges, in order."""
    entry = await _one_entry(journal, "j-step")
    result = await journal.commit_step(
        "j-step",
        consumed=entry.id,
        produced=[("a->b", {"x": 1}), Outgoing("a->c", _message("j-step", 9), deadline=5.0)],
    )
    assert len(result.entry_ids) == 2
    assert not result.dropped
    snapshot = await journal.load()
    assert [e.id for e in snapshot.entries] == list(result.entry_ids)
    first, second = snapshot.entries
    assert (first.edge, first.trace_id, first.decode()) == ("a->b", "j-step", {"x": 1})
    assert (second.edge, second.deadline, second.decode()) == ("a->c", 5.0, _message("j-step", 9))


async def output_may_start_another_trace(journal: Journal) -> None:
    """An output with its own ``trace_id`` joins that trace, not the step's."""
    entry = await _one_entry(journal, "j-parent")
    await journal.commit_step(
        "j-parent", consumed=entry.id, produced=[Outgoing("a->b", 1, trace_id="j-child")]
    )
    (child,) = (await journal.load()).entries
    assert child.trace_id == "j-child"
    assert await journal.unfinished_traces() == ["j-child"]


async def consuming_a_consumed_entry_conflicts(journal: Journal) -> None:
    """A second step consuming the same entry raises JournalConflict and stores nothing."""
    entry = await _one_entry(journal, "j-twice")
    await journal.commit_step("j-twice", consumed=entry.id, produced=[("a->b", 1)])
    error = await _expect(
        JournalConflict,
        journal.commit_step("j-twice", consumed=entry.id, produced=[("a->b", 2)]),
    )
    assert getattr(error, "entry_id", None) == entry.id
    assert [e.decode() for e in (await journal.load()).entries] == [1]


async def racing_consumers_of_one_entry_commit_once(journal: Journal) -> None:
    """Concurrent steps consuming one entry: one commits, the others conflict."""
    entry = await _one_entry(journal, "j-race-step")
    outcomes = await asyncio.gather(
        *(
            journal.commit_step("j-race-step", consumed=entry.id, produced=[("a->b", n)])
            for n in range(6)
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert sum(isinstance(o, JournalConflict) for o in outcomes) == 5
    assert len((await journal.load()).entries) == 1


async def concurrent_steps_all_commit(journal: Journal) -> None:
    """Many steps issued at once (a group commit) are all stored, each fully."""
    accepted = await journal.accept([_input(f"j-conc-{n}", n) for n in range(40)])
    results = await asyncio.gather(
        *(
            journal.commit_step(
                a.trace_id,
                consumed=a.entry_id,
                produced=[("x->y", n), ("x->z", n)],
                state=[StateUpdate("count", n)],
            )
            for n, a in enumerate(accepted)
        )
    )
    assert all(len(r.entry_ids) == 2 for r in results)
    snapshot = await journal.load()
    assert sorted(e.decode() for e in snapshot.edge("x->y")) == list(range(40))
    assert sorted(e.decode() for e in snapshot.edge("x->z")) == list(range(40))
    assert sorted(s.decode() for s in snapshot.state) == list(range(40))


async def unserialisable_output_stores_nothing(journal: Journal) -> None:
    """A step whose output cannot be encoded raises SerializationError; its input stays."""
    entry = await _one_entry(journal, "j-bad-out")
    await _expect(
        SerializationError,
        journal.commit_step("j-bad-out", consumed=entry.id, produced=[("a->b", object())]),
    )
    await _expect(
        SerializationError,
        journal.commit_step("j-bad-out", consumed=entry.id, state=[StateUpdate("k", object())]),
    )
    assert [e.id for e in (await journal.load()).entries] == [entry.id]


async def hold_records_holder_and_attempt(journal: Journal) -> None:
    """``hold`` marks the entry in hand with its retry count; an unknown entry conflicts."""
    entry = await _one_entry(journal, "j-hold")
    await journal.hold(entry.id, node="worker", attempt=2)
    (held,) = (await journal.load()).entries
    assert (held.id, held.holder, held.attempt, held.item) == (entry.id, "worker", 2, entry.item)
    await _expect(JournalConflict, journal.hold(entry.id + 1000, node="worker"))


async def state_is_set_replaced_and_deleted(journal: Journal) -> None:
    """Per-trace state: the last value wins, delete removes it, other traces keep theirs."""
    a = await _one_entry(journal, "j-state-a")
    b = await _one_entry(journal, "j-state-b")
    await journal.commit_step(
        "j-state-a",
        consumed=a.id,
        state=[StateUpdate("join:j", [1]), StateUpdate("join:j", [1, 2])],
    )
    await journal.commit_step(
        "j-state-b", consumed=b.id, state=[StateUpdate("controller:c", {"hops": 3})]
    )
    state = {(s.trace_id, s.key): s.decode() for s in (await journal.load()).state}
    assert state == {("j-state-a", "join:j"): [1, 2], ("j-state-b", "controller:c"): {"hops": 3}}
    assert await _status(journal, "j-state-a") == "running"  # a bucket keeps it alive
    await journal.commit_step("j-state-a", state=[StateUpdate("join:j", delete=True)])
    assert [(s.trace_id, s.key) for s in (await journal.load()).state] == [
        ("j-state-b", "controller:c")
    ]
    assert await _status(journal, "j-state-a") == "finished"


async def state_without_a_trace_is_refused(journal: Journal) -> None:
    """A state update that belongs to no trace raises ValueError before anything is stored."""
    entry = await _one_entry(journal, "j-notrace")
    await _expect(
        ValueError, journal.commit_step(None, consumed=entry.id, state=[StateUpdate("k", 1)])
    )
    assert len((await journal.load()).entries) == 1


# --- Rookery --------------------------------------------------------------------------


async def rookery_items_keep_order_until_delivered(journal: Journal) -> None:
    """Chunks and the final read back in order; each is delivered once."""
    entry = await _one_entry(journal, "j-rook")
    first = await journal.commit_step(
        "j-rook", consumed=entry.id, produced=[("a->b", 0)], rookery=["chunk-0", "chunk-1"]
    )
    (pending,) = first.entry_ids
    second = await journal.commit_step("j-rook", consumed=pending, rookery=["final"])
    snapshot = await journal.load()
    assert [r.decode() for r in snapshot.rookery] == ["chunk-0", "chunk-1", "final"]
    assert [r.id for r in snapshot.rookery] == [*first.rookery_ids, *second.rookery_ids]
    assert all(r.trace_id == "j-rook" and not r.delivered for r in snapshot.rookery)
    chunk = first.rookery_ids[0]
    assert await journal.mark_delivered(chunk) is True
    assert await journal.mark_delivered(chunk) is False  # a second fetch gets nothing
    assert [r.decode() for r in (await journal.load()).rookery] == ["chunk-1", "final"]


async def racing_deliveries_deliver_once(journal: Journal) -> None:
    """Concurrent ``mark_delivered`` of one item: exactly one gets ``True``."""
    entry = await _one_entry(journal, "j-deliver")
    (rid,) = (await journal.commit_step("j-deliver", consumed=entry.id, rookery=[1])).rookery_ids
    marks = await asyncio.gather(*(journal.mark_delivered(rid) for _ in range(8)))
    assert sorted(marks) == [False] * 7 + [True]


async def unknown_rookery_item_is_an_error(journal: Journal) -> None:
    """``mark_delivered`` of an id never journaled raises JournalError."""
    await _expect(JournalError, journal.mark_delivered(424242))


# --- trace status, cancellation -------------------------------------------------------


async def trace_status_follows_what_is_left(journal: Journal) -> None:
    """running (entries) -> undelivered (final fetched not yet) -> finished (settled)."""
    entry = await _one_entry(journal, "j-life", key="life")
    assert await _status(journal, "j-life") == "running"
    (record,) = await journal.traces()
    assert (record.trace_id, record.idempotency_keys, record.entries) == ("j-life", ("life",), 1)
    result = await journal.commit_step("j-life", consumed=entry.id, rookery=["done"])
    (record,) = await journal.traces()
    assert (record.status, record.entries, record.undelivered) == ("undelivered", 0, 1)
    await journal.mark_delivered(result.rookery_ids[0])
    assert await journal.traces() == []
    assert await journal.unfinished_traces() == []
    assert [r.trace_id for r in await journal.traces(include_finished=True)] == ["j-life"]


async def unfinished_traces_are_listed_oldest_first(journal: Journal) -> None:
    """``unfinished_traces`` lists every live trace in the order the journal met them."""
    for n in range(4):
        await journal.accept([_input(f"j-list-{n}", n)])
    entry = (await journal.load()).entries[1]
    await journal.commit_step("j-list-1", consumed=entry.id)  # j-list-1 finishes
    assert await journal.unfinished_traces() == ["j-list-0", "j-list-2", "j-list-3"]
    assert [t.trace_id for t in (await journal.load()).traces] == [
        "j-list-0",
        "j-list-2",
        "j-list-3",
    ]


async def cancelled_trace_stays_cancelled(journal: Journal) -> None:
    """Cancel drops entries, state, interrupts and unfetched Rookery items; nothing comes back."""
    a = await _one_entry(journal, "j-cancel", key="k-cancel")
    step = await journal.commit_step(
        "j-cancel",
        consumed=a.id,
        produced=[("a->b", 1), ("a->c", 2)],
        rookery=["chunk"],
        state=[StateUpdate("join:j", [1])],
    )
    await journal.park("tok-cancel", trace_id="j-cancel", node="n", payload="?")
    await journal.accept([_input("j-other")])
    assert await journal.cancel("j-cancel") is True
    assert await journal.cancel("j-cancel") is False
    snapshot = await journal.load()
    assert [e.trace_id for e in snapshot.entries] == ["j-other"]
    assert (snapshot.state, snapshot.interrupts, snapshot.rookery) == ((), (), ())
    assert await journal.mark_delivered(step.rookery_ids[0]) is False  # dropped, not fetched
    # A node that had an entry in hand finishes after the cancel: its outputs are dropped.
    late = await journal.commit_step(
        "j-cancel", consumed=step.entry_ids[0], produced=[("b->c", 3)], rookery=["late"]
    )
    assert late.dropped
    assert late.entry_ids == ()
    assert late.rookery_ids == ()
    (again,) = await journal.accept([_input("j-cancel", 5)])
    assert again.cancelled
    assert again.entry_id is None
    (keyed,) = await journal.accept([_input("j-cancel", 6, key="k-cancel")])
    assert keyed.duplicate
    parked = await journal.park("tok-late", trace_id="j-cancel", node="n", payload="?")
    assert parked.dropped
    assert [e.trace_id for e in (await journal.load()).entries] == ["j-other"]
    assert "j-cancel" not in await journal.unfinished_traces()
    assert await _status(journal, "j-cancel") == "cancelled"


async def cancel_of_an_unknown_trace_holds_for_later_inputs(journal: Journal) -> None:
    """Cancelling a trace before it arrives keeps its later inputs out."""
    assert await journal.cancel("j-early") is True
    (accepted,) = await journal.accept([_input("j-early")])
    assert accepted.cancelled
    assert (await journal.load()).entries == ()


# --- interrupts -----------------------------------------------------------------------


async def interrupt_parks_resumes_and_is_used_once(journal: Journal) -> None:
    """park -> parked trace; resume stores the value; the step that used it retires it."""
    entry = await _one_entry(journal, "j-int")
    parked = await journal.park(
        "tok-1",
        trace_id="j-int",
        node="approve",
        payload={"question": "ship it?"},
        entry_id=entry.id,
        rookery=[{"interrupt": "tok-1"}],
    )
    assert len(parked.rookery_ids) == 1
    assert await journal.parked_traces() == ["j-int"]
    assert await _status(journal, "j-int") == "parked"
    (record,) = (await journal.load()).interrupts
    assert (record.token, record.trace_id, record.node, record.entry_id) == (
        "tok-1",
        "j-int",
        "approve",
        entry.id,
    )
    assert record.decode_payload() == {"question": "ship it?"}
    assert (record.resumed, record.used, record.decode_resume_value()) == (False, False, None)
    resumed = await journal.resume("tok-1", {"answer": "yes"})
    assert resumed.resumed
    assert resumed.decode_resume_value() == {"answer": "yes"}
    assert await journal.parked_traces() == []
    assert await _status(journal, "j-int") == "running"
    (stored,) = (await journal.load()).interrupts
    assert stored.decode_resume_value() == {"answer": "yes"}
    await _expect(InterruptTokenError, journal.resume("tok-1", "again"))
    await journal.commit_step("j-int", consumed=entry.id, interrupts_used=["tok-1"])
    assert (await journal.load()).interrupts == ()
    error = await _expect(InterruptTokenError, journal.resume("tok-1", "late"))
    assert getattr(error, "token", None) == "tok-1"


async def unknown_interrupt_token_is_an_error(journal: Journal) -> None:
    """resume of an unknown token, or a step using one, raises InterruptTokenError."""
    await _expect(InterruptTokenError, journal.resume("tok-nope", 1))
    entry = await _one_entry(journal, "j-int-bad")
    await _expect(
        InterruptTokenError,
        journal.commit_step("j-int-bad", consumed=entry.id, interrupts_used=["tok-nope"]),
    )
    assert [e.id for e in (await journal.load()).entries] == [entry.id]  # nothing applied


async def interrupt_token_is_parked_once(journal: Journal) -> None:
    """Parking a token twice raises InterruptTokenError; an unknown entry conflicts."""
    await journal.park("tok-dup", trace_id="j-dup", node="n", payload=1)
    await _expect(
        InterruptTokenError, journal.park("tok-dup", trace_id="j-dup", node="n", payload=2)
    )
    await _expect(
        JournalConflict,
        journal.park("tok-other", trace_id="j-dup", node="n", payload=2, entry_id=999_999),
    )
    assert [i.token for i in (await journal.load()).interrupts] == ["tok-dup"]


async def unserialisable_interrupt_values_store_nothing(journal: Journal) -> None:
    """An interrupt payload or resume value the codec rejects raises SerializationError."""
    await _expect(
        SerializationError,
        journal.park("tok-bad", trace_id="j-bad-int", node="n", payload=object()),
    )
    await journal.park("tok-ok", trace_id="j-bad-int", node="n", payload=1)
    await _expect(SerializationError, journal.resume("tok-ok", object()))
    (record,) = (await journal.load()).interrupts
    assert (record.token, record.resumed) == ("tok-ok", False)


JOURNAL_CHECKS: Mapping[str, JournalCheck] = {
    fn.__name__: fn
    for fn in (
        journal_satisfies_protocol,
        empty_journal_loads_nothing,
        accepted_input_round_trips,
        entries_of_an_edge_are_fifo,
        known_key_is_reported_not_added,
        key_outlives_the_finished_trace,
        duplicate_key_in_one_call_is_added_once,
        concurrent_accepts_of_one_key_add_it_once,
        unserialisable_input_journals_nothing,
        accepting_nothing_returns_nothing,
        traceless_input_is_journaled,
        step_consumes_and_produces_together,
        output_may_start_another_trace,
        consuming_a_consumed_entry_conflicts,
        racing_consumers_of_one_entry_commit_once,
        concurrent_steps_all_commit,
        unserialisable_output_stores_nothing,
        hold_records_holder_and_attempt,
        state_is_set_replaced_and_deleted,
        state_without_a_trace_is_refused,
        rookery_items_keep_order_until_delivered,
        racing_deliveries_deliver_once,
        unknown_rookery_item_is_an_error,
        trace_status_follows_what_is_left,
        unfinished_traces_are_listed_oldest_first,
        cancelled_trace_stays_cancelled,
        cancel_of_an_unknown_trace_holds_for_later_inputs,
        interrupt_parks_resumes_and_is_used_once,
        unknown_interrupt_token_is_an_error,
        interrupt_token_is_parked_once,
        unserialisable_interrupt_values_store_nothing,
    )
}
"""Every journal check by name, each taking a fresh, empty journal.

.. versionadded:: 3.0
"""


async def check_journal(make: JournalFactory) -> None:
    """Run every check of ``JOURNAL_CHECKS``, each on a fresh journal from ``make``.

    ``make`` (sync or async) returns an empty journal, or a store whose
    ``journal`` it is (``penguiflow.journal.journal_of``); what it returns is
    closed afterwards if it has ``close``. Raises ``AssertionError`` naming the
    failed check.

    .. versionadded:: 3.0
    """
    for name, check in JOURNAL_CHECKS.items():
        owner = await _build(make)
        try:
            await check(journal_of(owner))
        except AssertionError as exc:
            raise AssertionError(f"journal contract {name!r} failed: {exc}") from exc
        finally:
            await _close(owner)


async def check_journal_reopen(make: JournalFactory) -> None:
    """A persistent journal: what one instance committed, a new one on the same storage loads.

    ``make`` must return journals (or their stores) over the same storage each time.

    .. versionadded:: 3.0
    """
    first = await _build(make)
    try:
        journal = journal_of(first)
        accepted = await journal.accept([_input(f"j-reopen-{n}", n, key=f"r{n}") for n in range(3)])
        step = await journal.commit_step(
            "j-reopen-0",
            consumed=accepted[0].entry_id,
            produced=[("a->b", 1)],
            rookery=["final"],
            state=[StateUpdate("join:j", [1])],
        )
        await journal.park("tok-reopen", trace_id="j-reopen-1", node="n", payload="?")
        before = await journal.load()
    finally:
        await _close(first)
    second = await _build(make)
    try:
        journal = journal_of(second)
        after = await journal.load()
        assert after == before, f"reloaded {after!r} != {before!r}"
        (dup,) = await journal.accept([_input("j-reopen-x", key="r1")])
        assert dup.duplicate
        assert dup.trace_id == "j-reopen-1"
        assert await journal.mark_delivered(step.rookery_ids[0]) is True
    finally:
        await _close(second)
