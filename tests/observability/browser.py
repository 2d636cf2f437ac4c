"""Headless Chromium from Debian's packages, driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """/usr/bin/chromium; skip without it, except under CI where it must exist."""
    path = shutil.which("chromium") or (
        "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
    )
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed under CI: the browser tests must run")
        pytest.skip("chromium is not installed (scripts/chromium.sh installs it)")
    return path
