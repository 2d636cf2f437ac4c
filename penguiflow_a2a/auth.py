"""``AuthHook``: how an A2A server decides who a request comes from.

Its own module so the application factory (``app``) and the aiohttp routes
(``_aiohttp_app``) can both name it without importing each other.

.. versionadded:: 3.0
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .principals import Principal

if TYPE_CHECKING:
    from aiohttp import web

__all__ = ["AuthHook"]

#: ``auth(request) -> principal`` (or an awaitable of it): a principal (any
#: hashable) or ``True`` lets the request in; ``False`` or ``None`` answers 401.
AuthHook = Callable[["web.Request"], "Principal | Awaitable[Principal]"]
