"""Who is calling: the principal an ``auth`` hook names, owner of the tasks it creates.

An ``auth`` hook of ``create_a2a_app`` returns a principal: any hashable value
(a user id, a tenant id, a tuple of both). ``True`` admits the caller as
``SHARED_PRINCIPAL`` (every such caller is the same one: the behaviour of a
server without principals); ``False`` and ``None`` answer 401. The principal
is stored on the request (``_request.principal_of`` reads it) and every task-store lookup takes
it (``TaskManager.get(task_id, principal)``): a task of another principal is
"not found".

A durable A2A server (``penguiflow_a2a.task_store``) stores each task's
principal in a stable JSON form (``encode_principal`` / ``decode_principal``):
``SHARED_PRINCIPAL``, ``str``, ``int`` and tuples of these. Any other
principal cannot own a durable task (``UnpersistablePrincipal``).

This module imports without aiohttp.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, Final, TypeAlias

from penguiflow.errors import PenguiFlowError

__all__ = [
    "SHARED_PRINCIPAL",
    "Principal",
    "UnpersistablePrincipal",
    "admit",
    "decode_principal",
    "encode_principal",
]

#: Any hashable value naming a caller (compared with ``==``).
Principal: TypeAlias = Hashable


class _SharedPrincipal:
    """The principal of callers admitted with ``True`` (or with no ``auth`` hook)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SHARED_PRINCIPAL"

    def __reduce__(self) -> str:
        return "SHARED_PRINCIPAL"


#: Owner of every task when no hook names a principal (one shared caller).
SHARED_PRINCIPAL: Final[Principal] = _SharedPrincipal()


def admit(verdicts: Iterable[Any]) -> Principal | None:
    """Combine the verdicts of every auth hook of one request.

    Every hook must admit (a verdict other than ``False``/``None``); the
    principal is the last verdict that is not ``True``, else
    ``SHARED_PRINCIPAL``.

    Returns:
        The principal, or ``None`` when the request is refused.

    Raises:
        TypeError: a verdict is not hashable (it could not own tasks).
    """
    principal: Principal = SHARED_PRINCIPAL
    for verdict in verdicts:
        if verdict is None or verdict is False:
            return None
        if verdict is True:
            continue
        if not isinstance(verdict, Hashable):
            raise TypeError(f"auth hook returned an unhashable principal: {type(verdict)!r}")
        principal = verdict
    return principal


class UnpersistablePrincipal(PenguiFlowError, TypeError):
    """A principal a durable task store cannot keep (not ``str``, ``int`` or a tuple of them).

    .. versionadded:: 3.0
    """

    def __init__(self, principal: object) -> None:
        super().__init__(
            f"a durable A2A server stores task owners as str, int or tuples of them; "
            f"the auth hook returned a {type(principal).__name__}"
        )
        self.principal_type = type(principal)


def encode_principal(principal: Principal) -> Any:
    """The stable JSON form of ``principal`` (``decode_principal`` turns it back).

    ``SHARED_PRINCIPAL`` is ``None``, a ``str`` or ``int`` itself, a tuple
    ``{"tuple": [...]}`` of its encoded items.

    Raises:
        UnpersistablePrincipal: any other value (``bool`` and ``float`` included).

    .. versionadded:: 3.0
    """
    if principal is SHARED_PRINCIPAL:
        return None
    if type(principal) is str or type(principal) is int:
        return principal
    if type(principal) is tuple:
        return {"tuple": [encode_principal(item) for item in principal]}
    raise UnpersistablePrincipal(principal)


def decode_principal(data: Any) -> Principal:
    """The principal ``encode_principal`` gave ``data`` for.

    .. versionadded:: 3.0
    """
    if data is None:
        return SHARED_PRINCIPAL
    if isinstance(data, dict):
        return tuple(decode_principal(item) for item in data["tuple"])
    if isinstance(data, str | int):
        return data
    raise ValueError(f"not an encoded principal: {data!r}")
