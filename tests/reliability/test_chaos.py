"""Chaos: 10,000 traces through fan-out, join, router and a controller loop, under faults.

One seeded run (module fixture) feeds the chaos flow of ``chaos_support``
with ~10% of node invocations failing (raise, policy timeout, hang, crash) and
actors killed periodically, then each test checks one invariant of what it
recorded. Deterministic by seed: the fault decisions are a pure function of
``(seed, node, trace, call)`` and the fake clock drives every sleep.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import pytest_asyncio
from chaos_support import (
    CHUNKS,
    NODES,
    build_chaos_flow,
    counted_runtime_logs,
    live_messages,
    live_objects,
    run_traces,
)

from penguiflow.testkit import FakeClock, FaultPlan, FaultStatistics

pytestmark = pytest.mark.asyncio(loop_scope="module")

SEED = 20261128
TRACES = 10_000
WARMUP = 300
KILL_EVERY = 250
# Growth of gc-tracked objects tolerated after the run (caches that fill once,
# interned pydantic validators): far below one object per trace.
OBJECT_TOLERANCE = 500


def chaos_plan(clock: FakeClock, seed: int = SEED) -> FaultPlan:
    return FaultPlan(
        seed,
        raise_rate=0.07,
        timeout_rate=0.02,
        hang_rate=0.01,
        crash_rate=0.002,
        clock=clock,
    )


@dataclass(frozen=True)
class ChaosReport:
    faults: FaultStatistics
    terminal_histogram: Counter[int]
    kinds: Counter[str]
    stream_traces: int
    broken_streams: int
    finals_before_done: int
    stray: int
    still_active: int
    leftover_items: int
    restarts: int
    tasks_before: int
    tasks_after: int
    messages_baseline: int
    messages_after: int
    objects_baseline: int
    objects_after: int
    tracked_keys: int
    error_records: int


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def report() -> AsyncIterator[ChaosReport]:
    clock = FakeClock()
    plan = chaos_plan(clock)
    flow = build_chaos_flow(plan, clock)
    tasks_before = len(asyncio.all_tasks())
    with counted_runtime_logs() as logs:
        flow.run()
        try:
            async with asyncio.timeout(120):
                # Warm-up: caches and lazily built validators exist before the baseline.
                await run_traces(flow, plan, clock, range(WARMUP), run="warmup")
                messages_baseline, objects_baseline = live_messages(), live_objects()
                numbers = range(TRACES)
                outcome = await run_traces(flow, plan, clock, numbers, kill_every=KILL_EVERY)
                trace_ids = [f"chaos-{n}" for n in numbers]
                histogram = Counter(outcome.terminals(t) for t in trace_ids)
                kinds: Counter[str] = Counter(
                    result=sum(outcome.results.values()),
                    flow_error=sum(outcome.errors.values()),
                    budget=sum(outcome.budget.values()),
                )
                expected_seqs = list(range(CHUNKS + 1))
                broken = sum(1 for seqs in outcome.chunks.values() if seqs != expected_seqs)
                stream_traces = len(outcome.chunks)
                finals_before_done, stray = outcome.finals_before_done, outcome.stray
                del outcome
                # cancel() answers False exactly when a trace has no outstanding item.
                still_active = sum([await flow.cancel(t) for t in trace_ids])
                leftover = sum(snap.depth for snap in flow.mailboxes().values())
                restarts = sum(info.restarts for info in flow.supervisor.which_children())
                messages_after, objects_after = live_messages(), live_objects()
        finally:
            await flow.stop()
    await asyncio.sleep(0)  # let done-callbacks of the stopped tasks run
    yield ChaosReport(
        faults=plan.statistics(),
        terminal_histogram=histogram,
        kinds=kinds,
        stream_traces=stream_traces,
        broken_streams=broken,
        finals_before_done=finals_before_done,
        stray=stray,
        still_active=still_active,
        leftover_items=leftover,
        restarts=restarts,
        tasks_before=tasks_before,
        tasks_after=len(asyncio.all_tasks()),
        messages_baseline=messages_baseline,
        messages_after=messages_after,
        objects_baseline=objects_baseline,
        objects_after=objects_after,
        tracked_keys=plan.tracked_keys,
        error_records=logs.levels["ERROR"],
    )


async def test_about_one_invocation_in_ten_fails(report: ChaosReport) -> None:
    faults = report.faults
    assert 0.08 <= faults.injected / faults.calls <= 0.12
    assert faults.raised > 0
    assert faults.timeouts > 0
    assert faults.hangs > 0
    assert faults.crashes > 0


async def test_failures_are_logged(report: ChaosReport) -> None:
    assert report.error_records >= report.faults.raised


async def test_actors_were_killed_and_restarted(report: ChaosReport) -> None:
    assert report.faults.kills >= 5
    assert report.restarts >= report.faults.crashes + report.faults.kills


async def test_every_trace_ends_exactly_once(report: ChaosReport) -> None:
    assert report.terminal_histogram == Counter({1: TRACES})


async def test_traces_end_as_results_flow_errors_and_budget_answers(report: ChaosReport) -> None:
    assert report.kinds["result"] > 0
    assert report.kinds["flow_error"] > 0
    assert report.kinds["budget"] > 0
    assert sum(report.kinds.values()) == TRACES


async def test_streams_have_no_gaps_or_duplicates(report: ChaosReport) -> None:
    assert report.stream_traces >= TRACES // 4
    assert report.broken_streams == 0
    assert report.finals_before_done == 0


async def test_nothing_but_chunks_and_terminals_reaches_rookery(report: ChaosReport) -> None:
    assert report.stray == 0


async def test_per_trace_counts_return_to_zero(report: ChaosReport) -> None:
    assert report.still_active == 0
    assert report.leftover_items == 0
    assert report.tracked_keys == 0


async def test_no_task_outlives_stop(report: ChaosReport) -> None:
    assert report.tasks_after == report.tasks_before


async def test_memory_returns_to_baseline(report: ChaosReport) -> None:
    # Each idle actor may still hold the last item it handled in a local: at
    # most a few per node, never one per trace.
    assert report.messages_after <= report.messages_baseline + 2 * len(NODES)
    assert report.objects_after - report.objects_baseline <= OBJECT_TOLERANCE


async def test_same_seed_gives_the_same_faults() -> None:
    """Two small runs with one seed inject the same faults and end the same way."""
    results = []
    for _ in range(2):
        clock = FakeClock()
        plan = chaos_plan(clock, seed=99)
        flow = build_chaos_flow(plan, clock)
        flow.run()
        try:
            async with asyncio.timeout(30):
                outcome = await run_traces(flow, plan, clock, range(400))
        finally:
            await flow.stop()
        results.append((plan.statistics(), dict(outcome.errors), dict(outcome.budget)))
    assert results[0] == results[1]


async def test_no_trace_is_lost_when_busy_actors_are_killed() -> None:
    """Kills at any point, mid-invocation included: every trace still ends (at least once).

    A kill while a node is half-way through a fan-out re-emits that part on
    redelivery (delivery is at least once), so this run checks "never lost",
    not "exactly once".
    """
    clock = FakeClock()
    plan = chaos_plan(clock, seed=31)
    flow = build_chaos_flow(plan, clock)
    tasks_before = len(asyncio.all_tasks())
    with counted_runtime_logs():
        flow.run()
        try:
            async with asyncio.timeout(60):
                outcome = await run_traces(
                    flow, plan, clock, range(3_000), kill_every=5, only_idle=False
                )
                still_active = sum([await flow.cancel(f"chaos-{n}") for n in range(3_000)])
        finally:
            await flow.stop()
    await asyncio.sleep(0)
    assert plan.statistics().kills >= 50
    assert all(outcome.terminals(f"chaos-{n}") >= 1 for n in range(3_000))
    assert still_active == 0
    assert len(asyncio.all_tasks()) == tasks_before
