"""The flow runtime behind ``penguiflow.core`` (package-private; import from ``core``)."""

from __future__ import annotations

__all__: list[str] = []
