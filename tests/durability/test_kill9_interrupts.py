"""kill -9 a durable flow that parks on ctx.interrupt, 20 times: every order ends once.

A child process (``_kill9_interrupt_child.py``) runs a durable flow whose node asks
a reviewer (``ctx.interrupt``) for every order, as a restarted service would:
``run()``, ``recover()``, answer the interrupts pending in the journal, re-send every
input with its idempotency key, fetch (answering each ``Interrupt`` fetched). The
parent SIGKILLs it at a seeded moment (after it recovered, after its k-th question,
after its k-th answer, after its k-th final), 20 times, restarting it each time; a
last run is left to finish.

Asserted across all the processes: every order's final is fetched exactly once,
none is lost, each carries the answer given (so a resumed trace resumed with the
stored value, whether the kill came before or after the resume), and the journal
ends with no trace unfinished or parked and every key accepted once. A final
delivered in the journal but killed before its report is checked in the journal,
as in test_kill9.

Runs on SQLite always and on Redis when ``PENGUIFLOW_TEST_REDIS_URL`` is set.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from kill9_support import delivered_items

from penguiflow.types import FinalAnswer

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("_kill9_interrupt_child.py")
sys.path.insert(0, str(CHILD.parent))
from _kill9_interrupt_child import expected, open_store  # noqa: E402

ORDERS = 30
KILLS = 20
SEED = 17
RUN_TIMEOUT_S = 30.0  # safety net per child run; a healthy run takes about a second


@dataclass(frozen=True)
class KillPlan:
    """When to kill: ``delay_s`` after the child's ``after``-th line of kind ``on``."""

    on: str  # "ready", "asked", "answered" or "final"
    after: int
    delay_s: float


def plan_kill(rng: random.Random, remaining: int) -> KillPlan:
    kind = rng.choice(["ready", "asked", "answered", "final"] if remaining else ["ready"])
    if kind == "ready":
        return KillPlan("ready", 1, rng.uniform(0.0, 0.02))
    limit = max(1, min(3, remaining))
    return KillPlan(kind, rng.randint(1, limit), rng.choice([0.0, 0.0005, 0.002, 0.005]))


@dataclass
class RunResult:
    finals: list[str] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)  # orders whose resume returned
    killed: bool = False
    completed: bool = False


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:]


async def run_child(where: str, done: set[int], plan: KillPlan | None, log: Path) -> RunResult:
    """Run the child until it completes or the plan kills it; the finals it reported."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env = {k: v for k, v in env.items() if not k.startswith("COVERAGE_")}
    args = [str(CHILD), where, str(ORDERS), ",".join(map(str, sorted(done))) or "-"]
    result = RunResult()
    with log.open("ab") as stderr:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, *args, stdout=asyncio.subprocess.PIPE, stderr=stderr, env=env
        )
        assert proc.stdout is not None
        seen: Counter[str] = Counter()
        try:
            async with asyncio.timeout(RUN_TIMEOUT_S):
                while line := (await proc.stdout.readline()).decode():
                    kind, _, rest = line.rstrip("\n").partition(" ")
                    seen[kind] += 1
                    if kind == "final":
                        result.finals.append(rest)
                    elif kind == "answered":
                        result.answered.append(int(rest))
                    elif kind == "complete":
                        result.completed = True
                    if plan and not result.killed and (kind, seen[kind]) == (plan.on, plan.after):
                        if plan.delay_s:
                            await asyncio.sleep(plan.delay_s)  # the chaos moment, not a sync
                        if proc.returncode is None:
                            proc.send_signal(signal.SIGKILL)
                        result.killed = True
                returncode = await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    if result.completed:
        assert returncode in (0, -signal.SIGKILL), _tail(log)
        result.killed = returncode == -signal.SIGKILL
    else:
        assert returncode == -signal.SIGKILL, (returncode, _tail(log))
    return result


def delivered_finals(where: str) -> dict[int, list[str]]:
    """Every delivered final of the store's journal (notices left out): order -> texts."""
    by_order: dict[int, list[str]] = {}
    for item in delivered_items(where):
        payload = getattr(item, "payload", None)
        if isinstance(payload, FinalAnswer):
            order = int(payload.text.split()[0].removeprefix("order-"))
            by_order.setdefault(order, []).append(payload.text)
    return by_order


@dataclass
class Ledger:
    fetched: Counter[int] = field(default_factory=Counter)
    in_window: set[int] = field(default_factory=set)

    @property
    def done(self) -> set[int]:
        return set(self.fetched) | self.in_window

    def record(self, finals: list[str]) -> None:
        for text in finals:
            i = int(text.split()[0].removeprefix("order-"))
            assert text == expected(i), f"wrong final for order-{i}: {text!r}"
            assert i not in self.done, f"order-{i} fetched twice: {text!r}"
            self.fetched[i] += 1

    def reconcile(self, where: str) -> None:
        delivered = delivered_finals(where)
        assert all(len(texts) == 1 for texts in delivered.values()), delivered
        assert set(self.fetched) <= set(delivered), "a reported final is not delivered"
        unseen = set(delivered) - self.done
        assert len(unseen) <= 1, f"delivered but never returned: {sorted(unseen)}"
        for i in unseen:
            assert delivered[i] == [expected(i)], delivered[i]
        self.in_window |= unseen


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def where(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield str(tmp_path / "asks.db")
        return
    url = os.environ.get("PENGUIFLOW_TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("PENGUIFLOW_TEST_REDIS_URL is not set under CI")
        pytest.skip("PENGUIFLOW_TEST_REDIS_URL is not set: no redis-server for this run")
    where = f"{url}#pftest-kill9i-{uuid.uuid4().hex[:12]}"
    try:
        yield where
    finally:
        store = open_store(where)
        await store.clear()
        await store.close()


async def test_parked_traces_survive_20_kills_and_resume_once(where: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    ledger = Ledger()
    log = tmp_path / "child-stderr.log"
    landed_with_work_left = 0
    answered: Counter[int] = Counter()
    for _ in range(KILLS):
        remaining = ORDERS - len(ledger.done)
        run = await run_child(where, ledger.done, plan_kill(rng, remaining), log)
        ledger.record(run.finals)
        ledger.reconcile(where)
        landed_with_work_left += run.killed and len(ledger.done) < ORDERS
        answered.update(run.answered)
    assert landed_with_work_left >= KILLS // 2, landed_with_work_left
    last = await run_child(where, ledger.done, None, log)
    assert last.completed, _tail(log)
    answered.update(last.answered)
    # An answer is journaled before resume returns: once given, never asked for again
    # (a trace resumed before a kill runs on with it after the restart).
    assert max(answered.values()) == 1, answered
    ledger.record(last.finals)
    ledger.reconcile(where)
    assert ledger.done == set(range(ORDERS)), sorted(set(range(ORDERS)) - ledger.done)
    assert all(count == 1 for count in ledger.fetched.values())
    store = open_store(where)
    try:
        assert await store.journal.unfinished_traces() == []
        assert await store.journal.parked_traces() == []
        traces = await store.journal.traces(include_finished=True)
    finally:
        await store.close()
    keys = Counter(key for trace in traces for key in trace.idempotency_keys)
    assert keys == Counter(f"order-{i}" for i in range(ORDERS)), "a key accepted twice or lost"
