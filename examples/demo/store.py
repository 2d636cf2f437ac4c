"""The demo's state-store factory, importable by ``penguiflow-admin --state-store``.

``penguiflow-admin history <trace> --state-store examples.demo.store:open_store``
opens the same SQLite file the demo wrote (``$PENGUIFLOW_DEMO_DB``, default
``demo-output/demo.sqlite3``).
"""

from __future__ import annotations

import os

from penguiflow.stores import SQLiteStateStore

DEFAULT_DB = "demo-output/demo.sqlite3"


def open_store() -> SQLiteStateStore:
    return SQLiteStateStore(os.environ.get("PENGUIFLOW_DEMO_DB", DEFAULT_DB))
