"""What the benchmark smoke tests share: running ``python -m <module>`` from the repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["REPO", "run_module"]

REPO = Path(__file__).resolve().parents[2]


def run_module(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m <args>`` from the repository root, not measured for coverage."""
    # Subprocesses are not measured for coverage: that would slow them down and let
    # the benchmarks count as tests of the runtime.
    env = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    return subprocess.run(
        [sys.executable, "-m", *map(str, args)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
