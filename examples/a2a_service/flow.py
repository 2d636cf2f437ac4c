"""Serve a flow over A2A on 127.0.0.1, then call it from another flow with RemoteNode.

Run from the repository root::

    python -m examples.a2a_service.flow

The "penguin facts" agent streams an answer word by word and returns a
structured result. The caller flow reaches it through ``RemoteNode`` and the
A2A JSON-RPC client transport: the remote chunks arrive as ordinary stream
chunks in the caller's Rookery, then the result. Everything stays on
127.0.0.1 (an ephemeral port), so the example runs offline.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from penguiflow import Headers, Message, Node, NodePolicy, StreamChunk, create
from penguiflow.remote import RemoteNode
from penguiflow_a2a import A2AAgentCard, A2AServerAdapter, A2ASkill, create_a2a_app
from penguiflow_a2a.client import A2AHttpTransport

FACTS = {
    "emperor": "Emperor penguins are the tallest penguins and breed in the Antarctic winter.",
    "gentoo": "Gentoo penguins are the fastest swimmers among birds.",
}


# -- the served agent ---------------------------------------------------------------------


async def answer(message: Message, ctx: Any) -> dict[str, Any]:
    """Stream the fact word by word, then return it with its source."""
    species = str(message.payload).strip().lower()
    fact = FACTS.get(species, f"No fact about {species!r} yet.")
    words = fact.split(" ")
    for index, word in enumerate(words):
        last = index == len(words) - 1
        await ctx.emit_chunk(parent=message, text=word if last else word + " ", done=last)
    return {"species": species, "fact": fact, "source": "penguin-facts"}


def build_agent() -> A2AServerAdapter:
    """The penguin-facts flow behind an A2A adapter."""
    node = Node(answer, name="answer", policy=NodePolicy(validate="none"))
    card = A2AAgentCard(
        name="Penguin Facts",
        description="Answers with one fact about a penguin species.",
        version="1.0.0",
        tags=["penguins"],
        skills=[A2ASkill(name="facts", description="One fact per species", mode="stream")],
    )
    return A2AServerAdapter(
        create(node.to()),
        agent_card=card,
        agent_url="http://127.0.0.1/",
        default_headers={"tenant": "colony"},
    )


# -- the calling flow ---------------------------------------------------------------------


async def ask(agent_url: str, species: str) -> tuple[list[str], Any]:
    """Run a caller flow whose only node is the remote agent; return (chunks, result)."""
    async with A2AHttpTransport() as transport:
        remote = RemoteNode(
            transport=transport,
            skill="facts",
            agent_url=agent_url,
            name="penguin-facts",
            policy=NodePolicy(validate="none", timeout_s=10),
            streaming=True,
        )
        caller = create(remote.to())
        caller.run()
        try:
            await caller.emit(Message(payload=species, headers=Headers(tenant="visitor")))
            chunks: list[str] = []
            while True:
                item = await caller.fetch()
                payload = getattr(item, "payload", None)
                if isinstance(payload, StreamChunk):
                    chunks.append(payload.text)
                    continue
                return chunks, item
        finally:
            await caller.stop()


async def run_demo() -> dict[str, Any]:
    """Serve the agent on an ephemeral port, call it twice, shut everything down."""
    app = create_a2a_app(build_agent())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    agent_url = f"http://127.0.0.1:{port}/"
    try:
        results = {}
        for species in ("emperor", "gentoo"):
            async with asyncio.timeout(30):
                chunks, result = await ask(agent_url, species)
            print(f"[{species}] streamed {len(chunks)} chunks: {''.join(chunks)}")
            print(f"[{species}] result: {result}")
            results[species] = result
        return results
    finally:
        await runner.cleanup()


def main() -> None:
    asyncio.run(run_demo())


if __name__ == "__main__":
    main()
