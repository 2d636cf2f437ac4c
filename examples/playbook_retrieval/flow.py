"""A controller that runs a retrieval -> rerank -> compress playbook as a subflow.

Run: ``python -m examples.playbook_retrieval.flow``

``ctx.call_playbook(factory, message)`` builds a fresh flow from ``factory``,
runs it for this one message (same trace id, headers and meta), returns the
payload of the first item that reaches its Rookery, and always stops it.
"""

from __future__ import annotations

import asyncio

from penguiflow import (
    FinalAnswer,
    Headers,
    Message,
    ModelRegistry,
    Node,
    NodePolicy,
    PenguiFlow,
    create,
)
from penguiflow.core import Context

CORPUS = {
    "diet": ["krill is the main food", "penguins eat fish", "squid is eaten too", "ice is cold"],
}


async def retrieve(message: Message, _ctx: Context) -> Message:
    docs = CORPUS.get(message.payload, [])
    message.meta["retrieved"] = len(docs)
    return message.model_copy(update={"payload": docs})


async def rerank(message: Message, _ctx: Context) -> Message:
    ranked = sorted(message.payload, key=lambda doc: ("eat" not in doc and "food" not in doc, doc))
    return message.model_copy(update={"payload": ranked})


async def compress(message: Message, _ctx: Context) -> Message:
    return message.model_copy(update={"payload": " | ".join(message.payload[:2])})


def build_retrieval_playbook() -> tuple[PenguiFlow, ModelRegistry | None]:
    """The playbook factory: a new three-node flow each call, no registry."""
    policy = NodePolicy(validate="none")
    r1 = Node(retrieve, name="retrieve", policy=policy)
    r2 = Node(rerank, name="rerank", policy=policy)
    r3 = Node(compress, name="compress", policy=policy)
    return create(r1.to(r2), r2.to(r3), r3.to()), None


async def controller(message: Message, ctx: Context) -> Message:
    summary = await ctx.call_playbook(build_retrieval_playbook, message)
    print(f"playbook returned: {summary!r}")
    # meta is shared by reference with the subflow's copies, so its breadcrumbs are visible.
    print(f"meta after playbook: {message.meta}")
    return message.model_copy(update={"payload": FinalAnswer(text=summary)})


async def main() -> None:
    node = Node(controller, name="controller", policy=NodePolicy(validate="none"))
    flow = create(node.to())
    flow.run()
    try:
        await flow.emit(Message(payload="diet", headers=Headers(tenant="demo")))
        async with asyncio.timeout(5):
            result = await flow.fetch()
    finally:
        await flow.stop()
    print(f"Final answer: {result.payload.text}")


if __name__ == "__main__":
    asyncio.run(main())
