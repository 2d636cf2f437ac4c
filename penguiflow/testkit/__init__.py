"""Test helpers for PenguiFlow programs (the 2.2.5 ``penguiflow.testkit`` API and more)."""

from __future__ import annotations

from penguiflow.testkit._clock import FakeClock

__all__ = ["FakeClock"]
