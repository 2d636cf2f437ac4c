"""Retries, timeouts and a middleware that watches them happen.

Run: ``python -m examples.reliability_middleware.flow``

``fetch`` hangs on its first attempt; its ``NodePolicy(timeout_s=...)`` cuts the
attempt short and the retry succeeds. ``enrich`` raises once and succeeds on
the retry. A middleware (any async callable taking a ``FlowEvent``) prints
each event as the runtime emits it.
"""

from __future__ import annotations

import asyncio

from penguiflow import FlowEvent, Headers, Message, Node, NodePolicy, create

attempts = {"fetch": 0, "enrich": 0}


async def fetch(message: Message, _ctx: object) -> Message:
    attempts["fetch"] += 1
    if attempts["fetch"] == 1:
        await asyncio.Event().wait()  # a hung upstream call: the policy timeout ends it
    return message.model_copy(update={"payload": {"doc": "penguin facts"}})


async def enrich(message: Message, _ctx: object) -> Message:
    attempts["enrich"] += 1
    if attempts["enrich"] == 1:
        raise ConnectionError("flaky enrichment service")
    return message.model_copy(update={"payload": {**message.payload, "enriched": True}})


async def print_events(event: FlowEvent) -> None:
    if event.event_type in {"node_start", "node_success"}:
        print(f"  {event.event_type:<12} {event.node_name} attempt={event.attempt}")
    elif event.event_type == "node_retry":
        sleep_s = event.extra["sleep_s"]
        print(f"  node_retry   {event.node_name} next={event.attempt} sleep_s={sleep_s}")
    elif event.event_type in {"node_timeout", "node_error"}:
        print(f"  {event.event_type:<12} {event.node_name} {event.extra['exception']}")


async def main() -> None:
    fetch_node = Node(
        fetch,
        name="fetch",
        policy=NodePolicy(validate="none", timeout_s=0.05, max_retries=2, backoff_base=0.01),
    )
    enrich_node = Node(
        enrich, name="enrich", policy=NodePolicy(validate="none", max_retries=1, backoff_base=0.01)
    )
    flow = create(fetch_node.to(enrich_node), enrich_node.to(), middlewares=[print_events])
    flow.run()
    try:
        print("Events:")
        await flow.emit(Message(payload="q", headers=Headers(tenant="demo")))
        async with asyncio.timeout(5):
            result = await flow.fetch()
    finally:
        await flow.stop()
    print(f"Result: {result.payload}")


if __name__ == "__main__":
    asyncio.run(main())
