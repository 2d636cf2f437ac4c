"""Emit observers: called around every ``PenguiFlow.emit``/``emit_nowait`` (``hosting``).

An observer sees a message before the flow takes it and again once ``emit``
returned or raised, in the emitting task (so it may set context variables for
the duration, as ``penguiflow.otel`` does to parent what the emit sends on).
With no observer the flow pays one list test per emit.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["EmitObserver", "emit_finished", "emit_started"]


@runtime_checkable
class EmitObserver(Protocol):
    """Watches the messages fed to a flow at OpenSea.

    .. versionadded:: 3.0
    """

    def emit_started(self, msg: Any) -> Any:
        """``msg`` is about to be emitted; return a handle given back to ``emit_finished``."""
        ...

    def emit_finished(self, msg: Any, handle: Any, error: BaseException | None) -> None:
        """The emit of ``msg`` returned (``error`` is ``None``) or raised ``error``.

        Called in the emitting task, in reverse order of the observers' start.
        """
        ...


def emit_started(observers: list[EmitObserver], msg: Any) -> list[Any]:
    return [observer.emit_started(msg) for observer in tuple(observers)]


def emit_finished(
    observers: list[EmitObserver], msg: Any, handles: list[Any], error: BaseException | None
) -> None:
    # The observers that saw the start, in reverse (nested like context managers).
    for observer, handle in zip(
        reversed(observers[: len(handles)]), reversed(handles), strict=False
    ):
        observer.emit_finished(msg, handle, error)
