"""The persistence example runs, writes its SQLite file and shows its history."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_example_persists_the_run_and_prints_its_history(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "examples.persistence_sqlite.flow", "--output-dir", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "persistence.db").is_file()
    out = result.stdout
    assert "result: approved (draft: a poem about penguins)" in out
    assert "remote binding: RemoteBinding(" in out
    table = out.split("$ penguiflow-admin history ", 1)[1].splitlines()[2:]
    assert [row.split()[1] for row in table] == [
        "node_start",
        "node_success",
        "node_start",
        "remote_call_start",
        "remote_call_success",
        "node_success",
    ]
