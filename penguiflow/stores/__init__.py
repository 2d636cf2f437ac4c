"""State stores shipped with PenguiFlow.

``SQLiteStateStore`` (``penguiflow.stores.sqlite``) is the embedded default: one
file, no server, history and remote bindings kept across restarts. The in-memory
fake lives in ``penguiflow.testkit``.
"""

from __future__ import annotations

from penguiflow.stores.sqlite import SQLiteStateStore

__all__ = ["SQLiteStateStore"]
