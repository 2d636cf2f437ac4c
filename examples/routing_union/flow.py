"""Route a discriminated union to typed branches with ``union_router``.

Run: ``python -m examples.routing_union.flow``

Tasks arrive as plain dicts (or models). The router validates each one against
``Annotated[SearchTask | ComputeTask, Field(discriminator="kind")]`` and forwards
the validated model to the successor named after its ``kind``. A task with an
unknown kind fails validation; the flow reports it as a ``FlowError``.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from penguiflow import FlowError, Node, NodePolicy, PenguiFlow, create, union_router


class SearchTask(BaseModel):
    kind: Literal["search"]
    query: str


class ComputeTask(BaseModel):
    kind: Literal["compute"]
    numbers: list[int]


Task = Annotated[SearchTask | ComputeTask, Field(discriminator="kind")]


async def search(task: SearchTask, _ctx: object) -> str:
    return f"search results for {task.query!r}"


async def compute(task: ComputeTask, _ctx: object) -> str:
    return f"sum of {task.numbers} = {sum(task.numbers)}"


def build_flow() -> PenguiFlow:
    router = union_router("router", Task)
    # Successor names must equal the discriminator values.
    search_node = Node(search, name="search", policy=NodePolicy(validate="none"))
    compute_node = Node(compute, name="compute", policy=NodePolicy(validate="none"))
    return create(router.to(search_node, compute_node), search_node.to(), compute_node.to())


async def main() -> None:
    flow = build_flow()
    flow.run()
    try:
        tasks: list[Any] = [
            {"kind": "search", "query": "emperor penguins"},
            ComputeTask(kind="compute", numbers=[1, 2, 3]),
        ]
        for task in tasks:
            await flow.emit(task)
            async with asyncio.timeout(5):
                print(await flow.fetch())
    finally:
        await flow.stop()

    # Errors reach the caller only when asked for; they need a trace id, so the
    # bad task travels inside an object that has one.
    flow = create(union_router("router", Task).to(), emit_errors_to_rookery=True)
    flow.run()
    try:
        await flow.emit(BadTask())
        async with asyncio.timeout(5):
            error = await flow.fetch()
        assert isinstance(error, FlowError)
        print(f"rejected: {error.code} ({error.exception_type})")
    finally:
        await flow.stop()


class BadTask:
    """Not a valid union member, but traceable (it has a ``trace_id``)."""

    trace_id = "bad-task"
    kind = "unknown"


if __name__ == "__main__":
    asyncio.run(main())
