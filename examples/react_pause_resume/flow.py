"""ReactPlanner pause/resume: a tool asks for approval; a new planner resumes from a store.

The pause record is saved through ``save_planner_state`` as JSON, so the second
planner (standing in for a restarted process) resumes the run by token alone.

Run from the repository root: ``python -m examples.react_pause_resume.flow``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from penguiflow import ModelRegistry, Node, tool
from penguiflow.planner import PlannerPause, ReactPlanner


class Refund(BaseModel):
    order_id: str
    amount: float


class RefundResult(BaseModel):
    order_id: str
    status: str


@tool(desc="Refund an order; amounts over 100 need a human's approval", side_effects="write")
async def refund(args: Refund, ctx: Any) -> RefundResult:
    if args.amount > 100 and not ctx.meta.get("approved"):
        # Stops this tool and the run; run() returns a PlannerPause.
        await ctx.pause("approval_required", {"order_id": args.order_id, "amount": args.amount})
    return RefundResult(order_id=args.order_id, status="refunded")


@tool(desc="Record that a refund was approved by a human", side_effects="write")
async def approve_refund(args: Refund, ctx: Any) -> RefundResult:
    return RefundResult(order_id=args.order_id, status="refunded after approval")


class JSONFileLikeStore:
    """Keeps planner state as JSON text, as a database or file would."""

    def __init__(self) -> None:
        self.rows: dict[str, str] = {}

    async def save_planner_state(self, token: str, payload: Mapping[str, Any]) -> None:
        self.rows[token] = json.dumps(payload)

    async def load_planner_state(self, token: str) -> dict[str, Any] | None:
        row = self.rows.get(token)
        return None if row is None else json.loads(row)


class ScriptedLLM:
    """A stand-in model replying with scripted actions (a ``JSONLLMClient``)."""

    def __init__(self, actions: Sequence[Mapping[str, Any]]) -> None:
        self._actions = list(actions)

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        print(f"  model sees: {messages[-1]['content']}")
        return json.dumps(self._actions.pop(0))


def build_planner(store: JSONFileLikeStore, actions: Sequence[Mapping[str, Any]]) -> ReactPlanner:
    registry = ModelRegistry()
    registry.register("refund", Refund, RefundResult)
    registry.register("approve_refund", Refund, RefundResult)
    nodes = [Node(refund, name="refund"), Node(approve_refund, name="approve_refund")]
    return ReactPlanner(
        llm_client=ScriptedLLM(actions), nodes=nodes, registry=registry, state_store=store
    )


async def main() -> None:
    store = JSONFileLikeStore()
    args = {"order_id": "A-17", "amount": 250.0}
    first = build_planner(store, [{"thought": "refund it", "next_node": "refund", "args": args}])
    paused = await first.run("Refund order A-17")
    assert isinstance(paused, PlannerPause)
    print(f"paused: {paused.reason} {paused.payload} token={paused.resume_token[:8]}...")

    # A different planner instance (think: after a restart) resumes from the store.
    second = build_planner(
        store,
        [
            {"thought": "approved; finish the refund", "next_node": "approve_refund", "args": args},
            {"thought": "done", "next_node": None},
        ],
    )
    result = await second.resume(paused.resume_token, user_input="approved by ops")
    print(f"reason: {result.reason}")
    print(f"answer: {result.payload}")


if __name__ == "__main__":
    asyncio.run(main())
