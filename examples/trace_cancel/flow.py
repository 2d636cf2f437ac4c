"""Cancel one trace while its playbook is working; other traces keep flowing.

Run: ``python -m examples.trace_cancel.flow``

``flow.cancel(trace_id)`` drops the trace's queued items, cancels its in-flight
node invocations (they see ``asyncio.CancelledError``) and propagates into
subflows started with ``ctx.call_playbook``. The second trace, queued behind
the first, runs to completion.
"""

from __future__ import annotations

import asyncio

from penguiflow import (
    FlowEvent,
    Headers,
    Message,
    ModelRegistry,
    Node,
    NodePolicy,
    PenguiFlow,
    create,
)
from penguiflow.core import Context

research_started = asyncio.Event()
research_cancelled = asyncio.Event()


async def research(message: Message, _ctx: Context) -> Message:
    if message.payload == "slow":
        research_started.set()
        try:
            await asyncio.Event().wait()  # a long call that only cancellation ends
        except asyncio.CancelledError:
            print("research: saw CancelledError, cleaning up")
            research_cancelled.set()
            raise
    return message.model_copy(update={"payload": f"notes on {message.payload}"})


def research_playbook() -> tuple[PenguiFlow, ModelRegistry | None]:
    node = Node(research, name="research", policy=NodePolicy(validate="none"))
    return create(node.to()), None


async def planner(message: Message, ctx: Context) -> Message:
    notes = await ctx.call_playbook(research_playbook, message)
    return message.model_copy(update={"payload": notes})


async def show_cancel_events(event: FlowEvent) -> None:
    if event.event_type.startswith("trace_cancel") or event.event_type == "node_trace_cancelled":
        print(f"event: {event.event_type} node={event.node_name}")


async def main() -> None:
    node = Node(planner, name="planner", policy=NodePolicy(validate="none"))
    flow = create(node.to(), middlewares=[show_cancel_events])
    flow.run()
    slow = Message(payload="slow", headers=Headers(tenant="demo"))
    fast = Message(payload="krill", headers=Headers(tenant="demo"))
    try:
        async with asyncio.timeout(5):
            await flow.emit(slow)
            await flow.emit(fast)
            await research_started.wait()
            print(f"cancel slow trace: {await flow.cancel(slow.trace_id)}")
            await research_cancelled.wait()
            result = await flow.fetch()
    finally:
        await flow.stop()
    print(
        f"other trace finished: {result.payload!r} (same trace: {result.trace_id == fast.trace_id})"
    )


if __name__ == "__main__":
    asyncio.run(main())
