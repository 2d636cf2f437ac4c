"""``GET /metrics`` on the A2A app when a collector is attached."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from penguiflow.core import create
from penguiflow.metrics import PrometheusCollector
from penguiflow.node import Node, NodePolicy
from penguiflow_a2a import A2AAgentCard, A2AServerAdapter, create_a2a_app


async def echo(msg: Any, ctx: Any) -> Any:
    return msg


def make_adapter() -> tuple[Any, A2AServerAdapter]:
    flow = create(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    card = A2AAgentCard(name="a", description="d")
    return flow, A2AServerAdapter(flow, agent_card=card, agent_url="http://127.0.0.1/")


async def test_a2a_app_serves_metrics_when_a_collector_is_attached() -> None:
    flow, adapter = make_adapter()
    collector = PrometheusCollector(flow, registry=CollectorRegistry())
    app = create_a2a_app(adapter, collector=collector, include_docs=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        names = {f.name for f in text_string_to_metric_families(await response.text())}
    assert {"penguiflow_mailbox_depth", "penguiflow_traces_in_flight"} <= names


async def test_a2a_app_has_no_metrics_route_without_a_collector() -> None:
    _, adapter = make_adapter()
    app = create_a2a_app(adapter, include_docs=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.get("/metrics")).status == 404


async def test_metrics_route_is_behind_the_auth_hook() -> None:
    flow, adapter = make_adapter()
    collector = PrometheusCollector(flow, registry=CollectorRegistry())
    app = create_a2a_app(adapter, collector=collector, bearer_token="s3cret", include_docs=False)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        assert (await client.get("/metrics")).status == 401
        ok = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
        assert ok.status == 200


async def test_inspector_mounts_under_the_a2a_app() -> None:
    from penguiflow.inspector import create_inspector_app

    flow, adapter = make_adapter()
    app = create_a2a_app(adapter, include_docs=False)
    app.add_subapp("/inspector/", create_inspector_app(flow))
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        page = await client.get("/inspector/")
        assert page.status == 200
        assert 'data-node="echo"' in await page.text()
        state = await (await client.get("/inspector/api/state")).json()
        assert [n["name"] for n in state["nodes"]] == ["echo", "Rookery"]
