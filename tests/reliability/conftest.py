"""Fixtures and markers of the reliability suites (chaos, storm, fuzz, load).

Tests marked ``slow`` here are the full-size runs (20,000 A2A requests, ...):
they are skipped unless the run selects them with ``-m slow`` or sets
``PENGUIFLOW_RELIABILITY_FULL=1``; the CI-size variants always run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = "slow" in (config.getoption("markexpr") or "") or bool(
        os.environ.get("PENGUIFLOW_RELIABILITY_FULL")
    )
    if wanted:
        return
    skip = pytest.mark.skip(reason="full-size run: use -m slow or PENGUIFLOW_RELIABILITY_FULL=1")
    for item in items:
        if item.get_closest_marker("slow") and _HERE in Path(str(item.path)).parents:
            item.add_marker(skip)
