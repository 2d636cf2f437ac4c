"""Issue 14: 200 concurrent requests, bare payloads two hops deep, answers out of order.

The flow is ``entry -> node1 -> node2 -> node3``: ``node1`` returns the request's
``Message``, ``node2`` and ``node3`` bare dicts, and ``node3`` answers from a task
of its own once every request has reached it, in a seeded random order. Every
request must get its own answer (the payload names its request) on every binding,
and no task may be left ``working``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import pytest
from a2a_support import AGENT_URL, make_card, message, message03
from aiohttp import TCPConnector
from aiohttp.test_utils import TestClient, TestServer

from penguiflow import Message, Node, NodePolicy, create
from penguiflow_a2a import A2AServerAdapter, create_a2a_app
from penguiflow_a2a._aiohttp_app import SERVICE_KEY
from penguiflow_a2a.principals import SHARED_PRINCIPAL

REQUESTS = 200
POLICY = NodePolicy(validate="none")


class OutOfOrder:
    """``node3``'s answers: held until all requests arrived, then let go shuffled."""

    def __init__(self, count: int, seed: int) -> None:
        self.count = count
        self.rng = random.Random(seed)
        self.waiting: dict[int, asyncio.Future[None]] = {}
        self.workers: list[asyncio.Task[None]] = []

    def hold(self, req: int) -> asyncio.Future[None]:
        future = self.waiting[req] = asyncio.get_running_loop().create_future()
        if len(self.waiting) == self.count:
            order = list(self.waiting)
            self.rng.shuffle(order)
            for key in order:  # wakes the answering tasks in this order
                self.waiting[key].set_result(None)
        return future

    async def close(self) -> None:
        for worker in self.workers:
            worker.cancel()
        await asyncio.gather(*self.workers, return_exceptions=True)


def build_flow(answers: OutOfOrder) -> Any:
    async def entry(msg: Message, ctx: Any) -> Message:
        return msg

    async def node1(msg: Message, ctx: Any) -> Message:
        return msg

    async def node2(msg: Message, ctx: Any) -> dict[str, Any]:
        return {"req": msg.payload["req"], "hops": ["node2"]}

    async def node3(item: dict[str, Any], ctx: Any) -> None:
        released = answers.hold(item["req"])

        async def answer() -> None:
            await released
            await ctx.emit({"req": item["req"], "hops": [*item["hops"], "node3"]})

        answers.workers.append(asyncio.create_task(answer()))

    nodes = [Node(f, name=f.__name__, policy=POLICY) for f in (entry, node1, node2, node3)]
    first, second, third, fourth = nodes
    return create(first.to(second), second.to(third), third.to(fourth), fourth.to())


@pytest.fixture
async def answers() -> AsyncIterator[OutOfOrder]:
    held = OutOfOrder(REQUESTS, seed=14)
    yield held
    await held.close()


@pytest.fixture
async def served(answers: OutOfOrder) -> AsyncIterator[TestClient[Any, Any]]:
    adapter = A2AServerAdapter(build_flow(answers), agent_card=make_card(), agent_url=AGENT_URL)
    server = TestServer(create_a2a_app(adapter), host="127.0.0.1")
    # No connection limit (aiohttp's default is 100): all requests are in flight at once.
    client: TestClient[Any, Any] = TestClient(server, connector=TCPConnector(limit=0))
    async with asyncio.timeout(5):
        await client.start_server()
    try:
        yield client
    finally:
        async with asyncio.timeout(10):
            await client.close()
            await adapter.stop()


async def post(client: TestClient[Any, Any], path: str, body: Any) -> Any:
    response = await client.post(path, json=body)
    assert response.status == 200
    return await response.json()


async def jsonrpc_1_0(client: TestClient[Any, Any], req: int) -> Any:
    params = {"message": message({"data": {"req": req}}, messageId=f"m{req}")}
    body = {"jsonrpc": "2.0", "id": req, "method": "SendMessage", "params": params}
    task = (await post(client, "/", body))["result"]["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    (part,) = task["artifacts"][-1]["parts"]
    return part["data"]


async def jsonrpc_0_3(client: TestClient[Any, Any], req: int) -> Any:
    msg = message03({"kind": "data", "data": {"req": req}}, messageId=f"m{req}")
    body = {"jsonrpc": "2.0", "id": req, "method": "message/send", "params": {"message": msg}}
    task = (await post(client, "/", body))["result"]
    assert task["status"]["state"] == "completed"
    (part,) = task["artifacts"][-1]["parts"]
    return part["data"]


async def rest(client: TestClient[Any, Any], req: int) -> Any:
    body = {"message": message({"data": {"req": req}}, messageId=f"m{req}")}
    task = (await post(client, "/message:send", body))["task"]
    assert task["status"]["state"] == "TASK_STATE_COMPLETED"
    (part,) = task["artifacts"][-1]["parts"]
    return part["data"]


async def legacy_2_2_5(client: TestClient[Any, Any], req: int) -> Any:
    body = {"payload": {"req": req}, "headers": {"tenant": "acme"}}
    reply = await post(client, "/message/send", body)
    assert reply["status"] == "succeeded"
    return reply["output"]


@pytest.mark.slow
@pytest.mark.parametrize(
    "send",
    [
        pytest.param(jsonrpc_1_0, id="jsonrpc-1.0"),
        pytest.param(jsonrpc_0_3, id="jsonrpc-0.3"),
        pytest.param(rest, id="rest"),
        pytest.param(legacy_2_2_5, id="2.2.5-message-send"),
    ],
)
async def test_every_concurrent_request_gets_its_own_answer(
    served: TestClient[Any, Any], send: Any
) -> None:
    async with asyncio.timeout(30):
        answers = await asyncio.gather(*(send(served, req) for req in range(REQUESTS)))
    assert answers == [{"req": req, "hops": ["node2", "node3"]} for req in range(REQUESTS)]
    records = served.server.app[SERVICE_KEY].tasks.records(SHARED_PRINCIPAL)
    assert [r.state for r in records if r.state not in ("completed",)] == []


async def test_a_failure_on_a_bare_payload_fails_its_own_request() -> None:
    """node2 returns a dict, node3 fails on some: each caller gets its own outcome."""

    async def node1(msg: Message, ctx: Any) -> dict[str, Any]:
        return {"req": msg.payload["req"]}

    async def node2(item: dict[str, Any], ctx: Any) -> dict[str, Any]:
        if item["req"] % 3 == 0:
            raise ValueError(f"refused {item['req']}")
        return {"req": item["req"], "ok": True}

    first, second = Node(node1, name="node1", policy=POLICY), Node(node2, name="node2")
    flow = create(first.to(second), second.to(), emit_errors_to_rookery=True)
    adapter = A2AServerAdapter(flow, agent_card=make_card(), agent_url=AGENT_URL)
    server = TestServer(create_a2a_app(adapter), host="127.0.0.1")
    client: TestClient[Any, Any] = TestClient(server, connector=TCPConnector(limit=0))
    async with asyncio.timeout(5):
        await client.start_server()
    try:

        async def send(req: int) -> Any:
            body = {"payload": {"req": req}, "headers": {"tenant": "acme"}}
            response = await client.post("/message/send", json=body)
            return response.status, await response.json()

        async with asyncio.timeout(10):
            replies = await asyncio.gather(*(send(req) for req in range(30)))
    finally:
        async with asyncio.timeout(10):
            await client.close()
            await adapter.stop()
    for req, (status, reply) in enumerate(replies):
        assert status == 200
        if req % 3 == 0:
            assert reply["status"] == "failed"
            assert reply["error"]["trace_id"] == reply["traceId"]
            assert reply["error"]["message"] == f"Node 'node2' raised ValueError: refused {req}"
        else:
            assert reply["status"] == "succeeded"
            assert reply["output"] == {"req": req, "ok": True}
