"""Create and check the isolated virtualenv that holds PenguiFlow 2.2.5 for timing.

The suite compares this project with the published PenguiFlow 2.2.5. That package is
installed from the package registry into its own virtualenv (``benchmarks/.venv-penguiflow225``,
gitignored) so it can never shadow the working tree or touch the shared ``.venv``. It is
only ever imported by ``runner.py`` in a subprocess, to time it; its source is not read.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

__all__ = ["DEFAULT_VENV", "PENGUIFLOW_225", "VenvError", "ensure_venv", "venv_python"]

PENGUIFLOW_225 = "2.2.5"
DEFAULT_VENV = Path(__file__).resolve().parent / ".venv-penguiflow225"

# Probe run by the venv's interpreter: prints the installed distribution's version and
# the module file, so we know `import penguiflow` resolves inside the venv.
_PROBE = (
    "import importlib.metadata as m, penguiflow, pydantic; "
    "print(m.version('penguiflow'), pydantic.VERSION, penguiflow.__file__)"
)


class VenvError(RuntimeError):
    """The isolated 2.2.5 virtualenv could not be created or does not hold 2.2.5."""


def venv_python(venv: Path = DEFAULT_VENV) -> Path:
    """Return the path of the virtualenv's interpreter."""
    return venv / "bin" / "python"


def _clean_env() -> dict[str, str]:
    # PYTHONPATH would let the working tree shadow the installed 2.2.5 package.
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    return env


def _probe(python: Path) -> tuple[str, str, str] | None:
    if not python.exists():
        return None
    proc = subprocess.run(
        [str(python), "-c", _PROBE],
        capture_output=True,
        text=True,
        env=_clean_env(),
        cwd="/",
        check=False,
    )
    if proc.returncode != 0:
        return None
    version, pyd, path = proc.stdout.split()
    return version, pyd, path


def ensure_venv(venv: Path = DEFAULT_VENV, *, log=print) -> Path:
    """Create the 2.2.5 virtualenv if needed and return its interpreter.

    pydantic is pinned to the version this interpreter has, so both frameworks pay the
    same validation and ``model_copy`` costs and the ratios measure the runtimes.

    Raises:
        VenvError: creating the venv or installing the package failed.
    """
    import pydantic

    python = venv_python(venv)
    found = _probe(python)
    if found and found[0] == PENGUIFLOW_225 and found[1] == pydantic.VERSION:
        return python
    log(f"creating {venv} with penguiflow=={PENGUIFLOW_225} pydantic=={pydantic.VERSION}")
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            f"penguiflow=={PENGUIFLOW_225}",
            f"pydantic=={pydantic.VERSION}",
        ],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(), check=False)
        if proc.returncode != 0:
            raise VenvError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    found = _probe(python)
    if not found or found[0] != PENGUIFLOW_225:
        raise VenvError(f"{venv} does not provide penguiflow {PENGUIFLOW_225}: {found}")
    if not found[2].startswith(str(venv)):
        raise VenvError(f"penguiflow resolves outside the venv: {found[2]}")
    return python
