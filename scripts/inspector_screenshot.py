"""Take docs/images/inspector.png: a demo flow with a stalled node and parked traces.

Run: .venv/bin/python scripts/inspector_screenshot.py (needs Debian's chromium).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import async_playwright

from penguiflow.core import create
from penguiflow.inspector import create_inspector_app
from penguiflow.node import Node, NodePolicy
from penguiflow.types import Headers, Message

ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


async def main(out: Path) -> None:
    release = asyncio.Event()

    async def fast(msg: Any, ctx: Any) -> Any:
        return msg

    async def slow(msg: Any, ctx: Any) -> Any:
        await release.wait()
        return msg

    async def approve(msg: Any, ctx: Any) -> Any:
        if msg.payload % 3 == 0:  # ask a person about every third order
            await ctx.interrupt({"question": f"approve order {msg.payload}?", "amount": 250})
        return msg

    def node(name: str, fn: Any) -> Node:
        return Node(fn, name=name, policy=NodePolicy(validate="none"))

    parse, enrich, summarise, audit = (
        node("parse", fast),
        node("enrich", slow),
        node("summarise", fast),
        node("audit", approve),
    )
    flow = create(
        parse.to(enrich, audit), enrich.to(summarise), audit.to(), summarise.to(), queue_maxsize=16
    )
    app = create_inspector_app(flow, refresh_s=0.05)
    flow.run()
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        messages = [Message(payload=i, headers=Headers(tenant="demo")) for i in range(6)]
        for msg in messages:
            await flow.emit(msg)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path="/usr/bin/chromium", args=ARGS, headless=True
            )
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            await page.goto(f"http://127.0.0.1:{port}/")
            await page.wait_for_selector("#status.live")
            await page.wait_for_selector("#parked tbody tr")
            row = page.locator(f'#traces tr[data-trace="{messages[0].trace_id}"]')
            await row.click()
            await page.wait_for_selector("#timeline tbody tr")
            await page.screenshot(path=str(out), full_page=True)
            await browser.close()
    finally:
        release.set()
        await flow.stop()
        await runner.cleanup()


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/images/inspector.png")
    asyncio.run(main(target))
    print(target)
