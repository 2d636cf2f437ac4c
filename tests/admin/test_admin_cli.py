"""The ``penguiflow-admin`` console script, run as a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("penguiflow-admin")


def run_cli(
    *args: str, module: bool = False, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "penguiflow.admin"] if module else [str(SCRIPT)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(cwd or "."), *sys.path])}
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=60, env=env, cwd=cwd
    )


@pytest.fixture(autouse=True)
def _script_installed() -> None:
    assert SCRIPT.exists(), "the editable install provides the console script"


def test_help_explains_the_commands_and_examples() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: penguiflow-admin [-h] {history,replay} ...\n")
    assert "--state-store ./demo-output/runs.db" in result.stdout
    assert "Exit status" in result.stdout


def test_no_command_is_a_usage_error() -> None:
    result = run_cli()
    assert result.returncode == 2
    assert "usage: penguiflow-admin" in result.stderr


def test_history_from_a_sqlite_file(sqlite_file: Path) -> None:
    result = run_cli("history", "T1", "--state-store", str(sqlite_file))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events] == ["node_start", "remote_call_success", "node_success"]
    assert events[1]["remote_status"] == "success"


def test_history_through_a_factory_spec(factory_dir: Path) -> None:
    result = run_cli("history", "T1", "--state-store", "adminstores:make", cwd=factory_dir)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2


def test_missing_trace_prints_nothing_and_exits_0(sqlite_file: Path) -> None:
    result = run_cli("history", "absent", "--state-store", str(sqlite_file))
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_bad_factory_path_exits_1_with_the_reason() -> None:
    result = run_cli("history", "T1", "--state-store", "nomod:make")
    assert result.returncode == 1
    assert result.stderr == "error: No module named 'nomod'\n"


def test_unreadable_file_exits_1_with_the_reason(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("not a database\n" * 300)
    result = run_cli("history", "T1", "--state-store", str(notes))
    assert result.returncode == 1
    assert result.stderr.startswith("error: state store ")
    assert "is not a readable SQLite database" in result.stderr


def test_python_dash_m_behaves_the_same(sqlite_file: Path) -> None:
    result = run_cli("replay", "T2", "--state-store", str(sqlite_file), module=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "# replay trace=T2 events=1"
