"""Smoke test: every ``examples/<name>/flow.py`` runs offline, exits 0 and prints what it should.

Examples are discovered from the folder, so a new example is covered the day it
lands. Each runs as ``python -m examples.<name>.flow`` from the repository root,
exactly as its README says.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 60

# A line (or part of one) each example must print. Examples not listed here must
# at least print something; add them when they land.
EXPECTED: dict[str, str] = {
    "a2a_principals": "bob saw none of alice's tasks: True",
    "a2a_push": "webhook update 7: status TASK_STATE_COMPLETED",
    "a2a_service": "[gentoo] result:",
    "controller_multihop": "Budget guard: Hop budget exhausted",
    "demo": "supervisor restarts: 1 (archive), messages lost: 0",
    "durable_orders": "every order finished exactly once: True",
    "fanout_join": "docs: penguin diet",
    "interrupt_approval": "order C: rejected",
    "mailbox_inspection": "fetched in order: ['KRILL', 'SQUID', 'FISH', 'ICE']",
    "map_concurrent": "doc-e:",
    "metadata_propagation": "steps: ['annotate', 'retrieve', 'summarize']",
    "mcp_tools": "flow result: {'result': 60}",
    "mlflow_metrics": "Word count: 3",
    "observability": "span 'penguiflow.trace'",
    "persistence_sqlite": "node_success",
    "playbook_retrieval": "Final answer: krill is the main food | penguins eat fish",
    "quickstart": "summarize 2 docs",
    "rate_limits": "none dropped: True",
    "react_minimal": "reason: answer_complete",
    "react_parallel": "join:",
    "react_pause_resume": "reason: answer_complete",
    "react_replan": "cached_search -> ok",
    "reliability_middleware": "Result: {'doc': 'penguin facts', 'enriched': True}",
    "roadmap_status_updates": "[final] Fact: emperors are the largest penguins. (3 steps)",
    "routing_predicate": "[metrics] show marketing metrics",
    "routing_union": "sum of [1, 2, 3] = 6",
    "status_roadmap_flow": '"answer":"Restart the colony"',
    "streaming_llm": "event: chunk",
    "supervision": "lost: 0, in order: True",
    "supervisor_agent": "jobs: 7, processed: 7, lost: 0, restarts: 1",
    "testkit_demo": "All testkit checks passed",
    "trace_cancel": "other trace finished: 'notes on krill' (same trace: True)",
    "traceable_errors": "code: NODE_EXCEPTION",
    "visualizer": "flow.md",
}


def discover() -> list[str]:
    return sorted(path.parent.name for path in EXAMPLES.glob("*/flow.py"))


def run_example(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "PYTHONHASHSEED": "0",
    }
    return subprocess.run(
        [sys.executable, "-m", f"examples.{name}.flow", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def test_examples_are_discovered() -> None:
    found = discover()
    assert set(EXPECTED) - {"demo"} <= set(found)
    for name in found:
        folder = EXAMPLES / name
        assert (folder / "__init__.py").is_file(), f"{name} lacks __init__.py"
        assert (folder / "README.md").is_file(), f"{name} lacks README.md"


@pytest.mark.parametrize("name", [name for name in discover() if name != "demo"])
def test_example_runs(name: str) -> None:
    done = run_example(name)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout}\n{done.stderr}"
    expected = EXPECTED.get(name)
    if expected is None:
        assert done.stdout.strip(), f"{name} printed nothing"
    else:
        assert expected in done.stdout, f"{name} output:\n{done.stdout}\n{done.stderr}"


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    """The `make demo` flow: output, Mermaid file and the persisted history."""
    # --output-dir keeps the demo's files out of the working tree.
    done = run_example("demo", "--output-dir", str(tmp_path))
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert EXPECTED["demo"] in done.stdout
    assert "Males keep the egg warm for about 65 days;" in done.stdout
    diagram = (tmp_path / "flow.mmd").read_text(encoding="utf-8")
    assert diagram.startswith("graph LR")
    assert "archive" in diagram
    assert "penguiflow-admin history" in done.stdout
    assert "node_success  writer" in done.stdout  # the persisted history, as a table


def test_every_example_is_listed_in_the_docs_index() -> None:
    index = (ROOT / "docs" / "examples.md").read_text(encoding="utf-8")
    missing = [name for name in discover() if f"(../examples/{name}/)" not in index]
    assert missing == []
