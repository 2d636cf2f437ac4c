"""ReactPlanner, smallest working form: three tools and a scripted model, offline.

Run from the repository root: ``python -m examples.react_minimal.flow``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from penguiflow import ModelRegistry, Node, tool
from penguiflow.planner import ReactPlanner


class Question(BaseModel):
    question: str


class Intent(BaseModel):
    intent: str


class Documents(BaseModel):
    documents: list[str]


class Answer(BaseModel):
    answer: str


@tool(desc="Classify what the user is asking about", tags=["nlp"])
async def triage(args: Question, ctx: Any) -> Intent:
    topic = "pricing" if "cost" in args.question.lower() else "general"
    return Intent(intent=topic)


@tool(desc="Fetch documents for an intent", side_effects="read")
async def retrieve(args: Intent, ctx: Any) -> Documents:
    return Documents(documents=[f"{args.intent}: plans start at 10 EUR per month"])


@tool(desc="Write the final answer from documents")
async def respond(args: Documents, ctx: Any) -> Answer:
    return Answer(answer=" ".join(args.documents))


class ScriptedLLM:
    """A stand-in model: replies with the next scripted action (a ``JSONLLMClient``).

    A real deployment passes ``llm="gpt-4o-mini"`` (LiteLLM) or its own client.
    """

    def __init__(self, actions: Sequence[Mapping[str, Any]]) -> None:
        self._actions = list(actions)

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        last = messages[-1]["content"]
        print(f"  model sees: {last[:70]}")
        return json.dumps(self._actions.pop(0))


def build_planner() -> ReactPlanner:
    registry = ModelRegistry()
    registry.register("triage", Question, Intent)
    registry.register("retrieve", Intent, Documents)
    registry.register("respond", Documents, Answer)
    nodes = [
        Node(triage, name="triage"),
        Node(retrieve, name="retrieve"),
        Node(respond, name="respond"),
    ]
    llm = ScriptedLLM(
        [
            {
                "thought": "classify",
                "next_node": "triage",
                "args": {"question": "What does it cost?"},
            },
            {"thought": "look it up", "next_node": "retrieve", "args": {"intent": "pricing"}},
            {
                "thought": "answer",
                "next_node": "respond",
                "args": {"documents": ["pricing: plans start at 10 EUR per month"]},
            },
            {"thought": "done", "next_node": None},  # no args: the last observation is the answer
        ]
    )
    return ReactPlanner(llm_client=llm, nodes=nodes, registry=registry, max_iters=6)


async def main() -> None:
    planner = build_planner()
    result = await planner.run("What does it cost?")
    print(f"reason: {result.reason}")
    print(f"answer: {result.payload}")
    print(f"steps:  {[step['action']['next_node'] for step in result.metadata['steps']]}")


if __name__ == "__main__":
    asyncio.run(main())
