"""Fan a message out to three workers and gather their answers with ``join_k``.

Run: ``python -m examples.fanout_join.flow``

``fan`` forwards each query to three workers. ``join_k("join", 3)`` collects the
three results of the same ``trace_id`` and emits one ``Message`` whose payload
is the list of partial answers (in arrival order), with the envelope of the
first arrival. Two queries run at the same time; their groups never mix.
"""

from __future__ import annotations

import asyncio

from penguiflow import Headers, Message, Node, NodePolicy, PenguiFlow, create, join_k

NO_VALIDATION = NodePolicy(validate="none")


async def fan(message: Message, _ctx: object) -> Message:
    return message  # the same object goes to every successor


def make_worker(source: str) -> Node:
    async def worker(message: Message, _ctx: object) -> Message:
        return message.model_copy(update={"payload": f"{source}: {message.payload}"})

    return Node(worker, name=source, policy=NO_VALIDATION)


async def summarize(message: Message, _ctx: object) -> Message:
    parts = sorted(message.payload)  # arrival order varies between runs
    return message.model_copy(update={"payload": " | ".join(parts)})


def build_flow() -> PenguiFlow:
    fan_node = Node(fan, name="fan", policy=NO_VALIDATION)
    workers = [make_worker(name) for name in ("docs", "web", "sql")]
    join = join_k("join", 3)
    summarize_node = Node(summarize, name="summarize", policy=NO_VALIDATION)
    return create(
        fan_node.to(*workers),
        *(worker.to(join) for worker in workers),
        join.to(summarize_node),
        summarize_node.to(),
    )


async def main() -> None:
    flow = build_flow()
    flow.run()
    try:
        queries = ["penguin diet", "colony size"]
        messages = [Message(payload=q, headers=Headers(tenant="demo")) for q in queries]
        for message in messages:
            await flow.emit(message)
        results: dict[str, str] = {}
        async with asyncio.timeout(5):
            for _ in messages:
                result: Message = await flow.fetch()
                results[result.trace_id] = result.payload
        for message in messages:
            print(results[message.trace_id])
    finally:
        await flow.stop()


if __name__ == "__main__":
    asyncio.run(main())
