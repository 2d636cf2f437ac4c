"""penguiflow.stores.encoding: how payloads are serialised and events identified."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from pydantic import BaseModel

import penguiflow.stores as stores
from penguiflow.state import StoredEvent
from penguiflow.stores.encoding import dumps_payload, event_key
from penguiflow.stores.sqlite import SQLiteStateStore


class _Model(BaseModel):
    x: int


class _Unserialisable(BaseModel):
    model_config = {"arbitrary_types_allowed": True}
    thing: object

    def __str__(self) -> str:
        return "unserialisable"


def test_sets_become_lists() -> None:
    assert json.loads(dumps_payload({"s": {1}, "f": frozenset({2})})) == {"s": [1], "f": [2]}


def test_models_become_data_and_broken_models_text() -> None:
    encoded = json.loads(dumps_payload({"m": _Model(x=1), "bad": _Unserialisable(thing=object())}))
    assert encoded == {"m": {"x": 1}, "bad": "unserialisable"}


def test_event_key_depends_on_every_field() -> None:
    base = StoredEvent("t", 1.0, "k", "n", "i", {"a": 1})
    variants = [
        StoredEvent("u", 1.0, "k", "n", "i", {"a": 1}),
        StoredEvent("t", 1.5, "k", "n", "i", {"a": 1}),
        StoredEvent("t", 1.0, "j", "n", "i", {"a": 1}),
        StoredEvent("t", 1.0, "k", "m", "i", {"a": 1}),
        StoredEvent("t", 1.0, "k", "n", "h", {"a": 1}),
        StoredEvent("t", 1.0, "k", "n", "i", {"a": 2}),
    ]
    key = event_key(base, dumps_payload(base.payload))
    assert key == event_key(base, dumps_payload(dict(base.payload)))
    assert all(key != event_key(v, dumps_payload(v.payload)) for v in variants)


def test_stores_package_exports_the_sqlite_store_lazily() -> None:
    assert stores.__all__ == ["SQLiteStateStore"]
    assert stores.SQLiteStateStore is SQLiteStateStore
    probe = "import sys, penguiflow.stores.encoding; print('sqlite3' in sys.modules)"
    # Without coverage's environment: coverage itself stores its data with sqlite3.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE")}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=env
    )
    assert out.stdout.strip() == "False"


def test_stores_package_has_no_other_attributes() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Redis'"):
        stores.Redis  # noqa: B018
