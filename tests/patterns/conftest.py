"""Fixtures for pattern unit tests."""

from __future__ import annotations

import pytest
from patterns_support import make_node

from penguiflow.node import Node


@pytest.fixture
def left() -> Node:
    return make_node("left")


@pytest.fixture
def right() -> Node:
    return make_node("right")
