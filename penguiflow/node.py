"""``Node`` and ``NodePolicy``: a user coroutine plus its policy; no runtime state."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from inspect import CO_COROUTINE, CO_VARARGS, CO_VARKEYWORDS
from types import CodeType, FunctionType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from penguiflow.ratelimit import RateLimit

__all__ = ["Node", "NodePolicy"]

_VALIDATE_MODES = ("both", "in", "out", "none")
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _code_parameters(code: CodeType) -> tuple[int, bool]:
    """(number of parameters, whether the second is positional), as inspect counts them."""
    positional = code.co_argcount  # positional-only ones included
    count = positional + code.co_kwonlyargcount
    count += bool(code.co_flags & CO_VARARGS) + bool(code.co_flags & CO_VARKEYWORDS)
    return count, positional >= 2


@dataclass(slots=True)
class NodePolicy:
    """Validation scope, per-attempt timeout, retries and exponential backoff of a node.

    Args:
        validate: ``"both"``, ``"in"``, ``"out"`` or ``"none"``.
        timeout_s: per-attempt timeout in seconds; ``None`` for no timeout.
        max_retries: extra attempts after the first.
        backoff_base: seconds before the first retry.
        backoff_mult: multiplier per further retry.
        max_backoff: cap on one backoff delay (``None``: no cap).
        rate_limit: a ``penguiflow.RateLimit`` token bucket checked before each
            attempt, retries included (the actor waits; nothing is dropped);
            ``None`` for no limit. *versionadded 3.0*

    Raises:
        ValueError: ``validate`` is not one of the four modes.
        TypeError: ``rate_limit`` is not a ``RateLimit``.
    """

    validate: str = "both"
    timeout_s: float | None = None
    max_retries: int = 0
    backoff_base: float = 0.5
    backoff_mult: float = 2.0
    max_backoff: float | None = None
    rate_limit: RateLimit | None = None  # last: positional use stays 2.2.5's

    def __post_init__(self) -> None:
        if self.validate not in _VALIDATE_MODES:
            raise ValueError("validate must be one of 'both', 'in', 'out', 'none'")
        if self.rate_limit is not None:
            from penguiflow.ratelimit import RateLimit

            if not isinstance(self.rate_limit, RateLimit):
                kind = type(self.rate_limit).__name__
                raise TypeError(f"rate_limit must be a penguiflow.RateLimit, got {kind}")


@dataclass(slots=True)
class Node:
    """An async function ``(message, ctx)`` with a name and a ``NodePolicy``.

    Raises:
        TypeError: ``func`` is not declared with ``async def``.
        ValueError: ``func`` does not take exactly two parameters, or the second
            one (the context) is keyword-only.
    """

    func: Callable[[Any, Any], Awaitable[Any]]
    name: str | None = None
    policy: NodePolicy = field(default_factory=NodePolicy)
    allow_cycle: bool = False
    node_id: str = field(init=False)

    def __post_init__(self) -> None:
        func = self.func
        # A plain ``async def`` function (no decorator metadata): its code object
        # answers both checks below; inspect.signature costs ~15 µs per node.
        plain = type(func) is FunctionType and not func.__dict__
        if plain:
            code = func.__code__
            if not code.co_flags & CO_COROUTINE:
                raise TypeError("Node function must be declared with async def")
        elif not asyncio.iscoroutinefunction(func):
            raise TypeError("Node function must be declared with async def")
        if not self.name:
            self.name = func.__name__
        self.node_id = uuid.uuid4().hex
        if plain:
            count, second_positional = _code_parameters(code)
        else:
            params = list(inspect.signature(func).parameters.values())
            count = len(params)
            second_positional = count > 1 and params[1].kind in _POSITIONAL
        if count != 2:
            raise ValueError(
                f"Node '{self.name}' must accept exactly two parameters (message, ctx); got {count}"
            )
        if not second_positional:
            raise ValueError("Context parameter must be positional")

    def __hash__(self) -> int:
        return hash(self.node_id)

    def __repr__(self) -> str:
        return f"Node(name={self.name!r}, node_id={self.node_id})"

    def to(self, *successors: Node) -> tuple[Node, tuple[Node, ...]]:
        """Return the adjacency entry ``(self, successors)`` for ``create``."""
        return self, successors

    async def invoke(self, message: Any, ctx: Any, *, registry: Any | None) -> Any:
        """Run the node once, validating input and output through ``registry``.

        With ``registry=None`` or ``validate="none"`` nothing is validated.

        Raises:
            KeyError: the registry has no entry for this node.
            pydantic.ValidationError: the input or the output does not validate.
        """
        validate = self.policy.validate
        if registry is None or validate == "none":
            return await self.func(message, ctx)
        in_adapter, out_adapter = registry.adapters(self.name)
        if validate != "out":
            message = in_adapter.validate_python(message)
        result = await self.func(message, ctx)
        if result is None or validate == "in":
            return result
        return out_adapter.validate_python(result)
