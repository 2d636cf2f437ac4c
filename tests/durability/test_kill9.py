"""kill -9 a durable flow 20 times at seeded moments: every final is fetched exactly once.

A child process (``_kill9_child.py``) runs a durable flow with fan-out, a
``join_k`` and a controller loop on a store, as a restarted service would: ``run()``,
``recover()``, re-send every input with its idempotency key, fetch. The parent
SIGKILLs it at a seeded moment (a seeded delay after it recovered, after it re-sent
everything, or after its k-th final), 20 times, restarting it each time; a last run
is left to finish. Every final the child fetched is on its stdout at once.

Asserted across all the processes: every accepted key's final is fetched exactly
once, none is lost, none is wrong (the answer is a function of the order number).
A consumer killed after ``fetch()`` committed the delivered mark and before its own
report cannot tell that final from a lost one, so this case is checked in the journal:
such a final is marked delivered there (it is never fetched again) and holds the right
answer, and there is at most one per kill, since the child has one fetch in flight.
(With the kill moments below it happens in about half the seeds, once or twice in 20
kills.)

Runs on SQLite always and on Redis when ``PENGUIFLOW_TEST_REDIS_URL`` is set.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from _kill9_child import expected
from kill9_support import (
    KillPlan,
    assert_every_trace_finished,
    delivered_items,
    order_of,
    run_child,
    where,
)

pytestmark = pytest.mark.slow

__all__ = ["where"]  # the store fixture of kill9_support: pytest finds it here

CHILD = Path(__file__).with_name("_kill9_child.py")
ORDERS = 30
KILLS = 20
SEED = 16


def plan_kill(rng: random.Random, remaining: int) -> KillPlan:
    """A seeded moment: in recovery or re-sending, mid-flow, or right around a fetch."""
    kind = rng.choice(["ready", "sent", "final"] if remaining else ["ready", "sent"])
    if kind == "ready":  # recover() and the re-sent emits, or the first steps
        return KillPlan("ready", 1, rng.uniform(0.0, 0.03))
    if kind == "sent":  # steps and their commits, finals in the Rookery
        return KillPlan("sent", 1, rng.uniform(0.0, 0.01))
    # delay 0: the child is between its report and its next fetch (or inside it).
    return KillPlan("final", rng.randint(1, min(2, remaining)), rng.choice([0.0, 0.0005, 0.002]))


@dataclass
class Ledger:
    """What the parent knows across processes."""

    fetched: Counter[int] = field(default_factory=Counter)  # reported by a child
    in_window: set[int] = field(default_factory=set)  # delivered, killed before the report

    @property
    def done(self) -> set[int]:
        return set(self.fetched) | self.in_window

    def record(self, finals: list[str]) -> None:
        for text in finals:
            i = order_of(text)
            assert text == expected(i), f"wrong final for order-{i}: {text!r}"
            assert i not in self.done, f"order-{i} fetched twice: {text!r}"
            self.fetched[i] += 1

    def reconcile(self, where: str) -> None:
        """Compare the journal's delivered marks with what the children reported."""
        delivered: dict[int, list[str]] = {}
        for item in delivered_items(where):
            delivered.setdefault(order_of(item.payload.text), []).append(item.payload.text)
        assert all(len(texts) == 1 for texts in delivered.values()), delivered
        assert set(self.fetched) <= set(delivered), "a reported final is not delivered"
        unseen = set(delivered) - self.done
        assert len(unseen) <= 1, f"delivered but never returned: {sorted(unseen)}"
        for i in unseen:
            assert delivered[i] == [expected(i)], delivered[i]
        self.in_window |= unseen


def _args(where: str, done: set[int]) -> list[str]:
    return [where, str(ORDERS), ",".join(map(str, sorted(done))) or "-"]


async def test_every_final_is_fetched_exactly_once_across_20_kills(
    where: str, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    ledger = Ledger()
    log = tmp_path / "child-stderr.log"
    landed_with_work_left = 0
    for _ in range(KILLS):
        remaining = ORDERS - len(ledger.done)
        run = await run_child(CHILD, _args(where, ledger.done), plan_kill(rng, remaining), log)
        ledger.record(run.of("final"))
        ledger.reconcile(where)
        landed_with_work_left += run.killed and len(ledger.done) < ORDERS
    # The kills must have hit a flow at work, not only idle restarts.
    assert landed_with_work_left >= KILLS // 2, landed_with_work_left
    last = await run_child(CHILD, _args(where, ledger.done), None, log)
    assert last.completed
    ledger.record(last.of("final"))
    ledger.reconcile(where)
    assert ledger.done == set(range(ORDERS)), sorted(set(range(ORDERS)) - ledger.done)
    assert all(count == 1 for count in ledger.fetched.values())
    assert len(ledger.in_window) <= KILLS
    await assert_every_trace_finished(where, ORDERS)
