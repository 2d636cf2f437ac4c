"""A node crashes in the middle of a batch; its supervisor restarts it and nothing is lost.

Run: ``python -m examples.supervision.flow``

Two kinds of failure exist in PenguiFlow:

* an ``Exception`` raised by node code is handled by the node's ``NodePolicy``
  (retry, then a ``FlowError``) and the node simply moves on;
* a *crash* -- something escaping the handler contract, here a
  ``BaseException`` subclass standing for a broken invariant -- ends the
  node's actor. The flow's supervisor restarts it (a fresh incarnation, same
  mailbox): messages queued behind the crash stay queued and the message being
  handled is redelivered first.
"""

from __future__ import annotations

import asyncio
import logging

from penguiflow import Headers, Message, Node, NodePolicy, create


class LedgerCorrupted(BaseException):
    """Not an ordinary error: the node's in-memory state can no longer be trusted."""


crashed = False


async def ledger(message: Message, _ctx: object) -> Message:
    global crashed
    if message.payload == "order-3" and not crashed:
        crashed = True
        print("ledger: corrupted state while handling order-3, crashing")
        raise LedgerCorrupted("ledger state corrupted")
    return message.model_copy(update={"payload": f"{message.payload} booked"})


class ShowSupervision(logging.Handler):
    """Print the kernel's supervision records (an application may configure logging)."""

    def emit(self, record: logging.LogRecord) -> None:
        name = record.getMessage()
        if name == "child_crashed":
            print(f"supervisor: child {record.child_id!r} crashed")
        elif name == "actor_restarted":
            print(f"supervisor: {record.actor!r} restarted (incarnation {record.incarnation})")


async def main() -> None:
    for logger_name in ("penguiflow.actors", "penguiflow.supervision"):
        logger = logging.getLogger(logger_name)
        logger.addHandler(ShowSupervision())
        logger.setLevel(logging.INFO)
    node = Node(ledger, name="ledger", policy=NodePolicy(validate="none"))
    flow = create(node.to())
    flow.run()
    orders = [Message(payload=f"order-{i}", headers=Headers(tenant="shop")) for i in range(1, 6)]
    try:
        async with asyncio.timeout(10):
            for order in orders:
                await flow.emit(order)
            results = [await flow.fetch() for _ in orders]
        restarts = {info.id: info.restarts for info in flow.supervisor.which_children()}
    finally:
        await flow.stop()
    for result in results:
        print(f"result: {result.payload}")
    in_order = [r.trace_id for r in results] == [o.trace_id for o in orders]
    print(f"lost: {len(orders) - len(results)}, in order: {in_order}")
    print(f"restarts: {sum(restarts.values())}")


if __name__ == "__main__":
    asyncio.run(main())
