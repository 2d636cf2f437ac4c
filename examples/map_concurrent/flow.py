"""Enrich a batch of documents inside one node with ``map_concurrent``.

Run: ``python -m examples.map_concurrent.flow``

The ``enrich`` node receives a message listing document ids and scores them
with at most two lookups in flight at once. Lookups finish out of order, but
``map_concurrent`` returns the results in input order.
"""

from __future__ import annotations

import asyncio

from penguiflow import Headers, Message, Node, NodePolicy, create, map_concurrent

LATENCY_TURNS = {"doc-a": 3, "doc-b": 0, "doc-c": 2, "doc-d": 1, "doc-e": 0}


async def lookup(doc_id: str) -> dict[str, object]:
    # Stand-in for an I/O call: yield to the loop a few times so lookups overlap
    # and finish in a different order than they started.
    for _ in range(LATENCY_TURNS[doc_id]):
        await asyncio.sleep(0)
    print(f"  finished {doc_id}")
    return {"id": doc_id, "score": len(doc_id) + LATENCY_TURNS[doc_id]}


async def enrich(message: Message, _ctx: object) -> Message:
    docs = await map_concurrent(message.payload, lookup, max_concurrency=2)
    return message.model_copy(update={"payload": docs})


async def main() -> None:
    node = Node(enrich, name="enrich", policy=NodePolicy(validate="none", timeout_s=5.0))
    flow = create(node.to())
    flow.run()
    try:
        await flow.emit(Message(payload=list(LATENCY_TURNS), headers=Headers(tenant="demo")))
        async with asyncio.timeout(5):
            result: Message = await flow.fetch()
    finally:
        await flow.stop()
    print("results in input order:")
    for doc in result.payload:
        print(f"  {doc['id']}: {doc['score']}")


if __name__ == "__main__":
    asyncio.run(main())
