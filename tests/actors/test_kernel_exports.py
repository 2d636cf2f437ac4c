"""The public surface of the kernel packages is pinned."""

from __future__ import annotations

import pytest

import penguiflow.actors
import penguiflow.supervision

ACTORS = [
    "SELF_LANE",
    "SYSTEM_LANE",
    "Actor",
    "ActorContext",
    "ActorRef",
    "ActorSystem",
    "DeadLetter",
    "Delivery",
    "Mailbox",
    "MailboxEmpty",
    "MailboxStatistics",
]
SUPERVISION = [
    "ChildCounts",
    "ChildInfo",
    "ChildSpec",
    "ChildState",
    "RestartBackoff",
    "RestartIntensity",
    "RestartPlan",
    "RestartType",
    "Strategy",
    "Supervisor",
    "plan_restart",
    "should_restart",
]


@pytest.mark.parametrize(
    ("module", "names"),
    [
        pytest.param(penguiflow.actors, ACTORS, id="actors"),
        pytest.param(penguiflow.supervision, SUPERVISION, id="supervision"),
    ],
)
def test_all_is_pinned_and_resolvable(module: object, names: list[str]) -> None:
    assert module.__all__ == names  # type: ignore[attr-defined]
    for name in names:
        assert getattr(module, name) is not None


def test_kernel_imports_nothing_above_it() -> None:
    """Layering: actors/ and supervision/ import only _time, _logging and errors."""
    import ast
    import pathlib

    allowed = (
        "penguiflow.actors",
        "penguiflow.supervision",
        "penguiflow._time",
        "penguiflow._logging",
        "penguiflow.errors",
    )
    root = pathlib.Path(penguiflow.actors.__file__).parent.parent
    for package in ("actors", "supervision"):
        for path in (root / package).glob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    if node.module.startswith("penguiflow"):
                        assert node.module.startswith(allowed), (path.name, node.module)
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.startswith("penguiflow"):
                            assert alias.name.startswith(allowed), (path.name, alias.name)
