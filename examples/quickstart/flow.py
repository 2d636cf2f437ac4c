"""The README quickstart: triage -> retrieve -> pack, validated by a ModelRegistry.

Run it from the repository root::

    python -m examples.quickstart.flow

One line differs from the 2.2.5 README: the flow is fed ``message.payload``
rather than the ``Message`` itself. PenguiFlow never unwraps envelopes, so a
node registered with ``TriageIn`` as its input model rejects a ``Message``
(see README.md here). Everything else is the README code as written.
"""

from __future__ import annotations

import asyncio

from pydantic import BaseModel

from penguiflow import Headers, Message, ModelRegistry, Node, NodePolicy, create


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


async def triage(msg: TriageIn, ctx) -> TriageOut:
    topic = "metrics" if "metric" in msg.text else "general"
    return TriageOut(text=msg.text, topic=topic)


async def retrieve(msg: TriageOut, ctx) -> RetrieveOut:
    docs = [f"doc_{i}_{msg.topic}" for i in range(2)]
    return RetrieveOut(topic=msg.topic, docs=docs)


async def pack(msg: RetrieveOut, ctx) -> PackOut:
    prompt = f"[{msg.topic}] summarize {len(msg.docs)} docs"
    return PackOut(prompt=prompt)


async def main() -> PackOut:
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

        await flow.emit(message.payload)  # the nodes are typed on payloads, not envelopes
        out = await flow.fetch()
        print(out.prompt)  # [metrics] summarize 2 docs
        return out
    finally:
        await flow.stop()


if __name__ == "__main__":
    asyncio.run(main())
