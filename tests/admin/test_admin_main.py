"""penguiflow.admin in-process: load_state_store, render_events and main() per the spec."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from penguiflow.admin import load_state_store, main, render_events
from penguiflow.state import StoredEvent


def test_exports_are_the_spec_names_in_order() -> None:
    import penguiflow.admin as admin

    assert admin.__all__ == ["load_state_store", "render_events", "main"]


# --- load_state_store -------------------------------------------------------------------


@pytest.mark.parametrize("spec", [pytest.param("nocolon", id="no-colon"), ":make", "adminstores:"])
async def test_malformed_spec_is_a_value_error(spec: str) -> None:
    with pytest.raises(ValueError) as info:
        await load_state_store(spec)
    assert str(info.value) == "state store spec must be in the form 'package.module:callable'"


async def test_missing_module_propagates_the_import_error() -> None:
    with pytest.raises(ModuleNotFoundError, match="No module named 'nomod'"):
        await load_state_store("nomod:make")


async def test_missing_attribute_is_a_value_error(factory_dir: Path) -> None:
    with pytest.raises(ValueError) as info:
        await load_state_store("adminstores:absent")
    assert str(info.value) == "'adminstores:absent' does not resolve to a callable"


async def test_non_callable_attribute_is_a_type_error(factory_dir: Path) -> None:
    with pytest.raises(TypeError) as info:
        await load_state_store("adminstores:NOT_CALLABLE")
    assert str(info.value) == "'adminstores:NOT_CALLABLE' resolved to <class 'int'>, not a callable"


async def test_factory_result_without_hooks_is_a_type_error(factory_dir: Path) -> None:
    with pytest.raises(TypeError) as info:
        await load_state_store("adminstores:not_a_store")
    assert str(info.value) == (
        "StateStore factories must implement save_event/load_history/save_remote_binding"
    )


@pytest.mark.parametrize("factory", ["make", "make_async"])
async def test_sync_and_async_factories_build_the_store(factory_dir: Path, factory: str) -> None:
    store = await load_state_store(f"adminstores:{factory}")
    assert [e.kind for e in await store.load_history("T1")] == ["node_start", "node_success"]


# --- render_events ----------------------------------------------------------------------


def test_render_fills_only_missing_keys_with_sorted_json() -> None:
    event = StoredEvent("t", 1.0, "k", None, None, {"z": 1})
    assert render_events([event]) == [
        '{"event": "k", "node_id": null, "node_name": null, "trace_id": "t", "ts": 1.0, "z": 1}'
    ]


def test_render_keeps_payload_values_over_record_fields() -> None:
    event = StoredEvent("t", 1.0, "kind", "n", "i", {"event": "own", "ts": 9})
    assert json.loads(render_events([event])[0])["event"] == "own"
    assert json.loads(render_events([event])[0])["ts"] == 9


def test_render_stringifies_non_json_values() -> None:
    event = StoredEvent("t", 1.0, "k", None, None, {"obj": ValueError("boom")})
    assert json.loads(render_events([event])[0])["obj"] == "boom"


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        pytest.param(None, [0, 1, 2], id="none-keeps-all"),
        pytest.param(2, [1, 2], id="last-two"),
        pytest.param(10, [0, 1, 2], id="more-than-stored"),
        pytest.param(0, [], id="zero-keeps-none"),
        pytest.param(-1, [], id="negative-keeps-none"),
    ],
)
def test_render_tail(tail: int | None, expected: list[int]) -> None:
    events = [StoredEvent("t", float(n), "k", None, None, {"n": n}) for n in range(3)]
    assert [json.loads(line)["n"] for line in render_events(events, tail=tail)] == expected


# --- main -----------------------------------------------------------------------------


def test_history_prints_one_line_per_event(
    factory_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "T1", "--state-store", "adminstores:make"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["event"] for line in out] == ["node_start", "node_success"]


def test_history_options_may_precede_the_trace_id(
    factory_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "--state-store", "adminstores:make", "--tail", "1", "T1"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert json.loads(line)["event"] == "node_success"


def test_history_of_unknown_trace_prints_nothing_and_succeeds(
    factory_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "nope", "--state-store", "adminstores:make"]) == 0
    assert capsys.readouterr().out == ""


def test_replay_prints_header_then_events(
    factory_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "T1", "--state-store", "adminstores:make"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "# replay trace=T1 events=2"
    assert [json.loads(line)["event"] for line in out[1:]] == ["node_start", "node_success"]


def test_replay_of_unknown_trace_says_so(
    factory_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "nope", "--state-store", "adminstores:make"]) == 0
    assert capsys.readouterr().out == "# trace nope has no stored events\n"


def test_replay_tail_zero_leaves_nothing(
    factory_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "T1", "--state-store", "adminstores:make", "--tail", "0"]) == 0
    assert capsys.readouterr().out == "# trace T1 has no stored events\n"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bad", "error: state store spec must be in the form 'package.module:callable'"),
        ("nomod:make", "error: No module named 'nomod'"),
        ("adminstores:broken", "error: backend down"),
    ],
)
def test_command_errors_print_on_stderr_and_return_1(
    factory_dir: Path, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    assert main(["history", "T1", "--state-store", spec]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == message
    assert captured.out == ""


def test_global_options_before_the_command_are_an_argparse_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["--state-store", "adminstores:make", "history", "T1"])
    assert info.value.code == 2


def test_missing_state_store_is_an_argparse_error() -> None:
    with pytest.raises(SystemExit) as info:
        main(["history", "T1"])
    assert info.value.code == 2


def test_argv_none_reads_sys_argv(
    factory_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "sys.argv", ["penguiflow-admin", "replay", "T2", "--state-store", "adminstores:make"]
    )
    assert main() == 0
    assert capsys.readouterr().out.startswith("# replay trace=T2 events=1\n")


# --- conveniences beyond the spec ------------------------------------------------------


def test_sqlite_path_is_accepted_as_state_store(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "T1", "--state-store", str(sqlite_file)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["event"] for line in out] == [
        "node_start",
        "remote_call_success",
        "node_success",
    ]


def test_missing_sqlite_file_is_an_error_not_a_new_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "absent.db"
    assert main(["history", "T1", "--state-store", str(missing)]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert not missing.exists()


def test_history_json_is_one_document(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "T1", "--state-store", str(sqlite_file), "--json", "--tail", "2"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["trace_id"] == "T1"
    assert [e["event"] for e in document["events"]] == ["remote_call_success", "node_success"]


def test_history_json_of_unknown_trace_has_no_events(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "nope", "--state-store", str(sqlite_file), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"trace_id": "nope", "events": []}


def test_history_table_is_aligned_with_details(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["history", "T1", "--state-store", str(sqlite_file), "--table"]) == 0
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["time", "(UTC)", "event", "node", "attempt", "latency_ms", "details"]
    assert len(rows) == 3
    assert rows[1].split()[1:5] == ["remote_call_success", "a", "0", "1.0"]
    assert rows[1].endswith('remote_status="success"')
    assert rows[0].index("node_start") == header.index("event")


def test_table_shows_unparseable_timestamps_verbatim() -> None:
    from penguiflow.admin import _render_table

    (_, row) = _render_table([StoredEvent("t", 0.0, "k", None, None, {"ts": "later"})])
    assert row.split()[:3] == ["later", "k", "-"]


def test_replay_table_has_header_line_and_rows(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "T2", "--state-store", str(sqlite_file), "--table"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "# replay trace=T2 events=1"
    assert out[1].split()[1:3] == ["node_start", "b"]


def test_replay_with_delay_prints_the_same_lines(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", "T1", "--state-store", str(sqlite_file)]) == 0
    plain = capsys.readouterr().out
    assert main(["replay", "T1", "--state-store", str(sqlite_file), "--delay", "0.0001"]) == 0
    assert capsys.readouterr().out == plain


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_empty_history_is_explained_to_a_person_at_a_terminal(
    sqlite_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(["history", "nope", "--state-store", str(sqlite_file)]) == 0
    assert capsys.readouterr().out == ""
    assert terminal.getvalue() == "# trace nope has no stored events\n"
