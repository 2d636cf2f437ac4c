"""A flow served over MCP with ``penguiflow.tools.mcp.serve``, for the serve tests.

``python mcp_flow_server.py KIND TRANSPORT``: KIND picks the flow (``shout``: text
in, chunks streamed, text out; ``model``: an ``input_model``; ``registry``: the
ingress node's registry model; ``fail``: the node raises). The URL (or "stdio")
is printed on stderr as ``READY <url>`` once listening.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from pydantic import BaseModel

from penguiflow import Message, ModelRegistry, Node, StreamChunk, create
from penguiflow.tools.mcp import serve


class Order(BaseModel):
    item: str
    count: int = 1


class Ordered(BaseModel):
    ordered: list[str]


async def shout(msg: Message, ctx: Any) -> Message:
    for word in msg.payload.split():
        await ctx.emit_chunk(parent=msg, text=word, stream_id="words")
    return msg.model_copy(update={"payload": msg.payload.upper()})


async def order(msg: Message, ctx: Any) -> Message:
    payload = msg.payload
    return msg.model_copy(update={"payload": {"ordered": [payload.item] * payload.count}})


async def fail(msg: Message, ctx: Any) -> Message:
    raise RuntimeError(f"cannot handle {msg.payload!r}")


async def shout_bare(msg: Message, ctx: Any) -> str:
    """Like ``shout``, but chunks and result reach Rookery as bare objects."""
    await ctx.emit(StreamChunk(stream_id="bare", seq=0, text="bare"))
    return str(msg.payload).upper()


def build(kind: str) -> tuple[Any, dict[str, Any]]:
    """The flow for ``kind`` and the keyword arguments ``serve`` needs for it."""
    options: dict[str, Any] = {}
    emit_errors = False
    if kind == "shout":
        node = Node(shout, name="shout")
    elif kind == "bare":
        node = Node(shout_bare, name="bare")
    elif kind == "fail":
        node = Node(fail, name="fail")
        emit_errors = True
    else:
        node = Node(order, name="order")
        if kind == "model":
            options["input_model"] = Order
        else:
            registry = ModelRegistry()
            registry.register("order", Order, Ordered)
            node.policy.validate = "none"
            options["registry"] = registry
    return create(node.to(), emit_errors_to_rookery=emit_errors), options


def main() -> None:
    kind, transport = sys.argv[1], sys.argv[2]
    flow, options = build(kind)

    def ready(url: str) -> None:
        print(f"READY {url}", file=sys.stderr, flush=True)

    asyncio.run(
        serve(flow, name=kind, transport=transport, port=0, on_ready=ready, **options)  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()
