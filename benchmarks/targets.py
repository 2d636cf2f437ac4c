"""The three things the suite times, and how to run workloads against each of them.

A target is an interpreter plus an environment: the working tree (``PYTHONPATH`` =
repository root), PenguiFlow 2.2.5 (the isolated venv's interpreter, no ``PYTHONPATH``)
and the raw asyncio floor. Each run is a fresh ``runner.py`` subprocess started in an
empty directory, so nothing leaks between targets, rounds or workloads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import venv225

__all__ = ["LABELS", "REPO", "TARGET_NAMES", "Target", "make_targets", "run_target"]

REPO = Path(__file__).resolve().parent.parent
RUNNER = Path(__file__).resolve().parent / "runner.py"
MARK = "@@BENCH "
TARGET_NAMES = ("project", "penguiflow225", "floor")
LABELS = {"project": "this project", "penguiflow225": "PenguiFlow 2.2.5", "floor": "asyncio floor"}
# An empty directory as the working directory of every runner: `python -c` (used by
# workload h) puts the working directory on sys.path, and the repository root there
# would shadow the installed 2.2.5 with the working tree.
_NEUTRAL_CWD = tempfile.mkdtemp(prefix="penguiflow-bench-")


@dataclass(frozen=True, slots=True)
class Target:
    """One interpreter/environment pair to run workloads in."""

    name: str
    python: str
    env: dict[str, str]
    # describe()["module"] must start with this, proving the right penguiflow ran.
    module_prefix: str

    @property
    def label(self) -> str:
        return LABELS[self.name]


def _env(pythonpath: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def _importable(target: Target) -> str | None:
    """Return None if the target's penguiflow runs a flow import, else the error."""
    proc = subprocess.run(
        [target.python, "-c", "from penguiflow import create, join_k, Node, NodePolicy"],
        capture_output=True,
        text=True,
        env=target.env,
        cwd=_NEUTRAL_CWD,
        check=False,
    )
    if proc.returncode == 0:
        return None
    lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
    return lines[-1]


def make_targets(
    names: Sequence[str], *, log: Callable[[str], None]
) -> tuple[list[Target], dict[str, str]]:
    """Build the requested targets; return them and the unavailable ones with reasons.

    Asking for ``penguiflow225`` creates the isolated venv on first use (network).
    """
    targets: list[Target] = []
    missing: dict[str, str] = {}
    for name in names:
        if name == "project":
            target = Target(name, sys.executable, _env(str(REPO)), str(REPO / "penguiflow"))
        elif name == "penguiflow225":
            try:
                python = venv225.ensure_venv(log=log)
            except venv225.VenvError as exc:
                missing[name] = str(exc).splitlines()[0]
                continue
            target = Target(name, str(python), _env(None), str(venv225.DEFAULT_VENV))
        elif name == "floor":
            target = Target(name, sys.executable, _env(None), "")
        else:
            raise ValueError(f"unknown target {name!r}; choose from {TARGET_NAMES}")
        if name != "floor" and (error := _importable(target)):
            missing[name] = error
            continue
        targets.append(target)
    return targets, missing


def run_target(
    target: Target,
    workloads: Sequence[str],
    *,
    quick: bool,
    n: int | None = None,
    timeout: float = 600.0,
    clock: str = "wall",
) -> list[dict[str, Any]]:
    """Run ``workloads`` in one fresh runner process; return one record per workload.

    A crash, a timeout or a missing line becomes a record with ``ok=False``, so a
    broken target never stops the rest of the run.
    """
    cmd = [target.python, str(RUNNER), "--target", target.name]
    cmd += ["--workloads", ",".join(workloads), "--timeout", str(timeout), "--clock", clock]
    if quick:
        cmd.append("--quick")
    if n is not None:
        cmd += ["--n", str(n)]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            env=target.env,
            cwd=_NEUTRAL_CWD,
            timeout=timeout * len(workloads) + 60,
            check=False,
        )
        stdout, stderr = proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as exc:
        stdout, stderr = str(exc.stdout or ""), f"runner timed out after {exc.timeout}s"
    records = {}
    for line in stdout.splitlines():
        if line.startswith(MARK):
            record = json.loads(line[len(MARK) :])
            module = record.get("describe", {}).get("module", "")
            if record["ok"] and not module.startswith(target.module_prefix):
                record.update(ok=False, error=f"wrong penguiflow imported: {module}")
            records[record["workload"]] = record
    for name in workloads:
        records.setdefault(
            name,
            {"workload": name, "target": target.name, "ok": False, "error": stderr[-2000:]},
        )
    return [records[name] for name in workloads]
