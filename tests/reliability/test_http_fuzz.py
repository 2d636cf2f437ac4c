"""Junk sent to every A2A HTTP route gets a 4xx answer, never a 5xx or a hang (hypothesis).

One in-process server (127.0.0.1) for the module; each example posts a drawn
body (broken JSON, wrong types, unknown fields, missing payload or tenant)
and must be answered, under a timeout, with a status below 500.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from penguiflow import Node, NodePolicy, create
from penguiflow_a2a import A2AAgentCard, A2AServerAdapter, create_a2a_app

pytestmark = pytest.mark.asyncio(loop_scope="module")

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))

ROUTES = ["/message/send", "/message/stream", "/tasks/cancel", "/"]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
fields = st.sampled_from(
    [
        "payload",
        "headers",
        "meta",
        "traceId",
        "taskId",
        "contextId",
        "deadlineSeconds",
        "jsonrpc",
        "method",
        "params",
        "id",
    ]
)
bodies = st.one_of(
    st.binary(max_size=40),
    values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(fields, values, max_size=5).map(lambda d: json.dumps(d).encode()),
)


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    async def echo(msg: Any, ctx: Any) -> Any:
        return {"echo": msg.payload}

    flow = create(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    card = A2AAgentCard(name="fuzz", description="fuzzed agent")
    adapter = A2AServerAdapter(flow, agent_card=card, agent_url="http://127.0.0.1/")
    app = create_a2a_app(adapter, include_docs=False, sse_heartbeat_s=None)
    test_client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
    await test_client.start_server()
    try:
        yield test_client
    finally:
        await test_client.close()


@FUZZ
@given(route=st.sampled_from(ROUTES), body=bodies)
async def test_junk_bodies_get_a_client_error_answer(
    client: TestClient[Any, Any], route: str, body: bytes
) -> None:
    async with asyncio.timeout(5):
        response = await client.post(route, data=body, headers={"Content-Type": "application/json"})
        async with response:
            await response.read()
    assert response.status < 500


@pytest.mark.parametrize(
    ("route", "body"),
    [
        pytest.param("/message/send", b'{"": Infinity}', id="send-no-payload-infinity"),
        pytest.param(
            "/message/send", b'{"payload": NaN, "headers": {"tenant": "t"}}', id="send-nan"
        ),
        pytest.param("/tasks/cancel", b'{"taskId": -Infinity}', id="cancel-infinity"),
    ],
)
async def test_non_finite_json_numbers_are_malformed_json(
    client: TestClient[Any, Any], route: str, body: bytes
) -> None:
    """NaN and Infinity are not JSON (RFC 8259): 422, not a 500 from the reply encoder.

    Found by the fuzz test above: Python's decoder accepts them, and the
    validation error (or the echoed output) holding the float could not be
    encoded back to JSON.
    """
    async with asyncio.timeout(5):
        response = await client.post(route, data=body, headers={"Content-Type": "application/json"})
        async with response:
            await response.read()
    assert response.status == 422
