"""Turn the runs' records into medians, ratios and the issue's targets table.

Everything is computed from per-metric medians over the rounds; ratios are taken
between medians of the same run, so they compare targets measured interleaved on the
same machine at the same time.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from benchmarks.targets import LABELS

__all__ = ["GOALS", "METRICS", "Goal", "machine_line", "medians", "render", "round_ratios"]

# workload -> [(metric key, label)]; ↑ higher is better, ↓ lower is better.
METRICS: dict[str, list[tuple[str, str]]] = {
    "a": [
        ("p50_hop_us", "a latency p50 µs/hop ↓"),
        ("p95_hop_us", "a latency p95 µs/hop ↓"),
        ("p50_us", "a latency p50 µs/msg ↓"),
        ("p95_us", "a latency p95 µs/msg ↓"),
    ],
    "b": [("msgs_per_s", "b pipelined msgs/s ↑")],
    "c": [("traces_per_s", "c fan-out/join traces/s ↑")],
    "d": [
        ("chunks_per_s", "d streaming chunks/s (via relay) ↑"),
        ("direct_chunks_per_s", "d streaming chunks/s (direct) ↑"),
    ],
    "e": [
        ("overhead_us", "e retry overhead µs/msg ↓"),
        ("control_us", "e no-fail control µs/msg ↓"),
    ],
    "f": [
        ("overhead_us", "f validate=both overhead µs/msg ↓"),
        ("none_us", "f validate=none µs/msg ↓"),
    ],
    "g": [("wall_s", "g 10k traces wall s ↓"), ("rss_growth_kib", "g 10k traces RSS growth KiB ↓")],
    "h": [
        ("import_ms", "h import penguiflow ms ↓"),
        ("import_use_ms", "h import + create/Node/Message ms ↓"),
        ("idle_flow_kib", "h idle 100-node flow KiB (traced) ↓"),
        ("idle_flow_rss_kib", "h idle 100-node flow KiB (RSS) ↓"),
        ("start_ms", "h build + run 100-node flow ms ↓"),
        ("stop_ms", "h stop idle 100-node flow ms ↓"),
    ],
}


@dataclass(frozen=True, slots=True)
class Goal:
    """One row of the targets table: ``project / against`` compared to ``bound``."""

    workload: str
    text: str
    metric: str
    against: str
    at_most: bool
    bound: float


# Issue 18's targets (they supersede issue 9's; the import bound is issue 9's own).
GOALS = (
    Goal("a", "hop latency ≤ 1.5× the raw floor", "p50_hop_us", "floor", True, 1.5),
    Goal("b", "pipelined throughput ≥ 0.75× the raw floor", "msgs_per_s", "floor", False, 0.75),
    Goal("c", "fan-out/join ≥ 0.75× the raw floor", "traces_per_s", "floor", False, 0.75),
    Goal("d", "streaming ≥ 15× PenguiFlow 2.2.5", "chunks_per_s", "penguiflow225", False, 15.0),
    Goal(
        "e", "retry overhead ≤ 0.15× PenguiFlow 2.2.5", "overhead_us", "penguiflow225", True, 0.15
    ),
    Goal("g", "10k traces wall ≤ 1.5× the floor", "wall_s", "floor", True, 1.5),
    Goal("g", "10k traces RSS growth ≤ 1.3× the floor", "rss_growth_kib", "floor", True, 1.3),
    Goal("h", "import ≤ 0.5× PenguiFlow 2.2.5", "import_ms", "penguiflow225", True, 0.5),
    Goal(
        "h",
        "idle 100-node flow memory ≤ 0.8× PenguiFlow 2.2.5",
        "idle_flow_kib",
        "penguiflow225",
        True,
        0.8,
    ),
    Goal(
        "h", "build + run 100-node flow ≤ PenguiFlow 2.2.5", "start_ms", "penguiflow225", True, 1.0
    ),
)

Records = Mapping[tuple[str, str], Sequence[Mapping[str, Any]]]
Medians = dict[tuple[str, str, str], float]


def machine_line() -> str:
    """Return CPU model, core count, Python and pydantic versions, OS and load."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(
                line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    import pydantic

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, pydantic {pydantic.VERSION}, {platform.system()} "
        f"{platform.release()}, load average {load}"
    )


def medians(records: Records) -> Medians:
    """Median of every metric over the successful rounds of each (workload, target)."""
    out: Medians = {}
    for (workload, target), runs in records.items():
        good = [r["metrics"] for r in runs if r.get("ok")]
        for key, _ in METRICS[workload]:
            values = [m[key] for m in good if key in m]
            if values:
                out[workload, target, key] = statistics.median(values)
    return out


def _fmt(value: float | None) -> str:
    if value is None:
        return "—"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(med: Medians, workload: str, metric: str, num: str, den: str) -> float | None:
    a, b = med.get((workload, num, metric)), med.get((workload, den, metric))
    if a is None or b is None or b == 0:
        return None
    return a / b


def round_ratios(records: Records, workload: str, metric: str, num: str, den: str) -> list[float]:
    """``num / den`` of ``metric`` in each round both targets completed (the spread).

    Rounds are interleaved, so the i-th run of each target was measured side by
    side with the other's i-th run: their ratio is one sample of the spread.
    """
    a, b = records.get((workload, num), ()), records.get((workload, den), ())
    out = []
    for x, y in zip(a, b, strict=False):
        if x.get("ok") and y.get("ok"):
            top, bottom = x["metrics"].get(metric), y["metrics"].get(metric)
            if top is not None and bottom:
                out.append(top / bottom)
    return out


def _failures(records: Records) -> dict[tuple[str, str], str]:
    """Last line of the error of the latest failed run of each (workload, target)."""
    out = {}
    for key, runs in records.items():
        for run in runs:
            if not run.get("ok"):
                lines = str(run.get("error") or "no output").strip().splitlines()
                out[key] = lines[-1] if lines else "no output"
    return out


def render(records: Records, workloads: Sequence[str], rounds: int, header: str) -> str:
    """Return the medians table, the targets table and any failures, as Markdown."""
    med = medians(records)
    fails = _failures(records)
    lines = [header, ""]
    cols = ["project", "penguiflow225", "floor"]
    names = " | ".join(LABELS[c] for c in cols)
    lines.append(
        f"| metric (median of {rounds}) | {names} | project / floor | project / 2.2.5 "
        "| 2.2.5 / floor |"
    )
    lines.append("|---" * 7 + "|")
    for workload in workloads:
        for key, label in METRICS[workload]:
            cells = []
            for col in cols:
                failed = (workload, col) in fails
                cells.append("FAIL" if failed else _fmt(med.get((workload, col, key))))
            ratios = [
                _ratio(med, workload, key, "project", "floor"),
                _ratio(med, workload, key, "project", "penguiflow225"),
                _ratio(med, workload, key, "penguiflow225", "floor"),
            ]
            rtext = [("—" if r is None else f"{r:.2f}×") for r in ratios]
            lines.append(f"| {label} | {' | '.join(cells)} | {' | '.join(rtext)} |")
    lines += [
        "",
        "| workload | target | measured (median; per-round spread) | rounds meeting it | result |",
        "|---|---|---|---|---|",
    ]
    for goal in GOALS:
        if goal.workload not in workloads:
            continue
        ratio = _ratio(med, goal.workload, goal.metric, "project", goal.against)
        ref = "floor" if goal.against == "floor" else "2.2.5"
        measured = "—" if ratio is None else f"{ratio:.2f}× {ref}"
        spread = round_ratios(records, goal.workload, goal.metric, "project", goal.against)
        if ratio is not None and spread:
            measured += f" ({min(spread):.2f}–{max(spread):.2f})"
        meeting = sum(1 for r in spread if (r <= goal.bound if goal.at_most else r >= goal.bound))
        rounds_text = f"{meeting}/{len(spread)}" if spread else "—"
        if goal.against == "floor":
            other = _ratio(med, goal.workload, goal.metric, "penguiflow225", "floor")
            if other is not None:
                measured += f" (2.2.5: {other:.2f}×)"
        if (goal.workload, "project") in fails:
            result = "FAIL (wrong answer or crash)"
        elif ratio is None:
            result = "n/a"
        else:
            ok = ratio <= goal.bound if goal.at_most else ratio >= goal.bound
            result = "pass" if ok else "MISS"
        lines.append(f"| {goal.workload} | {goal.text} | {measured} | {rounds_text} | {result} |")
    if fails:
        lines += ["", "Failures (a wrong answer counts as a failure):"]
        lines += [f"- {w} on {LABELS[t]}: {err}" for (w, t), err in sorted(fails.items())]
    return "\n".join(lines)
