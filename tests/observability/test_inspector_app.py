"""The inspector's HTTP surface (aiohttp test client), its trace log and its graph drawing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from prometheus_client import CollectorRegistry

from penguiflow.core import PenguiFlow, create
from penguiflow.inspector import ACTION_HEADER, TraceLog, create_inspector_app
from penguiflow.inspector._svg import graph_svg, layers
from penguiflow.metrics import FlowEvent, PrometheusCollector
from penguiflow.node import Node, NodePolicy
from penguiflow.types import Headers, Message

ACTION = {ACTION_HEADER: "1"}


async def passthrough(msg: Any, ctx: Any) -> Any:
    return msg


def node(name: str, fn: Any = passthrough) -> Node:
    return Node(fn, name=name, policy=NodePolicy(validate="none"))


def message() -> Message:
    return Message(payload=1, headers=Headers(tenant="t"))


async def test_page_is_self_contained_and_locked_down(client_for: Any) -> None:
    flow = create(node("a<b>").to())
    client = await client_for(create_inspector_app(flow))
    page = await client.get("/")
    text = await page.text()
    assert page.status == 200
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "a&lt;b&gt;" in text
    assert "<b>" not in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    for asset, kind in (("/inspector.js", "text/javascript"), ("/inspector.css", "text/css")):
        response = await client.get(asset)
        assert response.status == 200
        assert response.content_type == kind
        assert "https://" not in await response.text()


async def test_state_lists_nodes_lanes_supervision_and_traces(
    client_for: Any, flows: list[PenguiFlow]
) -> None:
    a, b = node("a"), node("b")
    flow = create(a.to(b), b.to())
    client = await client_for(create_inspector_app(flow))
    flow.run()
    flows.append(flow)
    msg = message()
    await flow.emit(msg)
    async with asyncio.timeout(5):
        await flow.fetch()
    state = await (await client.get("/api/state")).json()
    assert [n["name"] for n in state["nodes"]] == ["a", "b", "Rookery"]
    assert state["nodes"][1]["lanes"] == [{"source": "a", "depth": 0, "capacity": 64}]
    children = state["supervision"]["children"]
    assert [(c["id"], c["state"], c["restarts"]) for c in children] == [
        ("a", "running", 0),
        ("b", "running", 0),
    ]
    (trace,) = state["traces"]
    assert (trace["trace_id"], trace["status"]) == (msg.trace_id, "done")
    history = await (await client.get(f"/api/traces/{msg.trace_id}")).json()
    assert [e["event"] for e in history["events"]] == [
        "node_start",
        "node_success",
        "node_start",
        "node_success",
    ]
    assert (await client.get("/api/traces/nobody")).status == 404


async def test_stream_sends_the_current_state_first(
    client_for: Any, flows: list[PenguiFlow]
) -> None:
    flow = create(node("a").to())
    client = await client_for(create_inspector_app(flow, refresh_s=0.01))
    response = await client.get("/api/stream")
    assert response.content_type == "text/event-stream"
    async with asyncio.timeout(5):
        assert await response.content.readline() == b"event: state\n"
        data = await response.content.readline()
    state = json.loads(data.decode().removeprefix("data: "))
    assert state["running"] is False
    flow.run()
    flows.append(flow)
    async with asyncio.timeout(5):
        while True:  # the next state event follows the change
            line = await response.content.readline()
            if line.startswith(b"data: ") and json.loads(line[6:])["running"]:
                break
    response.close()


async def test_cancel_needs_the_action_header_and_passes_auth(
    client_for: Any, flows: list[PenguiFlow]
) -> None:
    entered = asyncio.Event()

    async def park(msg: Any, ctx: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()

    flow = create(node("park", park).to())
    allowed = {"yes": False}
    client = await client_for(create_inspector_app(flow, auth=lambda request: allowed["yes"]))
    flow.run()
    flows.append(flow)
    msg = message()
    await flow.emit(msg)
    async with asyncio.timeout(5):
        await entered.wait()
    url = f"/api/traces/{msg.trace_id}/cancel"
    assert (await client.post(url)).status == 403
    assert (await client.post(url, headers=ACTION)).status == 401
    allowed["yes"] = True
    response = await client.post(url, headers=ACTION)
    assert await response.json() == {"cancelled": True}
    again = await client.post(url, headers=ACTION)
    assert await again.json() == {"cancelled": False}


async def test_cancel_accepts_an_async_auth_hook_and_a_stopped_flow_is_a_conflict(
    client_for: Any,
) -> None:
    async def auth(request: Any) -> bool:
        return True

    client = await client_for(create_inspector_app(create(node("a").to()), auth=auth))
    response = await client.post("/api/traces/t/cancel", headers=ACTION)
    assert response.status == 409


async def test_metrics_are_served_with_a_collector(client_for: Any) -> None:
    flow = create(node("a").to())
    collector = PrometheusCollector(flow, registry=CollectorRegistry())
    client = await client_for(create_inspector_app(flow, collector=collector))
    response = await client.get("/metrics")
    assert response.status == 200
    assert 'penguiflow_mailbox_depth{node="a"} 0.0' in await response.text()


async def test_queued_traces_are_listed_before_their_first_event(
    client_for: Any, flows: list[PenguiFlow]
) -> None:
    entered = asyncio.Event()

    async def park(msg: Any, ctx: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()

    flow = create(node("park", park).to())
    client = await client_for(create_inspector_app(flow))
    flow.run()
    flows.append(flow)
    first, second = message(), message()
    await flow.emit(first)
    async with asyncio.timeout(5):
        await entered.wait()
    await flow.emit(second)
    state = await (await client.get("/api/state")).json()
    statuses = {t["trace_id"]: t["status"] for t in state["traces"]}
    assert statuses == {first.trace_id: "running", second.trace_id: "queued"}


def event(kind: str, trace_id: str | None, **extra: Any) -> FlowEvent:
    return FlowEvent(kind, 1.0, "n", "n", trace_id, 0, None, 0, 0, 0, 0, 0, 0, False, extra)


async def test_trace_log_keeps_the_newest_traces_and_statuses() -> None:
    log = TraceLog(max_traces=2, max_events=3)
    for trace_id in ("t1", "t2", "t3"):
        await log(event("node_start", trace_id))
    await log(event("node_start", None))  # trace-less: ignored
    assert [r.trace_id for r in log.recent()] == ["t3", "t2"]
    await log(event("node_failed", "t2", exception="ValueError('x')"))
    await log(event("trace_cancel_start", "t3", pending=2))
    for _ in range(5):
        await log(event("node_start", "t3"))
    t2, t3 = log.get("t2"), log.get("t3")
    assert t2 is not None
    assert t3 is not None
    assert (t2.status, t3.status) == ("failed", "cancelled")
    assert t2.events[-1]["detail"] == "ValueError('x')"
    assert len(t3.events) == 3
    log.trace_ended("t3")
    assert t3.status == "cancelled"  # an end does not hide why it ended


async def test_a_finished_trace_id_seen_again_starts_a_new_record() -> None:
    log = TraceLog()
    await log(event("node_start", "t"))
    log.trace_ended("t")
    await log(event("node_start", "t"))
    record = log.get("t")
    assert record is not None
    assert (record.status, len(record.events)) == ("running", 1)


def test_layers_put_each_node_after_its_sources_and_ignore_back_edges() -> None:
    edges = [("in", "a"), ("a", "b"), ("b", "a"), ("a", "a"), ("b", "out"), ("in", "out")]
    assert layers(["in", "a", "b", "out"], edges) == {"in": 0, "a": 1, "b": 2, "out": 3}


def test_graph_svg_draws_every_node_and_edge_once() -> None:
    svg = graph_svg(["in", "a", "out"], [("in", "a"), ("a", "a"), ("a", "in"), ("a", "out")])
    assert svg.count('class="node"') == 3
    assert svg.count('class="edge"') == 4
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
