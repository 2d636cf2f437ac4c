"""Routing policies: runtime overrides for ``predicate_router`` and ``union_router``.

A router first computes the successors it *proposes* for a message; when it was
built with ``policy=...`` it then asks the policy for the final decision. A
decision is ``None`` (drop the message), a successor ``Node``, a successor name,
or a sequence of those. ``DictRoutingPolicy`` is a ready-made, config-driven
policy that maps a key (by default the message's trace id) to a decision and can
be loaded from a mapping, a JSON string or file, or an environment variable.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from penguiflow.node import Node

if TYPE_CHECKING:
    from penguiflow.core import Context

__all__ = [
    "DictRoutingPolicy",
    "PolicyCallable",
    "PolicyLike",
    "RoutingDecisionType",
    "RoutingPolicy",
    "RoutingRequest",
    "evaluate_policy",
]

RoutingDecisionType: TypeAlias = Node | str | Sequence[Node | str] | None
"""What a policy returns: ``None`` drops the message; otherwise the target(s)."""


@dataclass(slots=True)
class RoutingRequest:
    """Everything a routing policy may look at for one message.

    Attributes:
        message: the item being routed (for ``union_router``, the validated model).
        context: the router node's ``Context``.
        node: the router ``Node`` itself.
        proposed: the successors the router computed before consulting the policy.
        trace_id: the item's ``trace_id`` attribute, or ``None`` for trace-less items.
    """

    message: Any
    context: Context
    node: Node
    proposed: tuple[Node, ...]
    trace_id: str | None

    @property
    def node_name(self) -> str:
        """The router's name (its ``node_id`` if the name is empty)."""
        return self.node.name or self.node.node_id

    @property
    def proposed_names(self) -> tuple[str, ...]:
        """Names of the proposed successors, in proposal order."""
        return tuple(node.name or node.node_id for node in self.proposed)


@runtime_checkable
class RoutingPolicy(Protocol):
    """An object that picks the successors of a router for one message."""

    def select(
        self, request: RoutingRequest
    ) -> RoutingDecisionType | Awaitable[RoutingDecisionType]:
        """Return the decision for ``request`` (may be awaitable)."""
        ...


PolicyCallable: TypeAlias = Callable[
    [RoutingRequest], "RoutingDecisionType | Awaitable[RoutingDecisionType]"
]
"""A plain function used as a policy: ``(request) -> decision`` (sync or async)."""

PolicyLike: TypeAlias = RoutingPolicy | PolicyCallable
"""Anything a router accepts as ``policy=``: a ``RoutingPolicy`` or a ``PolicyCallable``."""


async def evaluate_policy(policy: PolicyLike, request: RoutingRequest) -> RoutingDecisionType:
    """Ask ``policy`` for its decision on ``request``.

    Objects with a ``select`` attribute are called through it; anything else is
    called directly. An awaitable result is awaited.
    """
    select = getattr(policy, "select", None)
    result = select(request) if select is not None else policy(request)  # type: ignore[operator]
    if inspect.isawaitable(result):
        result = await result
    return result


def _trace_key(request: RoutingRequest) -> str | None:
    return request.trace_id


class DictRoutingPolicy:
    """A policy that looks a key up in a mapping of decisions.

    Args:
        mapping: key → decision; copied, so later changes to the argument are not seen.
        default: the decision for a ``None`` key or a key not in the mapping.
        key_getter: ``(request) -> key``; defaults to the request's ``trace_id``.

    ``select`` is synchronous and returns the stored decision object unchanged.
    ``update_mapping`` and ``set_default`` take effect for later messages, so a
    running flow can be re-routed without a restart.
    """

    __slots__ = ("_default", "_key_getter", "_mapping")

    def __init__(
        self,
        mapping: Mapping[str, RoutingDecisionType],
        *,
        default: RoutingDecisionType = None,
        key_getter: Callable[[RoutingRequest], str | None] | None = None,
    ) -> None:
        self._mapping: dict[str, RoutingDecisionType] = dict(mapping)
        self._default = default
        self._key_getter = key_getter if key_getter is not None else _trace_key

    def select(self, request: RoutingRequest) -> RoutingDecisionType:
        """Return the decision stored for ``key_getter(request)``, else the default."""
        key = self._key_getter(request)
        if key is None:
            return self._default
        return self._mapping.get(key, self._default)

    def update_mapping(self, mapping: Mapping[str, RoutingDecisionType]) -> None:
        """Replace the whole mapping (with a copy of ``mapping``)."""
        self._mapping = dict(mapping)

    def set_default(self, decision: RoutingDecisionType) -> None:
        """Replace the decision used for unknown or ``None`` keys."""
        self._default = decision

    @classmethod
    def from_json(cls, payload: str, **kwargs: Any) -> DictRoutingPolicy:
        """Build a policy from a JSON object; ``kwargs`` go to the constructor.

        Raises:
            TypeError: the JSON does not decode to an object.
            json.JSONDecodeError: ``payload`` is not valid JSON.
        """
        data = json.loads(payload)
        if not isinstance(data, Mapping):
            raise TypeError("JSON payload must decode to a mapping")
        return cls(data, **kwargs)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> DictRoutingPolicy:
        """Read ``path`` as UTF-8 JSON and delegate to ``from_json``."""
        return cls.from_json(Path(path).read_text(encoding="utf-8"), **kwargs)

    @classmethod
    def from_env(
        cls,
        env_var: str,
        *,
        loader: Callable[[str], Any] | None = None,
        default: RoutingDecisionType = None,
        key_getter: Callable[[RoutingRequest], str | None] | None = None,
    ) -> DictRoutingPolicy:
        """Build a policy from the environment variable ``env_var``.

        The value is parsed with ``json.loads``, or with ``loader(raw)`` if given
        (e.g. a YAML parser).

        Raises:
            KeyError: the variable is not set.
            TypeError: the parsed value is not a mapping.
        """
        raw = os.getenv(env_var)
        if raw is None:
            raise KeyError(f"Environment variable '{env_var}' not set")
        data = loader(raw) if loader is not None else json.loads(raw)
        if not isinstance(data, Mapping):
            raise TypeError("Policy loader must return a mapping")
        return cls(data, default=default, key_getter=key_getter)
