"""Every ```python block of README.md and docs/*.md runs as its own program.

Each block runs in a fresh subprocess with the repository root as the working
directory and ``LITELLM_LOCAL_MODEL_COST_MAP=True``. An HTML comment on the line
right before the fence changes how a block is treated:

- ``<!-- snippet: fragment -->``: not a program (an excerpt); skipped.
- ``<!-- snippet: continues -->``: runs after the previous block of the same page
  (the page builds one program step by step).
- ``<!-- snippet: needs-redis -->``: runs only when ``PENGUIFLOW_TEST_REDIS_URL`` is
  set; the block reads the URL from the environment itself.
- ``<!-- snippet: pytest -->``: a test module; runs under pytest (asyncio_mode=auto,
  warnings as errors, the testkit plugin) and must collect and pass at least one test.

The blocks run in parallel threads (each is a subprocess) once per session; each
test then checks one block's outcome.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKERS = frozenset({"fragment", "continues", "needs-redis", "pytest"})
REDIS_ENV = "PENGUIFLOW_TEST_REDIS_URL"
# Per block; the whole file stays well under a minute because blocks run in parallel.
BLOCK_TIMEOUT_S = 45.0
WORKERS = 6

# The first test's setup runs every block (the module fixture below): its time grows
# with the docs and with the machine's load (coverage follows the subprocesses), so
# the suite-wide 120 s per test is too tight for it. Each block keeps its own bound.
pytestmark = pytest.mark.timeout(600)

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_MARKER = re.compile(r"<!--\s*snippet:\s*([\w-]+)\s*-->")


@dataclass(frozen=True)
class Snippet:
    """One ```python block: where it is, its marker and the program to run."""

    page: str
    line: int
    marker: str | None
    code: str

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def _marker_before(text: str, start: int) -> str | None:
    """Return the snippet marker on the line right before offset ``start``, if any."""
    before = text[:start].rstrip("\n").rsplit("\n", 1)[-1]
    found = _MARKER.search(before)
    return found.group(1) if found else None


def collect_snippets() -> list[Snippet]:
    """Find every ```python block of the README and the guides, in page order."""
    snippets: list[Snippet] = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        program = ""
        for match in _FENCE.finditer(text):
            marker = _marker_before(text, match.start())
            code = match.group(1)
            if marker == "continues":
                code = program + "\n" + code
            if marker != "fragment":
                program = code
            snippets.append(
                Snippet(
                    page=str(page.relative_to(ROOT)),
                    line=text.count("\n", 0, match.start()) + 1,
                    marker=marker,
                    code=code,
                )
            )
    return snippets


SNIPPETS = collect_snippets()


def _runnable(snippet: Snippet) -> bool:
    if snippet.marker == "fragment":
        return False
    return snippet.marker != "needs-redis" or bool(os.environ.get(REDIS_ENV))


_PYTEST_INI = (
    "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
    "filterwarnings = error\n"
)


def _run(snippet: Snippet) -> subprocess.CompletedProcess[str] | str:
    env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONPATH=str(ROOT))
    with tempfile.TemporaryDirectory(prefix="doc-snippet-") as tmp:
        if snippet.marker == "pytest":
            # Its own rootdir and ini, so the repository's conftest files stay out.
            (Path(tmp) / "pytest.ini").write_text(_PYTEST_INI, encoding="utf-8")
            (Path(tmp) / "test_snippet.py").write_text(snippet.code, encoding="utf-8")
            command = [
                sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "-p", "penguiflow.testkit.pytest_plugin", "--rootdir", tmp, tmp,
            ]  # fmt: skip
        else:
            command = [sys.executable, "-c", snippet.code]
        try:
            return subprocess.run(
                command,
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT_S,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return f"timed out after {BLOCK_TIMEOUT_S:.0f} s"


@pytest.fixture(scope="module")
def outcomes() -> dict[str, subprocess.CompletedProcess[str] | str]:
    """Run every runnable block once, in parallel subprocesses."""
    todo = [snippet for snippet in SNIPPETS if _runnable(snippet)]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = pool.map(_run, todo)
        return {snippet.id: result for snippet, result in zip(todo, results, strict=True)}


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[snippet.id for snippet in SNIPPETS])
def test_python_block_runs(
    snippet: Snippet, outcomes: dict[str, subprocess.CompletedProcess[str] | str]
) -> None:
    """The block runs to completion with exit status 0."""
    if snippet.marker == "fragment":
        pytest.skip("marked <!-- snippet: fragment -->")
    if snippet.marker == "needs-redis" and not os.environ.get(REDIS_ENV):
        pytest.skip(f"needs {REDIS_ENV}")
    done = outcomes[snippet.id]
    assert not isinstance(done, str), f"{snippet.id} {done}"
    # pytest exits 5 when it collected nothing: a test block must hold a test.
    assert done.returncode == 0, f"{snippet.id} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"


def test_every_marker_is_known() -> None:
    """A misspelt marker would silently run (or skip) the wrong way."""
    unknown = [s.id for s in SNIPPETS if s.marker is not None and s.marker not in MARKERS]
    assert unknown == []


def test_fewer_than_a_quarter_of_blocks_are_fragments() -> None:
    """Most of the documentation is runnable, not excerpts."""
    fragments = [s for s in SNIPPETS if s.marker == "fragment"]
    assert len(SNIPPETS) > 0
    assert len(fragments) / len(SNIPPETS) < 0.25, [s.id for s in fragments]


def test_continued_blocks_follow_a_runnable_block() -> None:
    """``continues`` needs an earlier, non-fragment block on the same page."""
    firsts: set[str] = set()
    orphans = []
    for snippet in SNIPPETS:
        if snippet.marker == "continues" and snippet.page not in firsts:
            orphans.append(snippet.id)
        if snippet.marker != "fragment":
            firsts.add(snippet.page)
    assert orphans == []


def test_every_guide_is_linked_from_the_readme() -> None:
    """Each docs page is reachable from README.md."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unlinked = [
        page.name
        for page in sorted((ROOT / "docs").glob("*.md"))
        if f"(docs/{page.name}" not in readme
    ]
    assert unlinked == []


def test_every_example_is_in_the_examples_index() -> None:
    """docs/examples.md lists every example folder."""
    index = (ROOT / "docs" / "examples.md").read_text(encoding="utf-8")
    missing = [
        folder.name
        for folder in sorted((ROOT / "examples").iterdir())
        if (folder / "flow.py").is_file() and f"(../examples/{folder.name}/)" not in index
    ]
    assert missing == []


_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_every_relative_link_resolves() -> None:
    """Links between the README, the guides and the examples point at real files."""
    broken = []
    for page in PAGES:
        for target in _LINK.findall(page.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []
