"""``simulate_error``: node functions that fail a set number of times, then succeed."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any, Protocol, cast

__all__ = ["SimulatedNodeFunc", "Simulation", "simulate_error"]


class Simulation:
    """Read-only counters of one ``simulate_error`` function."""

    __slots__ = ("_attempts", "_fail_times")

    def __init__(self, fail_times: int) -> None:
        self._fail_times = fail_times
        self._attempts = 0

    @property
    def attempts(self) -> int:
        """Total calls so far."""
        return self._attempts

    @property
    def failures(self) -> int:
        """Calls that raised: ``min(attempts, fail_times)``."""
        return min(self._attempts, self._fail_times)

    def _next_attempt(self) -> int:
        self._attempts += 1
        return self._attempts

    def __repr__(self) -> str:
        return f"Simulation(attempts={self._attempts}, failures={self.failures})"


class SimulatedNodeFunc(Protocol):
    """An async node function carrying its :class:`Simulation` counters."""

    simulation: Simulation

    def __call__(self, message: Any, ctx: Any) -> Awaitable[Any]: ...


def simulate_error(
    node_name: str,
    code: str | Enum,
    *,
    fail_times: int = 1,
    result: Any = None,
    result_factory: Callable[[Any], Any] | None = None,
    exception_type: type[BaseException] = RuntimeError,
) -> SimulatedNodeFunc:
    """Build an async node function that raises ``fail_times`` times, then succeeds.

    Call *n* (1-based, counted across every call) raises
    ``exception_type(f"[{code}] simulated failure in {node_name} (attempt {n})")``
    while ``n <= fail_times``; later calls return ``result_factory(message)``
    (awaited if awaitable), else ``result`` if given, else the incoming message.

    Args:
        node_name: used in the error text (and as the function's ``__name__``).
        code: a ``FlowErrorCode`` (its value is used) or any string.
        fail_times: how many calls fail; must be at least 1.
        result: the value returned once failures are used up.
        result_factory: called with the message to build the value instead.
        exception_type: the exception class raised.

    Raises:
        ValueError: ``fail_times < 1``, or both ``result`` and ``result_factory`` given.
    """
    if fail_times < 1:
        raise ValueError("fail_times must be >= 1")
    if result is not None and result_factory is not None:
        raise ValueError("Specify only one of result or result_factory")
    code_text = code.value if isinstance(code, Enum) else code
    simulation = Simulation(fail_times)

    async def simulated(message: Any, ctx: Any) -> Any:
        attempt = simulation._next_attempt()
        if attempt <= fail_times:
            raise exception_type(
                f"[{code_text}] simulated failure in {node_name} (attempt {attempt})"
            )
        if result_factory is not None:
            value = result_factory(message)
            if inspect.isawaitable(value):
                value = await value
            return value
        if result is not None:
            return result
        return message

    simulated.__name__ = node_name
    simulated.__qualname__ = node_name
    func = cast(SimulatedNodeFunc, simulated)
    func.simulation = simulation
    return func
