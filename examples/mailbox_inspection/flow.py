"""Look inside a running flow's mailboxes, then wait until it is idle.

Run: ``python -m examples.mailbox_inspection.flow``

Every node of a flow is an actor with a bounded mailbox. ``inspect_mailboxes``
returns a snapshot per node (depth, capacity, the queued items in order, and
whether the node is busy) without disturbing anything; ``wait_idle`` returns
once every mailbox is empty and no node is working, which is what a test
awaits instead of sleeping.
"""

from __future__ import annotations

import asyncio

from penguiflow import Headers, Message, Node, NodePolicy, create
from penguiflow.testkit import EventRecorder, format_mailboxes, inspect_mailboxes, wait_idle

gate = asyncio.Event()
busy = asyncio.Event()


async def parse(message: Message, _ctx: object) -> Message:
    return message.model_copy(update={"payload": message.payload.upper()})


async def slow_write(message: Message, _ctx: object) -> Message:
    busy.set()
    await gate.wait()  # the "database" is slow until we open the gate
    return message


async def main() -> None:
    policy = NodePolicy(validate="none")
    p = Node(parse, name="parse", policy=policy)
    w = Node(slow_write, name="write", policy=policy)
    recorder = EventRecorder()  # a middleware that lets us await events instead of sleeping
    flow = create(p.to(w), w.to(), queue_maxsize=8, middlewares=[recorder])
    flow.run()
    try:
        async with asyncio.timeout(5):
            for word in ("krill", "squid", "fish", "ice"):
                await flow.emit(Message(payload=word, headers=Headers(tenant="demo")))
            await busy.wait()
            # parse is fast, so everything piles up in front of the slow writer.
            await recorder.wait_for("node_success", 4, node="parse")
            snapshots = inspect_mailboxes(flow)
            print("While the writer is blocked:")
            print(format_mailboxes(snapshots))
            queued = [item.payload for item in snapshots["write"].items]
            print(f"queued for write, in order: {queued}")

            gate.set()
            await wait_idle(flow)
            print("After wait_idle:")
            print(format_mailboxes(inspect_mailboxes(flow)))
            results = [(await flow.fetch()).payload for _ in range(4)]
    finally:
        await flow.stop()
    print(f"fetched in order: {results}")


if __name__ == "__main__":
    asyncio.run(main())
