"""The inspector over a state store's history, and ``penguiflow-admin inspect``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from penguiflow import admin
from penguiflow.core import create
from penguiflow.inspector import ACTION_HEADER, create_store_inspector_app
from penguiflow.inspector._history import status_of
from penguiflow.node import Node, NodePolicy
from penguiflow.stores.sqlite import SQLiteStateStore
from penguiflow.testkit import InMemoryStateStore
from penguiflow.types import Headers, Message


async def passthrough(msg: Any, ctx: Any) -> Any:
    return msg


async def record_two_traces(store: Any) -> list[str]:
    flow = create(
        Node(passthrough, name="a", policy=NodePolicy(validate="none")).to(), state_store=store
    )
    flow.run()
    ids = []
    try:
        for n in range(2):
            msg = Message(payload=n, headers=Headers(tenant="t"))
            await flow.emit(msg)
            async with asyncio.timeout(5):
                await flow.fetch()
            ids.append(msg.trace_id)
    finally:
        await flow.stop()
    return ids


async def test_sqlite_store_lists_recent_traces_newest_first(tmp_path: Path) -> None:
    store = SQLiteStateStore(str(tmp_path / "runs.db"))
    try:
        first, second = await record_two_traces(store)
        rows = await store.list_traces(limit=10)
        assert [row[0] for row in rows] == [second, first]
        assert all(row[3] == 2 for row in rows)  # node_start, node_success
        assert len(await store.list_traces(limit=1)) == 1
    finally:
        await store.close()


async def test_store_inspector_lists_traces_and_shows_histories_read_only(
    tmp_path: Path,
) -> None:
    store = SQLiteStateStore(str(tmp_path / "runs.db"))
    try:
        first, second = await record_two_traces(store)
        app = create_store_inspector_app(store)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            page = await (await client.get("/")).text()
            assert 'data-mode="store"' in page
            state = await (await client.get("/api/state")).json()
            assert state["mode"] == "store"
            assert [t["trace_id"] for t in state["traces"]] == [second, first]
            history = await (await client.get(f"/api/traces/{first}")).json()
            assert [e["event"] for e in history["events"]] == ["node_start", "node_success"]
            assert history["status"] == "stored"
            assert (await client.get("/api/traces/unknown")).status == 404
            refused = await client.post(f"/api/traces/{first}/cancel", headers={ACTION_HEADER: "1"})
            assert refused.status == 405
    finally:
        await store.close()


async def test_a_store_without_a_trace_list_still_shows_histories() -> None:
    store = InMemoryStateStore()
    first, _ = await record_two_traces(store)
    app = create_store_inspector_app(store)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        state = await (await client.get("/api/state")).json()
        assert state["traces"] == []
        assert (await client.get(f"/api/traces/{first}")).status == 200


def test_stored_status_comes_from_the_events() -> None:
    assert status_of(["node_start", "node_failed"]) == "failed"
    assert status_of(["trace_cancel_start", "trace_cancel_finish"]) == "cancelled"
    assert status_of(["node_start"]) == "stored"


async def test_admin_inspect_serves_the_page_on_localhost(tmp_path: Path, capsys: Any) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteStateStore(str(path))
    first, _ = await record_two_traces(store)
    await store.close()
    stop = asyncio.Event()
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    args = admin._parser().parse_args(["inspect", "--state-store", str(path), "--port", "0"])
    assert (args.host, args.port) == ("127.0.0.1", 0)
    server = asyncio.create_task(admin._inspect(args, stop, started))
    try:
        async with asyncio.timeout(10):
            url = await started
        assert url.startswith("http://127.0.0.1:")
        async with aiohttp.ClientSession() as session, session.get(url + "api/state") as response:
            state = await response.json()
        assert [t["trace_id"] for t in state["traces"]][-1] == first
        assert url in capsys.readouterr().out
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await server


def test_admin_main_returns_0_when_interrupted(monkeypatch: Any) -> None:
    async def interrupted(args: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(admin, "_inspect", interrupted)
    assert admin.main(["inspect", "--state-store", "x.db"]) == 0


async def ask(msg: Any, ctx: Any) -> Any:
    return await ctx.interrupt({"question": msg.payload})


async def test_admin_inspect_lists_the_parked_traces_of_a_sqlite_file(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteStateStore(str(path))
    try:
        node = Node(ask, name="ask", policy=NodePolicy(validate="none"))
        flow = create(node.to(), state_store=store, durable=True)
        flow.run()
        await flow.recover()
        sent = Message(payload=1, headers=Headers(tenant="t"))
        try:
            await flow.emit(sent)
            async with asyncio.timeout(10):
                await flow.fetch()  # the Interrupt
        finally:
            await flow.stop()
    finally:
        await store.close()
    stop = asyncio.Event()
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    args = admin._parser().parse_args(["inspect", "--state-store", str(path), "--port", "0"])
    server = asyncio.create_task(admin._inspect(args, stop, started))
    try:
        async with asyncio.timeout(10):
            url = await started
        async with aiohttp.ClientSession() as session, session.get(url + "api/state") as response:
            state = await response.json()
        assert [(r["trace_id"], r["node"]) for r in state["interrupts"]] == [(sent.trace_id, "ask")]
    finally:
        stop.set()
        async with asyncio.timeout(10):
            await server
