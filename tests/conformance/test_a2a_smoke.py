"""Conformance smoke: spec/a2a.md adapter basics (trace isolation MUST, cancel, errors)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from penguiflow import Message, Node, NodePolicy, create, predicate_router
from penguiflow_a2a import (
    A2AAgentCard,
    A2AMessagePayload,
    A2AServerAdapter,
    A2ATaskCancelRequest,
)
from penguiflow_a2a.server import A2ARequestError

CARD = A2AAgentCard(name="Agent", description="d")


def payload(value: Any, **kwargs: Any) -> A2AMessagePayload:
    return A2AMessagePayload(payload=value, headers={"tenant": "acme"}, **kwargs)


async def test_concurrent_sends_get_their_own_bare_results() -> None:
    """Results completing in the opposite order still reach their own request."""
    gates = {"first": asyncio.Event(), "second": asyncio.Event()}
    started = {"first": asyncio.Event(), "second": asyncio.Event()}

    async def work(item: Message, ctx: Any) -> dict[str, str]:
        started[item.payload].set()
        await gates[item.payload].wait()
        return {"echo": item.payload}

    lane_a = Node(work, name="lane_a", policy=NodePolicy(validate="none"))
    lane_b = Node(work, name="lane_b", policy=NodePolicy(validate="none"))
    router = predicate_router("router", lambda m: "lane_a" if m.payload == "first" else "lane_b")
    flow = create(router.to(lane_a, lane_b), lane_a.to(), lane_b.to())
    adapter = A2AServerAdapter(flow, agent_card=CARD, agent_url="http://agent")
    await adapter.start()
    first = asyncio.create_task(adapter.handle_send(payload("first")))
    second = asyncio.create_task(adapter.handle_send(payload("second")))
    try:
        async with asyncio.timeout(5):
            await started["first"].wait()
            await started["second"].wait()
            gates["second"].set()
            two = await second
            gates["first"].set()
            one = await first
        assert one["status"] == "succeeded"
        assert one["output"] == {"echo": "first"}
        assert two["output"] == {"echo": "second"}
        assert list(one)[:5] == ["status", "taskId", "contextId", "traceId", "output"]
        assert "meta" not in one
    finally:
        first.cancel()
        second.cancel()
        await adapter.stop()


async def test_send_errors_and_cancel() -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow(item: Message, ctx: Any) -> Any:
        entered.set()
        await release.wait()
        return item

    flow = create(Node(slow, name="slow", policy=NodePolicy(validate="none")).to())
    adapter = A2AServerAdapter(flow, agent_card=CARD, agent_url="http://agent")
    with pytest.raises(A2ARequestError) as not_running:
        await adapter.handle_send(payload("x"))
    assert (not_running.value.status_code, str(not_running.value)) == (503, "flow is not running")
    await adapter.start()
    try:
        with pytest.raises(A2ARequestError) as bad_headers:
            await adapter.handle_send(A2AMessagePayload(payload="x"))
        assert bad_headers.value.status_code == 422
        task = asyncio.create_task(adapter.handle_send(payload("x", taskId="T1")))
        async with asyncio.timeout(5):
            await entered.wait()  # the node holds the request's message
            result = await adapter.cancel(A2ATaskCancelRequest(task_id="T1"))
            reply = await task
        assert result["cancelled"] is True
        assert list(result) == ["taskId", "cancelled", "traceId", "contextId"]
        assert reply["status"] == "cancelled"
        assert reply["taskId"] == "T1"
        unknown = await adapter.cancel(A2ATaskCancelRequest(taskId="nope"))
        assert unknown == {"taskId": "nope", "cancelled": False}
    finally:
        release.set()
        await adapter.stop()
