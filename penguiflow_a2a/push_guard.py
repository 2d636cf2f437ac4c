"""The SSRF guard of push notifications: which webhook URLs the server may POST to.

A webhook URL is accepted only with an ``http``/``https`` scheme and a host
whose every resolved address is a public unicast address. Loopback, private
(RFC 1918, IPv6 ULA), shared (100.64.0.0/10), link-local (169.254.0.0/16,
which holds the cloud metadata address 169.254.169.254), reserved,
multicast and unspecified addresses are refused, IPv4-mapped IPv6 judged as
the IPv4 address inside. An explicit allow-list (``create_a2a_app(...,
push_allow_hosts=[...])``) admits host names (exact, case-insensitive), IP
addresses and networks (``"10.0.0.0/8"``). The guard runs when a config is
registered and again before every delivery (DNS can change in between).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import urllib.parse
from collections.abc import Iterable

__all__ = ["WebhookGuard", "WebhookRefused", "address_problem"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_METADATA = ipaddress.ip_address("169.254.169.254")


class WebhookRefused(Exception):
    """The webhook URL may not be called; ``reason`` is safe to show the client."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def address_problem(address: IPAddress) -> str | None:
    """Why ``address`` is not a public unicast destination, or ``None`` when it is."""
    mapped = getattr(address, "ipv4_mapped", None)
    if mapped is not None:
        address = mapped
    if address == _METADATA:
        return "a cloud metadata address"
    # Most specific first: 127.0.0.1 is also "private" to ``ipaddress``.
    checks = (
        ("is_unspecified", "an unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    )
    for attribute, problem in checks:
        if getattr(address, attribute):
            return problem
    if not address.is_global:
        # e.g. 100.64.0.0/10 (shared address space): neither private nor global.
        return "a non-public address"
    return None


class WebhookGuard:
    """Checks webhook URLs against the SSRF policy.

    Args:
        allow_hosts: host names, IP addresses or networks admitted even when
            they are not public (``["127.0.0.1"]`` for a local receiver).
    """

    def __init__(self, allow_hosts: Iterable[str] = ()) -> None:
        self._names: set[str] = set()
        self._networks: list[IPNetwork] = []
        for entry in allow_hosts:
            text = entry.strip().strip("[]")
            try:
                self._networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                self._names.add(text.lower().rstrip("."))

    def allows_name(self, host: str) -> bool:
        """Whether ``host`` is admitted by name (its addresses are not checked)."""
        return host.lower().rstrip(".") in self._names

    def _allowed(self, address: IPAddress) -> bool:
        return any(address in network for network in self._networks)

    def check_address(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused under this policy, or ``None``."""
        if self._allowed(address):
            return None
        return address_problem(address)

    async def check(self, url: str) -> None:
        """Accept ``url`` or raise.

        Resolves the host through the event loop (``getaddrinfo`` runs in the
        loop's executor, off the loop thread) and checks every address.

        Raises:
            WebhookRefused: bad scheme, no host, a host that does not resolve,
                or one resolving to a refused address.
        """
        try:
            parsed = urllib.parse.urlsplit(url)
            port = parsed.port
        except ValueError:
            raise WebhookRefused("the webhook URL is not a valid URL") from None
        if parsed.scheme not in ("http", "https"):
            raise WebhookRefused("the webhook URL must use http or https")
        host = parsed.hostname
        if not host:
            raise WebhookRefused("the webhook URL has no host")
        if self.allows_name(host):
            return
        literal = _literal(host)
        if literal is not None:
            addresses = [literal]
        else:
            addresses = await _resolve(host, port or (443 if parsed.scheme == "https" else 80))
        for address in addresses:
            problem = self.check_address(address)
            if problem is not None:
                raise WebhookRefused(
                    f"the webhook host {host!r} resolves to {problem}; push notifications "
                    "go to public addresses only unless the server allows the host "
                    "(push_allow_hosts)"
                )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


async def _resolve(host: str, port: int) -> list[IPAddress]:
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise WebhookRefused(f"the webhook host {host!r} does not resolve") from None
    addresses: list[IPAddress] = []
    for info in infos:
        literal = _literal(str(info[4][0]))
        if literal is None:  # pragma: no cover - getaddrinfo returns numeric hosts
            raise WebhookRefused(f"the webhook host {host!r} does not resolve")
        addresses.append(literal)
    if not addresses:  # pragma: no cover - getaddrinfo raises instead
        raise WebhookRefused(f"the webhook host {host!r} does not resolve")
    return addresses
