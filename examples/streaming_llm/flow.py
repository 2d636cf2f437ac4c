"""Stream tokens from a mock LLM through a flow and render them as SSE frames.

Run: ``python -m examples.streaming_llm.flow``

The ``llm`` node feeds a fake token stream into the flow with
``emit_stream_events``; every token becomes a ``StreamChunk`` (numbered 0, 1,
2, ... per stream) inside a ``Message``. The ``sse_sink`` node turns each chunk
into a Server-Sent Events frame and passes the chunk on; the caller reads the
stream with ``stream_flow`` as it arrives, then gets the final answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from penguiflow import (
    Headers,
    Message,
    Node,
    NodePolicy,
    StreamChunk,
    chunk_to_ws_json,
    create,
    emit_stream_events,
    format_sse_event,
    stream_flow,
)

NO_VALIDATION = NodePolicy(validate="none")
SSE_FRAMES: list[str] = []


async def mock_llm(prompt: str) -> AsyncIterator[dict[str, Any]]:
    """A provider-style event stream: text deltas, then a stop event."""
    for word in f"Penguins answer: {prompt} is fine.".split():
        await asyncio.sleep(0)
        yield {"delta": word + " ", "finish_reason": None}
    yield {"delta": "", "finish_reason": "stop"}


def adapt(event: dict[str, Any]) -> tuple[str, bool, dict[str, Any]]:
    done = event["finish_reason"] is not None
    return event["delta"], done, {"finish_reason": event["finish_reason"]} if done else {}


async def llm(message: Message, ctx: Any) -> Message:
    await emit_stream_events(mock_llm(message.payload), ctx, message, adapter=adapt)
    return message.model_copy(update={"payload": {"status": "complete"}})


async def sse_sink(message: Message, _ctx: object) -> Message:
    if isinstance(message.payload, StreamChunk):
        SSE_FRAMES.append(format_sse_event(message.payload))
    return message  # chunks and the final message continue to Rookery, in order


async def main() -> None:
    llm_node = Node(llm, name="llm", policy=NO_VALIDATION)
    sink_node = Node(sse_sink, name="sse_sink", policy=NO_VALIDATION)
    flow = create(llm_node.to(sink_node), sink_node.to(), queue_maxsize=2)
    flow.run()
    try:
        question = Message(payload="is the ice thick", headers=Headers(tenant="demo"))
        async with asyncio.timeout(5):
            async for item in stream_flow(flow, question, include_final=True):
                if isinstance(item, StreamChunk):
                    print(f"chunk {item.seq}: {item.text!r}")
                    if item.done:
                        print("websocket frame:", chunk_to_ws_json(item))
                else:
                    print("final:", item)
    finally:
        await flow.stop()
    print("first SSE frame:")
    print(SSE_FRAMES[0], end="")


if __name__ == "__main__":
    asyncio.run(main())
