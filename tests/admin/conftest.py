"""Fixtures for the admin CLI tests: a factory module and a populated SQLite file."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

import pytest

from penguiflow.state import StoredEvent
from penguiflow.stores import SQLiteStateStore

FACTORY_MODULE = textwrap.dedent(
    """
    from penguiflow.state import StoredEvent

    class FixedStore:
        def __init__(self):
            self.events = [
                StoredEvent("T1", 1.0, "node_start", "a", "ida", {"attempt": 0}),
                StoredEvent("T1", 2.0, "node_success", "a", "ida", {"latency_ms": 3.5, "z": 1}),
                StoredEvent("T2", 3.0, "node_start", "b", "idb", {}),
            ]

        async def save_event(self, event):
            self.events.append(event)

        async def load_history(self, trace_id):
            return [e for e in self.events if e.trace_id == trace_id]

        async def save_remote_binding(self, binding):
            return None

    def make():
        return FixedStore()

    async def make_async():
        return FixedStore()

    NOT_CALLABLE = 3

    def not_a_store():
        return object()

    def broken():
        raise RuntimeError("backend down")
    """
)


@pytest.fixture
def factory_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder holding ``adminstores.py``, importable in-process and by subprocesses."""
    folder = tmp_path / "factories"
    folder.mkdir()
    (folder / "adminstores.py").write_text(FACTORY_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    return folder


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Path:
    """A SQLite store file holding three events of trace ``T1`` and one of ``T2``."""
    path = tmp_path / "runs.db"

    async def fill() -> None:
        async with SQLiteStateStore(path) as store:
            for n, kind in enumerate(["node_start", "remote_call_success", "node_success"]):
                payload = {"event": kind, "attempt": 0, "latency_ms": float(n)}
                if kind == "remote_call_success":
                    payload["remote_status"] = "success"
                await store.save_event(StoredEvent("T1", 1000.0 + n, kind, "a", "ida", payload))
            await store.save_event(StoredEvent("T2", 2000.0, "node_start", "b", "idb", {}))

    asyncio.run(fill())
    return path
