"""Carry request context in ``Message.meta`` from node to node.

Run: ``python -m examples.metadata_propagation.flow``

``meta`` is a free-form dict on every ``Message``. Nodes add breadcrumbs
(request ids, cost, routing hints) without touching the payload; returning
``message.model_copy(update={"payload": ...})`` keeps headers, trace id and
meta for the next node. Returning a bare payload would drop the envelope.
"""

from __future__ import annotations

import asyncio

from penguiflow import Headers, Message, Node, NodePolicy, create
from penguiflow.core import Context


async def annotate(message: Message, _ctx: Context) -> Message:
    message.meta["request_id"] = "req-42"
    message.meta["steps"] = ["annotate"]
    return message.model_copy(update={"payload": message.payload.strip()})


async def retrieve(message: Message, _ctx: Context) -> Message:
    message.meta["steps"].append("retrieve")
    message.meta["cost_usd"] = 0.002
    return message.model_copy(update={"payload": [f"doc about {message.payload}"]})


async def summarize(message: Message, _ctx: Context) -> Message:
    message.meta["steps"].append("summarize")
    message.meta["cost_usd"] += 0.001
    return message.model_copy(update={"payload": f"{len(message.payload)} document(s) found"})


async def main() -> None:
    policy = NodePolicy(validate="none")
    a = Node(annotate, name="annotate", policy=policy)
    r = Node(retrieve, name="retrieve", policy=policy)
    s = Node(summarize, name="summarize", policy=policy)
    flow = create(a.to(r), r.to(s), s.to())
    flow.run()
    original = Message(payload="  emperor penguins ", headers=Headers(tenant="acme", topic="wiki"))
    try:
        await flow.emit(original)
        async with asyncio.timeout(5):
            result = await flow.fetch()
    finally:
        await flow.stop()
    print(f"payload: {result.payload}")
    print(f"headers: {result.headers.model_dump()}")
    print(f"same trace: {result.trace_id == original.trace_id}")
    print(f"request_id: {result.meta['request_id']}")
    print(f"steps: {result.meta['steps']}")
    print(f"cost_usd: {result.meta['cost_usd']:.3f}")


if __name__ == "__main__":
    asyncio.run(main())
