"""The runnable snippets of docs/planner.md run and print what the guide says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "planner.md"


def test_guide_snippets_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    # Catalog, first planner, runaway loop: each builds on the previous one.
    code = "\n".join(blocks[:3])
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "answer_complete {'intent': 'pricing'}",
        "budget_exhausted 2",
    ]
