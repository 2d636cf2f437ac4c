"""Route a request to a roadmap, stream websocket-ready status frames, return a FlowResponse.

Run: ``python -m examples.status_roadmap_flow.flow``

A ``predicate_router`` sends each query to the ``documents`` or the ``bug``
branch. Each branch has its own roadmap and reports progress as status
updates; the answer is streamed as chunks. The caller turns every Rookery item
into the JSON frame a websocket handler would send: ``chunk_to_ws_json`` for
chunks, ``model_dump_json`` for status updates and the final ``FlowResponse``.
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel

from penguiflow import (
    Headers,
    Message,
    Node,
    NodePolicy,
    StreamChunk,
    chunk_to_ws_json,
    create,
    predicate_router,
)
from penguiflow.core import Context


class StatusUpdate(BaseModel):
    type: Literal["status"] = "status"
    roadmap: str
    step: str
    state: Literal["running", "ok"]


class FlowResponse(BaseModel):
    type: Literal["final"] = "final"
    roadmap: str
    answer: str
    artifacts: dict[str, Any] = {}


ROADMAPS = {
    "documents": ["collect", "summarize"],
    "bug": ["reproduce", "triage"],
}


async def report(
    ctx: Context, parent: Message, roadmap: str, step: str, state: Literal["running", "ok"]
) -> None:
    update = StatusUpdate(roadmap=roadmap, step=step, state=state)
    await ctx.runtime._emit_to_rookery(
        Message(payload=update, headers=parent.headers, trace_id=parent.trace_id),
        source=ctx.owner,
    )


def branch(roadmap: str, answer: str) -> Node:
    async def run(message: Message, ctx: Context) -> Message:
        for step in ROADMAPS[roadmap]:
            await report(ctx, message, roadmap, step, "running")
            await report(ctx, message, roadmap, step, "ok")
        words = answer.split()
        for i, word in enumerate(words):
            await ctx.emit_chunk(parent=message, text=word, done=i == len(words) - 1)
        response = FlowResponse(
            roadmap=roadmap, answer=answer, artifacts={"steps": len(ROADMAPS[roadmap])}
        )
        return message.model_copy(update={"payload": response})

    return Node(run, name=roadmap, policy=NodePolicy(validate="none"))


def route(message: Message) -> str:
    return "bug" if "error" in message.payload.lower() else "documents"


async def serve(flow: Any, query: str) -> list[str]:
    """What a websocket handler would do: emit, then forward frames until the final one."""
    frames: list[str] = []
    await flow.emit(Message(payload=query, headers=Headers(tenant="demo")))
    while True:
        item = await flow.fetch()
        payload = item.payload
        if isinstance(payload, StreamChunk):
            frames.append(chunk_to_ws_json(payload, extra={"type": "chunk"}))
        else:
            frames.append(payload.model_dump_json())
            if isinstance(payload, FlowResponse):
                return frames


async def main() -> None:
    router = predicate_router("router", route)
    documents = branch("documents", "Penguins are flightless birds")
    bug = branch("bug", "Restart the colony")
    flow = create(router.to(documents, bug), documents.to(), bug.to())
    flow.run()
    try:
        async with asyncio.timeout(5):
            for query in ("Summarize the penguin docs", "Error: colony offline"):
                print(f"> {query}")
                for frame in await serve(flow, query):
                    print(f"  ws <- {frame}")
    finally:
        await flow.stop()


if __name__ == "__main__":
    asyncio.run(main())
