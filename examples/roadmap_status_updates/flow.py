"""An agent scaffold that announces a roadmap, reports each step, then streams its answer.

Run: ``python -m examples.roadmap_status_updates.flow``

The caller reads one Rookery and sees three kinds of items for the same trace,
in order: ``StatusUpdate`` messages (the roadmap, then each step running/ok),
``StreamChunk`` messages (the answer, token by token) and a final
``FlowResponse``. Status updates are pushed straight to the caller with
``flow._emit_to_rookery`` (the 2.2.5 compat hook the original example used).
"""

from __future__ import annotations

import asyncio
from typing import Literal

from pydantic import BaseModel

from penguiflow import Headers, Message, Node, NodePolicy, StreamChunk, create
from penguiflow.core import Context


class RoadmapStep(BaseModel):
    id: int
    name: str
    description: str


class StatusUpdate(BaseModel):
    status: Literal["thinking", "ok"]
    message: str | None = None
    roadmap_step_list: list[RoadmapStep] | None = None
    roadmap_step_id: int | None = None
    roadmap_step_status: Literal["running", "ok"] | None = None


class FlowResponse(BaseModel):
    answer: str
    steps_completed: int


ROADMAP = [
    RoadmapStep(id=1, name="parse", description="Understand the question"),
    RoadmapStep(id=2, name="search", description="Look up penguin facts"),
    RoadmapStep(id=3, name="answer", description="Write the answer"),
]


async def send_status(ctx: Context, parent: Message, update: StatusUpdate) -> None:
    status = Message(payload=update, headers=parent.headers, trace_id=parent.trace_id)
    await ctx.runtime._emit_to_rookery(status, source=ctx.owner)


async def step(ctx: Context, parent: Message, step_id: int) -> None:
    await send_status(
        ctx,
        parent,
        StatusUpdate(status="thinking", roadmap_step_id=step_id, roadmap_step_status="running"),
    )
    await send_status(
        ctx, parent, StatusUpdate(status="ok", roadmap_step_id=step_id, roadmap_step_status="ok")
    )


async def plan(message: Message, ctx: Context) -> Message:
    await send_status(
        ctx, message, StatusUpdate(status="thinking", message="Planning", roadmap_step_list=ROADMAP)
    )
    await step(ctx, message, 1)
    return message


async def search(message: Message, ctx: Context) -> Message:
    await step(ctx, message, 2)
    return message.model_copy(update={"payload": ["emperors are the largest penguins"]})


async def answer(message: Message, ctx: Context) -> Message:
    await send_status(
        ctx,
        message,
        StatusUpdate(status="thinking", roadmap_step_id=3, roadmap_step_status="running"),
    )
    words = f"Fact: {message.payload[0]}.".split()
    for i, word in enumerate(words):
        await ctx.emit_chunk(parent=message, text=word + " ", done=i == len(words) - 1)
    await send_status(
        ctx, message, StatusUpdate(status="ok", roadmap_step_id=3, roadmap_step_status="ok")
    )
    response = FlowResponse(answer=" ".join(words), steps_completed=len(ROADMAP))
    return message.model_copy(update={"payload": response})


async def main() -> None:
    policy = NodePolicy(validate="none")
    p = Node(plan, name="plan", policy=policy)
    s = Node(search, name="search", policy=policy)
    a = Node(answer, name="answer", policy=policy)
    flow = create(p.to(s), s.to(a), a.to())
    flow.run()
    try:
        await flow.emit(Message(payload="tell me about emperors", headers=Headers(tenant="demo")))
        async with asyncio.timeout(5):
            while True:
                item = await flow.fetch()
                payload = item.payload
                if isinstance(payload, StatusUpdate):
                    if payload.roadmap_step_list:
                        names = [s.name for s in payload.roadmap_step_list]
                        print(f"[roadmap] {payload.message}: {names}")
                    else:
                        print(f"[step {payload.roadmap_step_id}] {payload.roadmap_step_status}")
                elif isinstance(payload, StreamChunk):
                    done = " (done)" if payload.done else ""
                    print(f"[chunk {payload.seq}] {payload.text.strip()}{done}")
                elif isinstance(payload, FlowResponse):
                    print(f"[final] {payload.answer} ({payload.steps_completed} steps)")
                    break
    finally:
        await flow.stop()


if __name__ == "__main__":
    asyncio.run(main())
