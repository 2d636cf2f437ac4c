"""The planner examples run offline and print what their READMEs promise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("react_minimal", "answer: {'answer': 'pricing:", id="minimal"),
        pytest.param("react_parallel", "join:   {'total_hits': 42, 'shards': 2}", id="parallel"),
        pytest.param("react_pause_resume", "status': 'refunded after approval'}", id="pause"),
        pytest.param("react_replan", "step:   cached_search -> ok", id="replan"),
    ],
)
def test_example_runs(name: str, expected: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", f"examples.{name}.flow"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout
    readme = (ROOT / "examples" / name / "README.md").read_text()
    assert expected in readme
