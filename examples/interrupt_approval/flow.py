"""Human approval in the middle of a flow: ``ctx.interrupt`` parks one order.

Run: ``python -m examples.interrupt_approval.flow``

``review`` asks a person to approve every order over 100. The order's trace
parks: Rookery receives a ``penguiflow.Interrupt`` and ``review`` goes on with
the next orders meanwhile, so the small ones are charged while the big one
waits. The reviewer (here a coroutine) answers with ``flow.resume(token,
decision)`` and the parked ``review`` call continues where it stopped.
"""

from __future__ import annotations

import asyncio

from penguiflow import Headers, Interrupt, Message, Node, NodePolicy, create
from penguiflow.core import Context

LIMIT = 100


async def review(order: Message, ctx: Context) -> Message:
    amount = order.payload["amount"]
    if amount > LIMIT:
        # Parks this trace only; the decision is whatever resume() passes.
        decision = await ctx.interrupt({"question": "approve?", "order": order.payload})
        if not decision["approved"]:
            return order.model_copy(update={"payload": {**order.payload, "status": "rejected"}})
    return order


async def charge(order: Message, _ctx: Context) -> Message:
    if order.payload.get("status") == "rejected":
        return order
    return order.model_copy(update={"payload": {**order.payload, "status": "charged"}})


async def reviewer(question: Interrupt) -> dict[str, bool]:
    """Stands in for a person: approves orders of at most 500."""
    order = question.payload["order"]
    print(f"reviewer asked about order {order['id']} ({order['amount']})")
    return {"approved": order["amount"] <= 500}


async def main() -> None:
    policy = NodePolicy(validate="none")
    review_node = Node(review, name="review", policy=policy)
    charge_node = Node(charge, name="charge", policy=policy)
    flow = create(review_node.to(charge_node), charge_node.to())
    flow.run()
    orders = [
        {"id": "A", "amount": 250},
        {"id": "B", "amount": 20},
        {"id": "C", "amount": 900},
        {"id": "D", "amount": 35},
    ]
    try:
        async with asyncio.timeout(10):
            for order in orders:
                await flow.emit(Message(payload=order, headers=Headers(tenant="shop")))
            finished = []
            while len(finished) < len(orders):
                item = await flow.fetch()
                if isinstance(item, Interrupt):
                    await flow.resume(item.token, await reviewer(item))
                    continue
                print(f"order {item.payload['id']}: {item.payload['status']}")
                finished.append(item.payload["id"])
    finally:
        await flow.stop()
    print(f"finished in order: {finished}")


if __name__ == "__main__":
    asyncio.run(main())
