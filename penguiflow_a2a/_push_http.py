"""The aiohttp resolver of the push sender (imported when the sender opens its session)."""

from __future__ import annotations

import ipaddress
import socket

from aiohttp import ThreadedResolver
from aiohttp.abc import AbstractResolver, ResolveResult

from .push_guard import WebhookGuard

__all__ = ["GuardedResolver"]


class GuardedResolver(AbstractResolver):
    """Refuses the addresses the guard refuses, at connection time.

    The guard's check before a POST resolves the host once and the connection
    resolves it again: checking here too pins the connection to checked
    addresses, so a DNS answer that changed in between (rebinding) cannot
    reach a refused address.
    """

    def __init__(self, guard: WebhookGuard) -> None:
        self._guard = guard
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Resolve ``host`` and refuse it when any address is refused."""
        results = await self._inner.resolve(host, port, family)
        if self._guard.allows_name(host):
            return results
        for result in results:
            problem = self._guard.check_address(ipaddress.ip_address(result["host"]))
            if problem is not None:
                raise OSError(f"webhook host {host!r} resolves to {problem}")
        return results

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()
