"""Smoke tests of ``benchmarks.durable`` and ``benchmarks.baseline``: they run and check.

Nothing here asserts on timings. ``benchmarks.durable`` checks its own outputs (order,
payloads) and raises on a wrong one; ``benchmarks.baseline`` exits 1 if a run failed.
"""

from __future__ import annotations

import subprocess

from bench_support import run_module


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_module(*args)


def test_durable_benchmark_times_every_variant() -> None:
    done = _run("benchmarks.durable", "--quick", "--n", "100")
    assert done.returncode == 0, done.stdout + done.stderr
    for variant in ("non-durable", "events only", "durable", "journal only"):
        assert f"  {variant} " in done.stdout
    assert "durable / non-durable:" in done.stdout
    assert "µs/hop" in done.stdout


def test_baseline_compares_the_tree_with_a_revision() -> None:
    done = _run("benchmarks.baseline", "HEAD", "--only", "b", "--rounds", "1", "--n", "100")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| b pipelined msgs/s ↑ |" in done.stdout
    assert "= base, working tree = head" in done.stdout
