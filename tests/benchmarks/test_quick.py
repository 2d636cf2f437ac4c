"""Smoke test of the benchmark suite: the quick mode runs and every workload is correct.

Only this project and the raw asyncio floor are run (no PenguiFlow 2.2.5 venv, no
network). Nothing here asserts on timings: the workloads check their own outputs and
the suite reports a wrong answer as a failed run.
"""

from __future__ import annotations

import json
import os

import pytest
from bench_support import REPO, run_module

from benchmarks import report

WORKLOADS = tuple(report.METRICS)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Run ``python -m benchmarks --quick`` once for the project and the floor."""
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = run_module(
        "benchmarks", "--quick", "--targets", "project,floor", "--json", out, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {"stdout": proc.stdout, **json.loads(out.read_text())}


@pytest.mark.parametrize("target", ["project", "floor"])
@pytest.mark.parametrize("workload", WORKLOADS)
def test_workload_runs_and_checks_its_outputs(quick_run: dict, workload: str, target: str) -> None:
    """Each workload ran on the target, passed its own output checks and reported its metrics."""
    runs = [r for r in quick_run["records"] if (r["workload"], r["target"]) == (workload, target)]
    assert len(runs) == 1
    assert runs[0]["ok"], runs[0].get("error")
    assert {key for key, _ in report.METRICS[workload]} <= set(runs[0]["metrics"])


def test_project_runs_use_the_working_tree(quick_run: dict) -> None:
    """The project target imported penguiflow from this repository, not an installed copy."""
    modules = {r["describe"]["module"] for r in quick_run["records"] if r["target"] == "project"}
    assert modules == {str(REPO / "penguiflow" / "__init__.py")}


def test_report_lists_every_target_of_the_issue(quick_run: dict) -> None:
    """The printed targets table has one row per goal, each with a verdict."""
    rows = [line for line in quick_run["stdout"].splitlines() if line.startswith("| ")]
    for goal in report.GOALS:
        row = next(r for r in rows if goal.text in r)
        assert row.rstrip(" |").rsplit("| ", 1)[-1] in {"pass", "MISS", "n/a"}


def test_report_judges_ratios_against_the_goal() -> None:
    """A ratio within the bound passes; one beyond it is a miss; a failed run is a failure."""

    def run(workload: str, target: str, ok: bool = True, **metrics: float) -> dict:
        return {"workload": workload, "target": target, "ok": ok, "metrics": metrics}

    records = {
        ("b", "project"): [run("b", "project", msgs_per_s=80.0)],
        ("b", "floor"): [run("b", "floor", msgs_per_s=100.0)],
        ("c", "project"): [run("c", "project", traces_per_s=70.0)],
        ("c", "floor"): [run("c", "floor", traces_per_s=100.0)],
        ("e", "project"): [{"workload": "e", "target": "project", "ok": False, "error": "E: x"}],
        ("e", "penguiflow225"): [run("e", "penguiflow225", overhead_us=10.0, control_us=1.0)],
    }
    text = report.render(records, ["b", "c", "e"], 1, "header")
    verdicts = {
        line.split(" | ")[0].strip("| "): line.rstrip(" |").rsplit("| ", 1)[-1]
        for line in text.splitlines()
        if line.startswith(("| b |", "| c |", "| e |"))
    }
    assert verdicts == {"b": "pass", "c": "MISS", "e": "FAIL (wrong answer or crash)"}


def test_report_gives_the_spread_of_per_round_ratios() -> None:
    """The targets table shows the min–max of the per-round ratios and how many meet it."""

    def run(value: float) -> dict:
        return {"workload": "b", "target": "", "ok": True, "metrics": {"msgs_per_s": value}}

    records = {
        ("b", "project"): [run(70.0), run(80.0), run(90.0)],
        ("b", "floor"): [run(100.0), run(100.0), run(100.0)],
    }
    assert report.round_ratios(records, "b", "msgs_per_s", "project", "floor") == [0.7, 0.8, 0.9]
    row = next(
        line
        for line in report.render(records, ["b"], 3, "header").splitlines()
        if line.startswith("| b |")
    )
    assert "0.80× floor (0.70–0.90)" in row
    assert "| 2/3 | pass |" in row


def test_layer_breakdown_runs() -> None:
    """``python -m benchmarks.layers --quick`` times the floor, the kernel and the flow."""
    proc = run_module("benchmarks.layers", "--quick", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert [line.split()[0] for line in proc.stdout.splitlines()[1:]] == [
        "asyncio",
        "actor",
        "PenguiFlow",
    ]


def test_journal_benchmark_runs() -> None:
    """``python -m benchmarks.journal --quick`` times commit_step and accept by callers."""
    proc = run_module("benchmarks.journal", "--quick")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()[2:]]
    assert [(row[0], row[1]) for row in rows] == [
        (op, callers) for op in ("commit_step", "accept") for callers in ("1", "8", "64")
    ]


@pytest.mark.redis
def test_rate_limits_benchmark_runs() -> None:
    """``python -m benchmarks.rate_limits --quick`` measures both setups (no timing asserted)."""
    url = os.environ.get("PENGUIFLOW_TEST_REDIS_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("PENGUIFLOW_TEST_REDIS_URL is not set under CI: the redis tests must run")
        pytest.skip("PENGUIFLOW_TEST_REDIS_URL is not set (scripts/redis.sh)")
    proc = run_module("benchmarks.rate_limits", "--quick", "--redis", url)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("in-process", "Redis"))]
    assert [row.split()[0] for row in rows] == ["in-process", "Redis"]


def test_observability_benchmark_runs_every_variant() -> None:
    """``python -m benchmarks.observability`` prints each variant with its ratio to plain."""
    proc = run_module("benchmarks.observability", "--rounds", "1", "--messages", "50")
    assert proc.returncode == 0, proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines() if line.startswith("  ")]
    assert [row[0] for row in rows] == [
        "plain",
        "prometheus",
        "otel",
        "otel-batch",
        "otel-unsampled",
    ]
    assert all("plain" in row for row in rows)  # the ratio column


async def test_observability_benchmark_fails_a_round_that_lost_spans(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sampled variant whose exporter saw fewer spans than were made is an error."""
    from benchmarks import observability

    def lossy(flow: object) -> observability.Undo:
        return lambda: 0  # as if every span had been dropped

    monkeypatch.setitem(observability.VARIANTS, "otel", lossy)
    with pytest.raises(RuntimeError, match="0 spans exported"):
        await observability.hop_p50_us("otel", 10)
