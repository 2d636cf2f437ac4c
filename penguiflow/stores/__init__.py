"""State stores shipped with PenguiFlow.

``SQLiteStateStore`` (``penguiflow.stores.sqlite``) is the embedded default: one
file, no server, history and remote bindings kept across restarts. The in-memory
fake lives in ``penguiflow.testkit``; ``penguiflow.stores.encoding`` holds the
payload encoding shared by the stores.

``SQLiteStateStore`` resolves on first access, so importing this package (or
``encoding``) does not load the SQLite driver.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["SQLiteStateStore"]


def __getattr__(name: str) -> Any:
    if name == "SQLiteStateStore":
        return importlib.import_module("penguiflow.stores.sqlite").SQLiteStateStore
    raise AttributeError(f"module 'penguiflow.stores' has no attribute {name!r}")


if TYPE_CHECKING:  # pragma: no cover - static re-export for type checkers
    from penguiflow.stores.sqlite import SQLiteStateStore as SQLiteStateStore
