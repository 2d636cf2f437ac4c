"""Conformance: the 2.2.5 README code blocks (seed page), run as users copy them."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from conformance_support import emit, fetch
from pydantic import BaseModel

from penguiflow import (
    Headers,
    Message,
    ModelRegistry,
    Node,
    NodePolicy,
    create,
    flow_to_dot,
    flow_to_mermaid,
)


class QueryIn(BaseModel):
    text: str


class QueryOut(BaseModel):
    topic: str


class PackOut(BaseModel):
    prompt: str


def test_core_concepts_message_block() -> None:
    from penguiflow.types import Headers, Message

    msg = Message(payload=QueryIn(text="unique reach last 30 days"), headers=Headers(tenant="acme"))
    msg.meta["request_id"] = "abc123"
    assert msg.meta == {"request_id": "abc123"}
    assert msg.payload.text == "unique reach last 30 days"


async def test_core_concepts_node_flow_and_running_blocks() -> None:
    from penguiflow.core import create
    from penguiflow.node import Node
    from penguiflow.registry import ModelRegistry

    async def triage(msg: QueryIn, ctx: Any) -> QueryOut:
        return QueryOut(topic="metrics")

    async def packer(msg: QueryOut, ctx: Any) -> PackOut:
        return PackOut(prompt=f"topic={msg.topic}")

    triage_node = Node(triage, name="triage")
    packer_node = Node(packer, name="packer")
    flow = create(triage_node.to(packer_node))

    registry = ModelRegistry()
    registry.register("triage", QueryIn, QueryOut)
    registry.register("packer", QueryOut, PackOut)

    flow.run(registry=registry)
    try:
        await emit(flow, {"text": "hi"})
        out = await fetch(flow)
        assert out == PackOut(prompt="topic=metrics")
    finally:
        await flow.stop()


async def test_quickstart_example(capsys: pytest.CaptureFixture[str]) -> None:
    class TriageIn(BaseModel):
        text: str

    class TriageOut(BaseModel):
        text: str
        topic: str

    class RetrieveOut(BaseModel):
        topic: str
        docs: list[str]

    class PackOut(BaseModel):
        prompt: str

    async def triage(msg: TriageIn, ctx: Any) -> TriageOut:
        topic = "metrics" if "metric" in msg.text else "general"
        return TriageOut(text=msg.text, topic=topic)

    async def retrieve(msg: TriageOut, ctx: Any) -> RetrieveOut:
        docs = [f"doc_{i}_{msg.topic}" for i in range(2)]
        return RetrieveOut(topic=msg.topic, docs=docs)

    async def pack(msg: RetrieveOut, ctx: Any) -> PackOut:
        prompt = f"[{msg.topic}] summarize {len(msg.docs)} docs"
        return PackOut(prompt=prompt)

    triage_node = Node(triage, name="triage", policy=NodePolicy(validate="both"))
    retrieve_node = Node(retrieve, name="retrieve", policy=NodePolicy(validate="both"))
    pack_node = Node(pack, name="pack", policy=NodePolicy(validate="both"))

    registry = ModelRegistry()
    registry.register("triage", TriageIn, TriageOut)
    registry.register("retrieve", TriageOut, RetrieveOut)
    registry.register("pack", RetrieveOut, PackOut)

    flow = create(
        triage_node.to(retrieve_node),
        retrieve_node.to(pack_node),
    )
    flow.run(registry=registry)
    try:
        message = Message(
            payload=TriageIn(text="show marketing metrics"),
            headers=Headers(tenant="acme"),
        )
        # README: the Message envelope is not unwrapped, so triage's registry
        # rejects it; users of 2.2.5 emit the payload model for this example.
        await emit(flow, message.payload)
        out = await fetch(flow)
        print(out.prompt)
    finally:
        await flow.stop()
    assert capsys.readouterr().out == "[metrics] summarize 2 docs\n"


async def test_streaming_snippet() -> None:
    tokens = ["a", "b", "c"]

    async def producer(msg: Message, ctx: Any) -> None:
        for i, token in enumerate(tokens):
            done = i == len(tokens) - 1
            await ctx.emit_chunk(parent=msg, text=token, done=done)

    flow = create(Node(producer, name="producer", policy=NodePolicy(validate="none")).to())
    flow.run()
    try:
        await emit(flow, Message(payload="q", headers=Headers(tenant="acme")))
        chunks = [(await fetch(flow)).payload for _ in tokens]
    finally:
        await flow.stop()
    assert [(c.seq, c.text, c.done) for c in chunks] == [
        (0, "a", False),
        (1, "b", False),
        (2, "c", True),
    ]


async def test_playbook_snippet() -> None:
    async def retrieve(msg: Message, ctx: Any) -> Message:
        return msg.model_copy(update={"payload": f"docs for {msg.payload}"})

    def build_retrieval_playbook() -> tuple[Any, Any]:
        node = Node(retrieve, name="retrieve", policy=NodePolicy(validate="none"))
        return create(node.to()), None

    async def controller(msg: Message, ctx: Any) -> Message:
        playbook_result = await ctx.call_playbook(build_retrieval_playbook, msg)
        return msg.model_copy(update={"payload": playbook_result})

    flow = create(Node(controller, name="controller", policy=NodePolicy(validate="none")).to())
    flow.run()
    try:
        await emit(flow, Message(payload="q", headers=Headers(tenant="acme")))
        out = await fetch(flow)
    finally:
        await flow.stop()
    assert out.payload == "docs for q"


def test_visualization_snippet() -> None:
    async def step(msg: Any, ctx: Any) -> Any:
        return msg

    a = Node(step, name="a")
    flow = create(a.to(Node(step, name="b")))
    assert flow_to_mermaid(flow, direction="LR").startswith("graph LR\n")
    assert flow_to_dot(flow, rankdir="LR").startswith("digraph PenguiFlow {\n    rankdir=LR\n")


async def test_a2a_snippet_builds_app() -> None:
    from penguiflow import Node, create
    from penguiflow_a2a import A2AAgentCard, A2AServerAdapter, A2ASkill, create_a2a_app

    async def orchestrate(message: Message, ctx: Any) -> dict[str, str]:
        await ctx.emit_chunk(parent=message, text="thinking...")
        return {"result": "done"}

    node = Node(orchestrate, name="main")
    flow = create(node.to())

    card = A2AAgentCard(
        name="Main Agent",
        description="Primary entrypoint for orchestration",
        version="2.1.0",
        skills=[A2ASkill(name="orchestrate", description="Handles orchestration")],
    )

    adapter = A2AServerAdapter(
        flow,
        agent_card=card,
        agent_url="https://agent.example",
    )
    app = create_a2a_app(adapter)
    assert app.title == "Main Agent"

    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(app, host="127.0.0.1")) as client, asyncio.timeout(10):
        agent = await client.get("/agent")
        assert agent.status == 200
        assert (await agent.json())["name"] == "Main Agent"
        sent = await client.post(
            "/message/send", json={"payload": "hi", "headers": {"tenant": "acme"}}
        )
        assert sent.status == 200
        body = await sent.json()
        assert body["status"] == "succeeded"
        assert body["output"] == {"result": "done"}
        assert body["taskId"] == body["contextId"] == body["traceId"]
        streamed = await client.post(
            "/message/stream", json={"payload": "hi", "headers": {"tenant": "acme"}}
        )
        assert streamed.headers["Content-Type"].startswith("text/event-stream")
        text = await streamed.text()
    events = [block.split("\n")[0] for block in text.split("\n\n") if block]
    assert events == ["event: status", "event: chunk", "event: artifact", "event: done"]


def test_react_planner_snippet_constructs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from penguiflow import ReactPlanner, build_catalog, tool

    class Query(BaseModel):
        text: str

    class Documents(BaseModel):
        results: list[str]

    class Summary(BaseModel):
        text: str

    @tool(desc="Search documentation")
    async def search_docs(args: Query, ctx: Any) -> Documents:
        return Documents(results=[args.text])

    @tool(desc="Summarize results")
    async def summarize(args: Documents, ctx: Any) -> Summary:
        return Summary(text=" ".join(args.results))

    registry = ModelRegistry()
    registry.register("search_docs", Query, Documents)
    registry.register("summarize", Documents, Summary)
    planner = ReactPlanner(
        llm="gpt-4",
        catalog=build_catalog(
            [Node(search_docs, name="search_docs"), Node(summarize, name="summarize")], registry
        ),
        max_iters=10,
    )
    assert planner is not None
    assert os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] == "True"
    assert asyncio.iscoroutinefunction(planner.run)
