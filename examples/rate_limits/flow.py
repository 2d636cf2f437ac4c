"""Two nodes calling one provider share its rate limit; nothing is dropped.

Run: ``python -m examples.rate_limits.flow``

``search`` and ``rerank`` both name the key ``"provider"``, so they draw from one
token bucket: 5 calls at once (the burst), then 20 a second between them. Items
wait in the node's actor for their token while the mailbox behind them holds
the rest (backpressure); every item arrives. A message whose deadline comes
before its turn is not kept waiting: it ends at once with ``Deadline exceeded``,
as a message that arrived late would.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from penguiflow import FinalAnswer, Headers, Message, Node, NodePolicy, RateLimit, create

PROVIDER = RateLimit(rate=20.0, per_s=1.0, burst=5, key="provider")
ITEMS = 15

calls: list[tuple[str, float]] = []


async def search(msg: Message, ctx: Any) -> Message:
    calls.append(("search", time.monotonic()))  # a provider API call would go here
    return msg


async def rerank(msg: Message, ctx: Any) -> Message:
    calls.append(("rerank", time.monotonic()))
    return msg


def build_flow() -> Any:
    policy = NodePolicy(validate="none", rate_limit=PROVIDER)
    first = Node(search, name="search", policy=policy)
    second = Node(rerank, name="rerank", policy=policy)
    return create(first.to(second), second.to(), queue_maxsize=4)


async def main() -> None:
    flow = build_flow()
    flow.run()
    start = time.monotonic()
    try:
        async with asyncio.timeout(30):

            async def produce() -> None:
                for n in range(ITEMS):
                    await flow.emit(Message(payload=n, headers=Headers(tenant="demo")))

            producer = asyncio.create_task(produce())
            results = [(await flow.fetch()).payload for _ in range(ITEMS)]
            await producer
            elapsed = time.monotonic() - start
            print(f"{len(calls)} provider calls in {elapsed:.2f} s (limit: 5 at once, then 20/s)")
            print(f"none dropped: {sorted(results) == list(range(ITEMS))}")

            # The bucket is empty now: the next token is 50 ms away, too late for
            # a message due in 10 ms. It is not kept waiting: it ends at once.
            hurried = Message(
                payload="urgent", headers=Headers(tenant="demo"), deadline_s=time.time() + 0.01
            )
            await flow.emit(hurried)
            out = await flow.fetch()
            assert isinstance(out.payload, FinalAnswer)
            print(f"hurried message: {out.payload.text}")
    finally:
        await flow.stop()


if __name__ == "__main__":
    asyncio.run(main())
