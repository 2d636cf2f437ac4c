"""Fixtures for the testkit tests: isolation of the module-global recorder history."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from penguiflow.testkit import clear_recorded_events


@pytest.fixture(autouse=True)
def _fresh_history() -> Iterator[None]:
    """Each test starts and ends with an empty ``run_one`` history."""
    clear_recorded_events()
    yield
    clear_recorded_events()
