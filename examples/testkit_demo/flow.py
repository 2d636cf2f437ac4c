"""The FlowTestKit in a few lines: run a flow once, then assert on what happened.

Run: ``python -m examples.testkit_demo.flow``

``run_one`` starts the flow, emits one message, returns the first Rookery item
and stops the flow. Everything the runtime emitted for that trace is recorded,
so ``assert_node_sequence`` and ``get_recorded_events`` can check the path and
the retries. ``simulate_error`` builds a node that fails a set number of times;
``assert_preserves_message_envelope`` unit-tests a single node function.
The same calls work inside pytest tests (see docs/testkit.md).
"""

from __future__ import annotations

import asyncio

from penguiflow import FlowErrorCode, Headers, Message, Node, NodePolicy, create, testkit


async def normalize(message: Message, _ctx: object) -> Message:
    return message.model_copy(update={"payload": message.payload.lower()})


async def shout(message: Message, _ctx: object) -> Message:
    return message.model_copy(update={"payload": message.payload.upper() + "!"})


async def main() -> None:
    flaky = testkit.simulate_error("enrich", FlowErrorCode.NODE_EXCEPTION, fail_times=2)
    retry = NodePolicy(validate="none", max_retries=2, backoff_base=0.001)
    n1 = Node(normalize, name="normalize", policy=NodePolicy(validate="none"))
    n2 = Node(flaky, name="enrich", policy=retry)
    n3 = Node(shout, name="shout", policy=NodePolicy(validate="none"))
    flow = create(n1.to(n2), n2.to(n3), n3.to())

    message = Message(payload="Hello Penguins", headers=Headers(tenant="demo"))
    result = await testkit.run_one(flow, message)
    print(f"run_one result: {result.payload}")

    testkit.assert_node_sequence(message.trace_id, ["normalize", "enrich", "shout"])
    print("node sequence: normalize -> enrich -> shout (retries collapsed)")

    kinds = [e.event_type for e in testkit.get_recorded_events(message.trace_id)]
    print(f"enrich retried {kinds.count('node_retry')} times")
    print(f"simulation: attempts={flaky.simulation.attempts} failures={flaky.simulation.failures}")

    sample = Message(payload="ABC", headers=Headers(tenant="unit"))
    checked = await testkit.assert_preserves_message_envelope(normalize, message=sample)
    print(f"envelope preserved by normalize: payload={checked.payload!r}")
    print("All testkit checks passed")


if __name__ == "__main__":
    asyncio.run(main())
