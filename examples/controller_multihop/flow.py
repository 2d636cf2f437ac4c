"""A controller node that loops on itself, gathering facts until it can answer.

Run: ``python -m examples.controller_multihop.flow``

The controller receives a ``Message`` whose payload is a ``WM`` (working
memory). Each pass adds a fact and returns the message again; the runtime
increments ``hops`` and sends it back to the controller. After three facts the
controller returns a ``FinalAnswer``, which goes straight to Rookery. A second
run shows the hop budget guard ending a loop that would never finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from penguiflow import WM, FinalAnswer, Headers, Message, Node, NodePolicy, create

FACTS = ["penguins live in the southern hemisphere", "emperors dive to 500 m", "colonies huddle"]


async def controller(message: Message, _ctx: object) -> Message:
    wm = message.payload
    assert isinstance(wm, WM)
    if len(wm.facts) >= len(FACTS):
        answer = FinalAnswer(text="; ".join(wm.facts), citations=[f"hop-{i}" for i in range(3)])
        return message.model_copy(update={"payload": answer})
    fact = FACTS[len(wm.facts)]
    print(f"hop {wm.hops}: learned {fact!r}")
    updated = wm.model_copy(update={"facts": [*wm.facts, fact]})
    return message.model_copy(update={"payload": updated})


async def stubborn(message: Message, _ctx: object) -> Message:
    return message  # never finishes on its own: the hop budget stops it


async def run(node_func: Callable[[Message, object], Awaitable[Message]], wm: WM) -> Message:
    policy = NodePolicy(validate="none")
    node = Node(node_func, name="controller", allow_cycle=True, policy=policy)
    flow = create(node.to(node))
    flow.run()
    try:
        await flow.emit(Message(payload=wm, headers=Headers(tenant="demo")))
        async with asyncio.timeout(5):
            result: Message = await flow.fetch()
        return result
    finally:
        await flow.stop()


async def main() -> None:
    final = await run(controller, WM(query="tell me about penguins", budget_hops=8))
    print(f"Final answer: {final.payload.text}")
    print(f"Citations: {final.payload.citations}")
    capped = await run(stubborn, WM(query="loop forever", budget_hops=3))
    print(f"Budget guard: {capped.payload.text}")


if __name__ == "__main__":
    asyncio.run(main())
