"""Fixtures for the planner tests."""

from __future__ import annotations

import os

import pytest

# litellm fetches its model cost map over the network at import unless told not to.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@pytest.fixture
def catalog():
    from planner_support import default_catalog

    return default_catalog()
