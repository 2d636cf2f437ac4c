"""Soak mode of the chaos test: run the chaos flow for minutes and report RSS over time.

Not part of the test run. From the repository root::

    .venv/bin/python -m tests.reliability.soak --minutes 5 [--batch 5000] [--seed 1]

One flow stays up for the whole soak (as in a long-running service); batches
of traces go through it under the chaos fault plan, with periodic actor
kills. After each batch the script checks that every trace ended exactly once
and prints a line: elapsed time, traces so far, faults injected, RSS, live
gc objects and asyncio tasks. It exits with status 1 if a batch lost or
duplicated a trace, or if RSS at the end exceeds RSS after the first batch by
more than ``--rss-slack-mb``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import time
from pathlib import Path

from penguiflow.testkit import FakeClock, FaultPlan
from tests.reliability.chaos_support import (
    build_chaos_flow,
    counted_runtime_logs,
    run_traces,
)


def rss_mb() -> float:
    """Current resident set size in MiB (peak RSS where /proc is unavailable)."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        pages = int(statm.read_text().split()[1])
        return pages * resource.getpagesize() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover


async def soak(minutes: float, batch: int, seed: int, rss_slack_mb: float) -> int:
    clock = FakeClock()
    plan = FaultPlan(
        seed, raise_rate=0.07, timeout_rate=0.02, hang_rate=0.01, crash_rate=0.002, clock=clock
    )
    flow = build_chaos_flow(plan, clock)
    tasks_before = len(asyncio.all_tasks())
    started = time.monotonic()
    deadline = started + minutes * 60
    total = failures = 0
    first_rss: float | None = None
    failure: BaseException | None = None
    print("elapsed_s  traces  faults  rss_mib  gc_objects  tasks")
    with counted_runtime_logs():
        flow.run()
        try:
            index = 0
            while time.monotonic() < deadline:
                numbers = range(index * batch, (index + 1) * batch)
                try:
                    outcome = await run_traces(
                        flow, plan, clock, numbers, run="soak", kill_every=250
                    )
                except Exception as exc:  # e.g. Escalated: the flow failed; report it
                    failure = exc
                    print(f"the flow failed in batch {index}: {exc!r}", flush=True)
                    break
                bad = sum(1 for n in numbers if outcome.terminals(f"soak-{n}") != 1)
                failures += bad
                total += batch
                index += 1
                del outcome
                gc.collect()
                rss = rss_mb()
                if first_rss is None:
                    first_rss = rss
                print(
                    f"{time.monotonic() - started:9.1f}  {total:6d}  "
                    f"{plan.statistics().injected:6d}  {rss:7.1f}  "
                    f"{len(gc.get_objects()):10d}  {len(asyncio.all_tasks()):5d}"
                    + (f"  {bad} traces did not end exactly once" if bad else ""),
                    flush=True,
                )
        finally:
            await flow.stop()
    await asyncio.sleep(0)
    leaked = len(asyncio.all_tasks()) - tasks_before
    growth = rss_mb() - (first_rss or 0.0)
    print(
        f"traces {total}, faults injected {plan.statistics().injected}, "
        f"not ended exactly once {failures}, leaked tasks {leaked}, "
        f"RSS growth after the first batch {growth:+.1f} MiB"
    )
    ok = failure is None and failures == 0 and leaked == 0 and growth <= rss_slack_mb
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Soak the chaos flow; report RSS over time.")
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rss-slack-mb", type=float, default=16.0)
    args = parser.parse_args(argv)
    return asyncio.run(soak(args.minutes, args.batch, args.seed, args.rss_slack_mb))


if __name__ == "__main__":
    sys.exit(main())
