"""Receive a ``FlowError`` from ``flow.fetch()`` when a node gives up.

Run: ``python -m examples.traceable_errors.flow``

With ``emit_errors_to_rookery=True``, a node that exhausts its retries
delivers a ``FlowError`` to Rookery instead of nothing. It carries the trace
id, node name, a stable code (``NODE_EXCEPTION`` / ``NODE_TIMEOUT``), metadata
about the last attempt and the original exception (``unwrap()``).
"""

from __future__ import annotations

import asyncio

from penguiflow import FlowError, Headers, Message, Node, NodePolicy, create


class InventoryUnavailable(Exception):
    pass


async def check_inventory(message: Message, _ctx: object) -> Message:
    raise InventoryUnavailable(f"no stock data for {message.payload!r}")


async def slow_quote(message: Message, _ctx: object) -> Message:
    await asyncio.Event().wait()  # never answers; the policy timeout gives up
    return message


async def first_failure(node: Node) -> FlowError:
    flow = create(node.to(), emit_errors_to_rookery=True)
    flow.run()
    try:
        await flow.emit(Message(payload="emperor plush", headers=Headers(tenant="shop")))
        async with asyncio.timeout(5):
            error = await flow.fetch()
    finally:
        await flow.stop()
    assert isinstance(error, FlowError)
    return error


async def main() -> None:
    inventory = Node(
        check_inventory,
        name="inventory",
        policy=NodePolicy(validate="none", max_retries=1, backoff_base=0.001),
    )
    error = await first_failure(inventory)
    print(f"code: {error.code}")
    print(f"message: {error.message}")
    print(f"node: {error.node_name}, attempt: {error.metadata['attempt']}")
    print(f"original: {type(error.unwrap()).__name__}")
    print(f"payload keys: {sorted(error.to_payload())}")

    quote = Node(slow_quote, name="quote", policy=NodePolicy(validate="none", timeout_s=0.01))
    timeout = await first_failure(quote)
    print(f"timeout: {timeout}")


if __name__ == "__main__":
    asyncio.run(main())
