"""The SSRF guard of push webhooks: schemes, resolved addresses, the allow-list."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import pytest

from penguiflow_a2a.push_guard import WebhookGuard, WebhookRefused

REFUSED_LITERALS = [
    ("http://127.0.0.1/hook", "loopback"),
    ("http://127.8.9.10/hook", "loopback"),
    ("http://[::1]/hook", "loopback"),
    ("http://10.1.2.3/hook", "private"),
    ("http://172.16.0.1/hook", "private"),
    ("http://192.168.1.1/hook", "private"),
    ("http://[fd00::1]/hook", "private"),
    ("http://169.254.169.254/latest/meta-data", "metadata"),
    ("http://169.254.1.1/hook", "link-local"),
    ("http://[fe80::1]/hook", "link-local"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://[::ffff:10.0.0.1]/hook", "private"),
    ("http://[::ffff:169.254.169.254]/hook", "metadata"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://[::]/hook", "unspecified"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://240.0.0.1/hook", "reserved"),
    ("http://100.64.0.1/hook", "non-public"),
]


@pytest.mark.parametrize(("url", "problem"), REFUSED_LITERALS)
async def test_non_public_literal_addresses_are_refused(url: str, problem: str) -> None:
    with pytest.raises(WebhookRefused) as caught:
        await WebhookGuard().check(url)
    assert problem in caught.value.reason
    assert "push_allow_hosts" in caught.value.reason


async def test_a_public_literal_address_is_accepted() -> None:
    await WebhookGuard().check("https://8.8.8.8/hook")


@pytest.mark.parametrize(
    "url",
    ["ftp://8.8.8.8/hook", "file:///etc/passwd", "gopher://8.8.8.8/", "8.8.8.8/hook", "http:///x"],
)
async def test_only_http_and_https_urls_with_a_host_are_accepted(url: str) -> None:
    with pytest.raises(WebhookRefused):
        await WebhookGuard().check(url)


async def test_an_unparseable_url_is_refused() -> None:
    with pytest.raises(WebhookRefused, match="not a valid URL"):
        await WebhookGuard().check("http://8.8.8.8:99999999/hook")


async def test_the_allow_list_admits_an_address() -> None:
    await WebhookGuard(["127.0.0.1"]).check("http://127.0.0.1:8080/hook")
    with pytest.raises(WebhookRefused):
        await WebhookGuard(["127.0.0.1"]).check("http://127.0.0.2/hook")


async def test_the_allow_list_admits_a_network() -> None:
    guard = WebhookGuard(["10.0.0.0/8", "[fd00::/8]"])
    await guard.check("http://10.9.8.7/hook")
    await guard.check("http://[fd12::1]/hook")
    with pytest.raises(WebhookRefused):
        await guard.check("http://192.168.0.1/hook")


class FakeDNS:
    """Replaces the running loop's ``getaddrinfo``; records the thread it ran on."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.threads: list[int] = []

    async def getaddrinfo(self, host: str, port: int, **_: Any) -> list[Any]:
        loop = asyncio.get_running_loop()

        def lookup() -> list[Any]:
            self.threads.append(threading.get_ident())
            if host not in self.answers:
                raise socket.gaierror(socket.EAI_NONAME, "no such host")
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port),
                )
                for a in self.answers[host]
            ]

        return await loop.run_in_executor(None, lookup)


@pytest.fixture
async def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS({})
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake.getaddrinfo)
    return fake


async def test_a_host_name_is_resolved_off_the_loop_thread(dns: FakeDNS) -> None:
    dns.answers["hooks.example.com"] = ["93.184.216.34"]
    await WebhookGuard().check("https://hooks.example.com/x")
    assert dns.threads
    assert threading.get_ident() not in dns.threads


async def test_a_host_name_with_any_private_address_is_refused(dns: FakeDNS) -> None:
    dns.answers["mixed.example.com"] = ["93.184.216.34", "10.0.0.5"]
    with pytest.raises(WebhookRefused, match="private"):
        await WebhookGuard().check("https://mixed.example.com/x")


async def test_a_host_name_resolving_to_metadata_is_refused(dns: FakeDNS) -> None:
    dns.answers["meta.example.com"] = ["169.254.169.254"]
    with pytest.raises(WebhookRefused, match="metadata"):
        await WebhookGuard().check("http://meta.example.com/x")


async def test_a_host_name_that_does_not_resolve_is_refused(dns: FakeDNS) -> None:
    with pytest.raises(WebhookRefused, match="does not resolve"):
        await WebhookGuard().check("http://nowhere.example.com/x")


async def test_an_allowed_host_name_is_not_resolved(dns: FakeDNS) -> None:
    await WebhookGuard(["Receiver.Local"]).check("http://receiver.local./x")
    assert dns.threads == []
