"""Who is calling: the principal an ``auth`` hook names, owner of the tasks it creates.

An ``auth`` hook of ``create_a2a_app`` returns a principal: any hashable value
(a user id, a tenant id, a tuple of both). ``True`` admits the caller as
``SHARED_PRINCIPAL`` (every such caller is the same one: the behaviour of a
server without principals); ``False`` and ``None`` answer 401. The principal
is stored on the request (``_request.principal_of`` reads it) and every task-store lookup takes
it (``TaskManager.get(task_id, principal)``): a task of another principal is
"not found".

This module imports without aiohttp.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, Final, TypeAlias

__all__ = ["SHARED_PRINCIPAL", "Principal", "admit"]

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
