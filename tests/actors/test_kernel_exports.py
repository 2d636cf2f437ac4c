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
    "ActorHost",
    "ActorRef",
    "CellOwner",
    "DeadLetter",
    "DeadLetterSink",
    "Delivery",
    "ItemWatch",
    "Mailbox",
    "MailboxEmpty",
    "MailboxLike",
    "MailboxStatistics",
]
SUPERVISION = [
    "ActorSystem",
    "ChildCounts",
    "ChildInfo",
    "ChildSpec",
    "ChildState",
    "Escalated",
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


def test_actor_system_lives_in_supervision_not_in_the_kernel() -> None:
    from penguiflow.errors import Escalated
    from penguiflow.supervision.system import ActorSystem

    assert penguiflow.supervision.ActorSystem is ActorSystem
    assert penguiflow.supervision.Escalated is Escalated
    assert not hasattr(penguiflow.actors, "ActorSystem")
    with pytest.raises(ImportError):
        from penguiflow.actors import ActorSystem as _  # type: ignore[attr-defined]  # noqa: F401


def _penguiflow_imports(package: str) -> list[tuple[str, str]]:
    """(file, module) for every absolute ``penguiflow`` import in ``package``."""
    import ast
    import pathlib

    root = pathlib.Path(penguiflow.actors.__file__).parent.parent
    found: list[tuple[str, str]] = []
    # ast.walk sees TYPE_CHECKING imports too: the kernel types against its ports.
    for path in (root / package).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((path.name, node.module))
            elif isinstance(node, ast.Import):
                found.extend((path.name, alias.name) for alias in node.names)
    return [(name, module) for name, module in found if module.startswith("penguiflow")]


LEAVES = ("penguiflow._time", "penguiflow._logging", "penguiflow.errors")


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        pytest.param("actors", ("penguiflow.actors", *LEAVES), id="actors"),
        pytest.param(
            "supervision",
            ("penguiflow.supervision", "penguiflow.actors", *LEAVES),
            id="supervision",
        ),
    ],
)
def test_kernel_imports_nothing_above_it(package: str, allowed: tuple[str, ...]) -> None:
    """Layering: actors imports only the leaves; supervision adds only actors."""
    for name, module in _penguiflow_imports(package):
        assert module.startswith(allowed), (name, module)
