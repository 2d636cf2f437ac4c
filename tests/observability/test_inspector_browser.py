"""The inspector in a real browser: loads cleanly, shows every node, live depth, cancel, resume."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from browser import CHROMIUM_ARGS, chromium_path

from penguiflow import Interrupt
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


@contextlib.asynccontextmanager
async def serving(flow: PenguiFlow) -> AsyncIterator[str]:
    """Run ``flow`` with its inspector on 127.0.0.1; yield the page's URL."""
    app = create_inspector_app(flow, refresh_s=0.05)
    flow.run()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        await flow.stop()
        await runner.cleanup()


@pytest.fixture
async def served() -> AsyncIterator[tuple[PenguiFlow, Stall, str]]:
    stall = Stall()

    async def stalled_fn(msg: Any, ctx: Any) -> Any:
        return await stall(msg, ctx)

    ingest, stalled, side = node("ingest"), node("stalled", stalled_fn), node("side")
    flow = create(ingest.to(stalled, side), stalled.to(), side.to(), queue_maxsize=8)
    async with serving(flow) as url:
        yield flow, stall, url


@contextlib.asynccontextmanager
async def chromium_page(url: str, problems: list[str]) -> AsyncIterator[Any]:
    """A page of headless Chromium at ``url``; console errors and warnings go to ``problems``."""
    from playwright.async_api import async_playwright

    executable = chromium_path()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS, headless=True
        )
        try:
            page = await browser.new_page()
            page.on(
                "console",
                lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
            )
            page.on("pageerror", lambda e: problems.append(str(e)))
            await page.goto(url)
            await page.wait_for_selector("#status.live", timeout=WAIT_MS)
            yield page
        finally:
            await browser.close()


async def test_page_shows_live_depth_and_cancels_a_trace(
    served: tuple[PenguiFlow, Stall, str],
) -> None:
    from playwright.async_api import expect

    flow, stall, url = served
    first = Message(payload=0, headers=Headers(tenant="t"))
    await flow.emit(first)
    async with asyncio.timeout(5):
        await stall.entered.wait()
    problems: list[str] = []
    async with chromium_page(url, problems) as page:
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


QUESTION = {"question": "refund 250?", "note": "<img src=x onerror=alert(1)>"}


async def ask(msg: Any, ctx: Any) -> Any:
    answer = await ctx.interrupt(QUESTION)
    return msg.model_copy(update={"payload": {"asked": msg.payload, "answer": answer}})


async def test_page_shows_a_parked_trace_and_resumes_it() -> None:
    from playwright.async_api import expect

    flow = create(node("approve", ask).to(), queue_maxsize=8)
    async with serving(flow) as url:
        sent = Message(payload=250, headers=Headers(tenant="t"))
        await flow.emit(sent)
        async with asyncio.timeout(10):
            notice = await flow.fetch()
        assert isinstance(notice, Interrupt)
        problems: list[str] = []
        async with chromium_page(url, problems) as page:
            row = page.locator(f'#parked tr[data-trace="{sent.trace_id}"]')
            await row.wait_for(timeout=WAIT_MS)
            assert await page.locator("#parked tbody tr").count() == 1
            assert await row.locator("td").nth(1).text_content() == "approve"
            # The payload is shown as JSON text, never parsed as HTML.
            payload = await row.locator("pre.payload").text_content()
            assert payload is not None
            assert json.loads(payload) == QUESTION
            assert await row.locator("pre.payload img").count() == 0
            assert notice.token not in await page.content()
            status = page.locator(f'#traces tr[data-trace="{sent.trace_id}"] td.status')
            await expect(status).to_have_text("parked", timeout=WAIT_MS)
            value = row.locator("input.value")
            await value.fill('{"approved": true}')
            # A second trace parks: the page updates, and the value typed stays.
            other = Message(payload=5, headers=Headers(tenant="t"))
            await flow.emit(other)
            async with asyncio.timeout(10):
                assert isinstance(await flow.fetch(), Interrupt)
            other_row = page.locator(f'#parked tr[data-trace="{other.trace_id}"]')
            await other_row.wait_for(timeout=WAIT_MS)
            assert await value.input_value() == '{"approved": true}'
            await row.locator("button.resume").click(timeout=WAIT_MS)
            async with asyncio.timeout(10):
                final = await flow.fetch()
            assert (final.trace_id, final.payload) == (
                sent.trace_id,
                {"asked": 250, "answer": {"approved": True}},
            )
            await expect(row).to_have_count(0, timeout=WAIT_MS)
            await expect(other_row).to_have_count(1)
            await other_row.locator("button.resume").click(timeout=WAIT_MS)  # null
            async with asyncio.timeout(10):
                assert (await flow.fetch()).payload == {"asked": 5, "answer": None}
            await expect(page.locator("#parked-empty")).to_be_visible(timeout=WAIT_MS)
            assert problems == []
