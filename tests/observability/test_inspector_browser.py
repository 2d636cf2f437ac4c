"""The inspector in a real browser: loads cleanly, shows every node, live depth, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from browser import CHROMIUM_ARGS, chromium_path

from penguiflow.core import PenguiFlow, create
from penguiflow.inspector import create_inspector_app
from penguiflow.node import Node, NodePolicy
from penguiflow.types import Headers, Message

pytestmark = pytest.mark.slow

WAIT_MS = 10_000  # the safety net of every wait in the page


class Stall:
    """A consumer that holds its first message until cancelled."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self, msg: Any, ctx: Any) -> Any:
        self.entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise


async def passthrough(msg: Any, ctx: Any) -> Any:
    return msg


def node(name: str, fn: Any = passthrough) -> Node:
    return Node(fn, name=name, policy=NodePolicy(validate="none"))


@pytest.fixture
async def served() -> AsyncIterator[tuple[PenguiFlow, Stall, str]]:
    stall = Stall()

    async def stalled_fn(msg: Any, ctx: Any) -> Any:
        return await stall(msg, ctx)

    ingest, stalled, side = node("ingest"), node("stalled", stalled_fn), node("side")
    flow = create(ingest.to(stalled, side), stalled.to(), side.to(), queue_maxsize=8)
    app = create_inspector_app(flow, refresh_s=0.05)
    flow.run()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield flow, stall, f"http://127.0.0.1:{port}/"
    finally:
        await flow.stop()
        await runner.cleanup()


async def test_page_shows_live_depth_and_cancels_a_trace(
    served: tuple[PenguiFlow, Stall, str],
) -> None:
    from playwright.async_api import async_playwright, expect

    executable = chromium_path()
    flow, stall, url = served
    first = Message(payload=0, headers=Headers(tenant="t"))
    await flow.emit(first)
    async with asyncio.timeout(5):
        await stall.entered.wait()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page()
            problems: list[str] = []
            page.on(
                "console",
                lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.goto(url)
            await page.wait_for_selector("#status.live", timeout=WAIT_MS)
            for name in ("OpenSea", "ingest", "stalled", "side", "Rookery"):
                assert await page.locator(f'#graph g.node[data-node="{name}"]').count() == 1
            depth = page.locator('#graph text[data-depth="stalled"]')
            assert await depth.text_content() == "0 / 8"
            for i in range(3):
                await flow.emit(Message(payload=i + 1, headers=Headers(tenant="t")))
            # expect() polls from Playwright's own script world: the page's CSP
            # (no eval) does not apply to it, unlike wait_for_function(str).
            await expect(depth).to_have_text("3 / 8", timeout=WAIT_MS)
            row = page.locator(f'#traces tr[data-trace="{first.trace_id}"]')
            await row.locator("button.cancel").click(timeout=WAIT_MS)
            async with asyncio.timeout(5):
                await stall.cancelled.wait()
            await row.locator("td.status-cancelled").wait_for(timeout=WAIT_MS)
            assert problems == []
        finally:
            await browser.close()
