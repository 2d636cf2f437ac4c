"""Command line of the suite: interleaved rounds over targets, then the report.

Full mode runs every (workload, target) pair in its own fresh process, in the order
round 1: a@project a@2.2.5 a@floor b@project ..., round 2: ... (targets interleaved
A B C A B C so drift in machine load hits them alike), and prints medians. Quick mode
runs all workloads of a target in one process per round: it checks correctness fast
and its numbers mean little.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmarks import report, targets

__all__ = ["main"]

WORKLOADS = tuple(report.METRICS)


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Time this project against PenguiFlow 2.2.5 and a raw asyncio floor.",
    )
    parser.add_argument("--quick", action="store_true", help="small N, one process per target")
    parser.add_argument("--rounds", type=int, default=None, help="default 5 (quick: 1)")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="workloads, e.g. a,b,h")
    parser.add_argument(
        "--targets",
        default=",".join(targets.TARGET_NAMES),
        help="subset of project,penguiflow225,floor",
    )
    parser.add_argument("--n", type=int, default=None, help="override N of every workload")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per workload run")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="time with the wall clock, or with process CPU time (steadier on a shared machine)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write raw records here")
    args = parser.parse_args(argv)
    args.only = [w.strip() for w in args.only.split(",") if w.strip()]
    args.targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [w for w in args.only if w not in WORKLOADS]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {','.join(WORKLOADS)}")
    if args.rounds is None:
        args.rounds = 1 if args.quick else 5
    return args


def _tree() -> str:
    """The commit the working tree is at, and whether the runtime has local changes."""

    def git(*args: str) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=targets.REPO, capture_output=True, text=True, check=False
        )
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "penguiflow")
    return f"{commit}{' + uncommitted changes in penguiflow/' if dirty else ''}"


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the suite; return 0, or 1 if any run failed or a target was unavailable."""
    args = _parse(sys.argv[1:] if argv is None else argv)
    machine = report.machine_line()
    chosen, missing = targets.make_targets(args.targets, log=_log)
    for name, reason in missing.items():
        _log(f"target {targets.LABELS[name]} unavailable: {reason}")
    records: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    # Quick mode batches all workloads per process; full mode isolates each run.
    batches = [args.only] if args.quick else [[w] for w in args.only]
    started = time.perf_counter()
    for round_no in range(1, args.rounds + 1):
        for batch in batches:
            for target in chosen:
                runs = targets.run_target(
                    target,
                    batch,
                    quick=args.quick,
                    n=args.n,
                    timeout=args.timeout,
                    clock=args.clock,
                )
                for run in runs:
                    records[run["workload"], target.name].append(run)
                    status = "ok" if run["ok"] else "FAIL"
                    _log(
                        f"round {round_no}/{args.rounds} {run['workload']} "
                        f"{target.label}: {status} {run.get('seconds', 0.0):.2f}s"
                    )
    header = (
        f"- Machine: {machine}\n"
        f"- This project: {_tree()}\n"
        f"- Run: {'quick' if args.quick else 'full'}, {args.rounds} round(s), "
        f"{args.clock} clock, targets interleaved, {time.perf_counter() - started:.0f}s total; "
        f"command: python -m benchmarks {' '.join(sys.argv[1:] if argv is None else argv)}"
    )
    for name, reason in missing.items():
        header += f"\n- Unavailable: {targets.LABELS[name]} ({reason})"
    print(report.render(records, args.only, args.rounds, header))
    if args.json:
        payload = {"machine": machine, "rounds": args.rounds, "quick": args.quick}
        payload["clock"] = args.clock
        payload["unavailable"] = missing
        payload["records"] = [run for runs in records.values() for run in runs]
        args.json.write_text(json.dumps(payload, indent=1))
    failed = any(not run["ok"] for runs in records.values() for run in runs)
    return 1 if failed or missing else 0
