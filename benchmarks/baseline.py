"""This working tree against another commit of it: the same workloads, interleaved rounds.

Run from the repository root::

    python -m benchmarks.baseline main                  # workloads a,b, 5 rounds
    python -m benchmarks.baseline main --only a,b,c --rounds 9 --clock cpu

The other commit (any git revision) is exported with ``git archive`` into a
temporary folder; nothing in the repository or its worktrees is touched. Both
sides run the *same* workload code (this tree's ``runner.py`` and ``wl_flow.py``),
each runner a fresh process with ``PYTHONPATH`` at its tree, in the order
base, head, base, head, ... so drift in machine load hits both alike. Every cell
is the median over rounds; the ratio is head / base (for ↓ metrics below 1 means
this tree is cheaper, for ↑ metrics above 1 means it is faster). Used to check
that a change leaves flows that do not use it no slower.
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from benchmarks import report, targets

__all__ = ["main"]


def _export(revision: str, into: Path) -> str:
    """Write ``revision``'s tree into ``into``; return its short commit id."""
    commit = subprocess.run(
        ["git", "rev-parse", "--short", revision],
        cwd=targets.REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "penguiflow"],
        cwd=targets.REPO,
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return commit


def _tree_target(tree: Path) -> targets.Target:
    env = targets._env(str(tree))  # noqa: SLF001 (same package: the suite's own helper)
    return targets.Target("project", sys.executable, env, str(tree / "penguiflow"))


def main(argv: list[str] | None = None) -> int:
    """Run the comparison and print one table; 1 if a run failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.baseline", description=__doc__)
    parser.add_argument("revision", help="the commit to compare with, e.g. main")
    parser.add_argument("--only", default="a,b", help="workloads, e.g. a,b,c")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n", type=int, default=None, help="override N of every workload")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    workloads = [w.strip() for w in args.only.split(",") if w.strip()]
    records: dict[str, dict[str, list[dict[str, Any]]]] = {"base": {}, "head": {}}
    with tempfile.TemporaryDirectory(prefix="pf-baseline-") as tmp:
        commit = _export(args.revision, Path(tmp))
        sides = {"base": _tree_target(Path(tmp)), "head": _tree_target(targets.REPO)}
        for round_no in range(1, args.rounds + 1):
            for workload in workloads:
                for side, target in sides.items():
                    (run,) = targets.run_target(
                        target, [workload], quick=False, n=args.n, clock=args.clock
                    )
                    records[side].setdefault(workload, []).append(run)
                    status = "ok" if run["ok"] else "FAIL: " + run.get("error", "")[-400:]
                    print(f"round {round_no} {workload} {side}: {status}", file=sys.stderr)
    failed = any(not r["ok"] for runs in records.values() for rs in runs.values() for r in rs)
    print(f"{args.revision} ({commit}) = base, working tree = head; {args.rounds} rounds")
    print(f"{args.clock} clock; command: python -m benchmarks.baseline {' '.join(argv)}")
    print()
    print("| metric (median) | base | head | head / base | per-round ratio, min to max |")
    print("|---|---|---|---|---|")
    for workload in workloads:
        pairs = list(zip(records["base"][workload], records["head"][workload], strict=True))
        for key, label in report.METRICS[workload]:
            # Rounds where both sides ran: the two runs of a round are neighbours in time.
            both = [(b["metrics"][key], h["metrics"][key]) for b, h in pairs if b["ok"] and h["ok"]]
            if not both:
                continue
            base = statistics.median(b for b, _ in both)
            head = statistics.median(h for _, h in both)
            ratios = [h / b for b, h in both]
            print(
                f"| {label} | {base:,.2f} | {head:,.2f} | {head / base:.2f}× "
                f"| {min(ratios):.2f}× to {max(ratios):.2f}× |"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
