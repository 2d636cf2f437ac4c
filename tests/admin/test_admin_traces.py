"""``penguiflow-admin traces``: the unfinished and parked traces of a store's journal."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from penguiflow.admin import main
from penguiflow.journal import Input
from penguiflow.stores import SQLiteStateStore


@pytest.fixture
def journal_file(tmp_path: Path) -> Path:
    """A journal with one running, one parked, one undelivered and one finished trace."""
    path = tmp_path / "runs.db"

    async def fill() -> None:
        async with SQLiteStateStore(path) as store:
            journal = store.journal
            _, _, undelivered, finished = await journal.accept(
                [
                    Input("in", 1, trace_id="T-run", idempotency_key="order-1"),
                    Input("in", 2, trace_id="T-park"),
                    Input("in", 3, trace_id="T-undelivered"),
                    Input("in", 4, trace_id="T-done", idempotency_key="order-4"),
                ]
            )
            assert undelivered.entry_id is not None
            assert finished.entry_id is not None
            await journal.park("tok", trace_id="T-park", node="approve", payload="?")
            await journal.commit_step("T-undelivered", consumed=undelivered.entry_id, rookery=["r"])
            await journal.commit_step("T-done", consumed=finished.entry_id)

    asyncio.run(fill())
    return path


def test_lists_unfinished_traces_oldest_first(
    journal_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["traces", "--state-store", str(journal_file)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["trace_id", "status", "entries", "undelivered", "keys"]
    assert [line.split() for line in lines[1:]] == [
        ["T-run", "running", "1", "0", "order-1"],
        ["T-park", "parked", "1", "0"],
        ["T-undelivered", "undelivered", "0", "1"],
    ]


def test_parked_lists_only_traces_waiting_for_resume(
    journal_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["traces", "--state-store", str(journal_file), "--parked", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document == {
        "traces": [
            {
                "trace_id": "T-park",
                "status": "parked",
                "entries": 1,
                "undelivered": 0,
                "idempotency_keys": [],
            }
        ]
    }


def test_all_includes_settled_traces(
    journal_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["traces", "--state-store", str(journal_file), "--all", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["traces"]
    assert [(r["trace_id"], r["status"]) for r in rows][-1] == ("T-done", "finished")
    assert rows[-1]["idempotency_keys"] == ["order-4"]


def test_an_empty_journal_prints_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "empty.db"

    async def create() -> None:
        async with SQLiteStateStore(path) as store:
            await store.journal.load()

    asyncio.run(create())
    assert main(["traces", "--state-store", str(path)]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["traces", "--state-store", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"traces": []}


def test_a_store_without_a_journal_exits_1_naming_it(
    factory_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["traces", "--state-store", "adminstores:make"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: adminstores.FixedStore keeps no journal")


def test_a_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["traces", "--state-store", str(tmp_path / "absent.db")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_console_script_lists_traces(journal_file: Path) -> None:
    import subprocess

    script = Path(sys.executable).with_name("penguiflow-admin")
    done = subprocess.run(
        [str(script), "traces", "--state-store", str(journal_file), "--parked"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["trace_id", "T-park"]


def test_help_lists_traces_under_the_225_usage_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: penguiflow-admin [-h] {history,replay} ...\n")
    assert "    traces          list the traces a durable flow's journal still holds" in out
