"""penguiflow.journal: the public names, the records, the codec and ``journal_of``."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest

import penguiflow.journal as journal_module
from penguiflow.errors import (
    InterruptTokenError,
    JournalConflict,
    JournalError,
    PenguiFlowError,
    SerializationError,
    StateStoreError,
)
from penguiflow.journal import (
    EdgeEntry,
    Input,
    InterruptRecord,
    JournalSnapshot,
    RookeryEntry,
    StateEntry,
    decode_item,
    encode_item,
    journal_of,
)
from penguiflow.testkit import InMemoryJournal
from penguiflow.types import Headers, Message

RECORDS = [
    journal_module.Acceptance,
    journal_module.EdgeEntry,
    journal_module.Input,
    journal_module.InterruptRecord,
    journal_module.JournalSnapshot,
    journal_module.Outgoing,
    journal_module.RookeryEntry,
    journal_module.StateEntry,
    journal_module.StateUpdate,
    journal_module.StepResult,
    journal_module.TraceRecord,
]


def test_module_exports_exactly_these_names() -> None:
    assert journal_module.__all__ == [
        "Acceptance",
        "EdgeEntry",
        "Input",
        "InterruptRecord",
        "Journal",
        "JournalSnapshot",
        "Outgoing",
        "RookeryEntry",
        "StateEntry",
        "StateUpdate",
        "StepResult",
        "TraceRecord",
        "TraceStatus",
        "decode_item",
        "encode_item",
        "journal_of",
    ]


def test_sqlite_journal_module_exports() -> None:
    import penguiflow.stores.sqlite_journal as module

    assert module.__all__ == ["JOURNAL_SCHEMA", "JournalStatistics", "SQLiteJournal"]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.__name__)
def test_records_are_frozen_and_documented_as_new(record: type) -> None:
    assert dataclasses.is_dataclass(record)
    assert record.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert ".. versionadded:: 3.0" in (record.__doc__ or "")


@pytest.mark.parametrize("name", [n for n in journal_module.__all__ if n != "TraceStatus"], ids=str)
def test_every_public_name_is_documented_as_new(name: str) -> None:
    assert ".. versionadded:: 3.0" in (getattr(journal_module, name).__doc__ or "")


def test_errors_sit_under_state_store_error() -> None:
    assert issubclass(JournalError, StateStoreError)
    assert issubclass(JournalConflict, JournalError)
    assert issubclass(InterruptTokenError, JournalError)
    assert issubclass(JournalError, PenguiFlowError)
    conflict = JournalConflict("gone", entry_id=7, path="x.db")
    token = InterruptTokenError("used", token="tok")
    assert (conflict.entry_id, conflict.path, token.token, token.path) == (7, "x.db", "tok", None)


def test_a_message_round_trips_through_the_codec() -> None:
    message = Message(payload={"rows": (1, b"\x00")}, headers=Headers(tenant="t"), trace_id="x")
    assert decode_item(encode_item(message)) == message


def test_an_unserialisable_value_names_where_it_is() -> None:
    with pytest.raises(SerializationError) as caught:
        encode_item({"rows": [1, object()]})
    assert caught.value.path == "rows[1]"


def test_records_decode_their_text() -> None:
    text = encode_item({"k": [1, 2]})
    assert EdgeEntry(1, "e", "t", text).decode() == {"k": [1, 2]}
    assert StateEntry("t", "k", text).decode() == {"k": [1, 2]}
    assert RookeryEntry(1, "t", text).decode() == {"k": [1, 2]}
    record = InterruptRecord("tok", "t", "n", text)
    assert (record.decode_payload(), record.decode_resume_value()) == ({"k": [1, 2]}, None)


def test_snapshot_selects_one_edge_in_order() -> None:
    entries = tuple(EdgeEntry(i, "a" if i % 2 else "b", None, "1") for i in range(5))
    assert [e.id for e in JournalSnapshot(entries=entries).edge("a")] == [1, 3]


def test_input_defaults_are_a_new_keyless_traceless_item() -> None:
    item = Input("ingress", 1)
    assert (item.trace_id, item.idempotency_key, item.deadline) == (None, None, None)


def test_journal_of_returns_a_journal_given_directly_or_as_attribute() -> None:
    journal = InMemoryJournal()

    class Holder:
        def __init__(self) -> None:
            self.journal = journal

    assert journal_of(journal) is journal
    assert journal_of(Holder()) is journal


def test_journal_of_refuses_an_attribute_that_is_no_journal() -> None:
    class Pretender:
        journal = "not a journal"

    with pytest.raises(TypeError, match=r"test_journal_records\..*Pretender keeps no journal"):
        journal_of(Pretender())


def test_distributed_codec_is_the_same_codec() -> None:
    import penguiflow._codec as codec
    import penguiflow.distributed._codec as shim

    assert (shim.encode, shim.decode, shim.dumps, shim.loads) == (
        codec.encode,
        codec.decode,
        codec.dumps,
        codec.loads,
    )


def test_importing_the_journal_is_light() -> None:
    code = (
        "import sys, penguiflow.journal; "
        "print(sorted(m for m in ('sqlite3', 'pydantic', 'penguiflow.distributed') "
        "if m in sys.modules))"
    )
    # Without coverage's environment: coverage itself stores its data with sqlite3.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        env=env,
    )
    assert out.stdout.strip() == "[]"
