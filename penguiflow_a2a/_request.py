"""What the guard stores on an aiohttp request: the caller's principal.

Imported only by the app and its route modules (it needs aiohttp).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from .principals import SHARED_PRINCIPAL, Principal

__all__ = ["PRINCIPAL_KEY", "principal_of"]

#: Where the guard stores the request's principal (``request[PRINCIPAL_KEY]``).
PRINCIPAL_KEY: Final = web.RequestKey[Principal]("penguiflow_a2a.principal")


def principal_of(request: web.Request) -> Principal:
    """The principal the guard admitted ``request`` as (``SHARED_PRINCIPAL`` without hooks).

    Handlers pass it to every ``A2AService`` call; that is how a task of
    another principal stays "not found".
    """
    principal: Principal = request.get(PRINCIPAL_KEY, SHARED_PRINCIPAL)
    return principal
