"""Observers on the hosting seam: around every emit, around every node attempt.

An emit observer sees a message before the flow takes it and again once ``emit``
returned or raised, in the emitting task (so it may set context variables for
the duration, as ``penguiflow.otel`` does to parent what the emit sends on).
With no observer the flow pays one list test per emit.

An attempt observer is called by the node actor's attempt loop around each
invocation of a node function, in the actor's task, with no ``FlowEvent``
built: with none registered, the loop pays one attribute test per attempt.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["OUTCOMES", "AttemptObserver", "EmitObserver", "emit_finished", "emit_started"]

OUTCOMES = ("success", "error", "timeout", "cancelled")
"""What ``AttemptObserver.on_attempt_end`` is told an attempt came to."""


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


@runtime_checkable
class AttemptObserver(Protocol):
    """Watches every attempt of every node of a flow (``hosting.observe_attempts``).

    Both methods run inline in the node actor's task, so they must be quick
    and must not raise; whatever ``on_attempt`` sets in the current context
    (a context variable) is seen by the node function it precedes.

    .. versionadded:: 3.0
    """

    def on_attempt(self, node: Any, trace_id: str | None, attempt: int) -> Any:
        """``node`` is about to run attempt ``attempt`` (0 first) on an item of ``trace_id``.

        Returns a token given back to ``on_attempt_end``.
        """
        ...

    def on_attempt_end(self, token: Any, outcome: str, exc: BaseException | None) -> None:
        """The attempt ended: ``outcome`` is one of ``OUTCOMES``, ``exc`` what it raised.

        Called in the task that ran ``on_attempt`` for it (so what that set in
        the context can be reset with its token).

        ``cancelled`` covers a trace cancellation, an interrupt and ``stop()``
        (then ``exc`` may be ``None``). An attempt cut short by a crash of its
        actor is never ended: the supervisor restarts the actor and the item is
        redelivered, so ``on_attempt`` comes again for the same node while the
        crashed attempt is still open.
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
