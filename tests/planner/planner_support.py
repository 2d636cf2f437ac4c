"""Shared helpers for the planner tests: a scripted model client and sample tools."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from penguiflow.catalog import NodeSpec, build_catalog, tool
from penguiflow.node import Node
from penguiflow.registry import ModelRegistry

Reply = str | Mapping[str, Any] | BaseException | Callable[[list[dict[str, str]]], str]


@dataclass
class Call:
    """One recorded ``complete`` call."""

    messages: list[dict[str, str]]
    response_format: Mapping[str, Any] | None


@dataclass
class ScriptedClient:
    """A ``JSONLLMClient`` that replays a script: text, dicts (as JSON) or exceptions."""

    script: list[Reply]
    calls: list[Call] = field(default_factory=list)

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        sent = [dict(m) for m in messages]
        self.calls.append(Call(sent, response_format))
        if not self.script:
            raise AssertionError("scripted client ran out of replies")
        reply = self.script.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        if callable(reply):
            return reply(sent)
        if isinstance(reply, Mapping):
            return json.dumps(reply)
        return reply


def call(node: str, thought: str = "call", **args: Any) -> dict[str, Any]:
    """A sequential tool action."""
    return {"thought": thought, "next_node": node, "args": args}


def finish(thought: str = "done", args: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A finishing action."""
    return {"thought": thought, "next_node": None, "args": dict(args) if args else None}


class Query(BaseModel):
    question: str


class Intent(BaseModel):
    intent: str


class Docs(BaseModel):
    documents: list[str]


class Answer(BaseModel):
    answer: str


@tool(desc="Classify the question", tags=["nlp", "nlp"], side_effects="read")
async def triage(args: Query, ctx: Any) -> Intent:
    return Intent(intent=f"intent:{args.question}")


async def retrieve(args: Intent, ctx: Any) -> Docs:
    """Fetch documents for an intent."""
    return Docs(documents=[args.intent])


async def respond(args: Docs, ctx: Any) -> Answer:
    return Answer(answer=" | ".join(args.documents))


def make_catalog(
    *funcs_and_models: tuple[Callable[..., Any], type[BaseModel], type[BaseModel]],
) -> list[NodeSpec]:
    """Build a catalog from ``(func, in_model, out_model)`` triples."""
    registry = ModelRegistry()
    nodes = []
    for func, in_model, out_model in funcs_and_models:
        node = Node(func, name=func.__name__)
        registry.register(node.name, in_model, out_model)
        nodes.append(node)
    return build_catalog(nodes, registry)


def default_catalog() -> list[NodeSpec]:
    """triage -> retrieve -> respond."""
    return make_catalog((triage, Query, Intent), (retrieve, Intent, Docs), (respond, Docs, Answer))


def last_user_json(call_record: Call) -> Any:
    """The JSON body of the last message of a recorded call."""
    return json.loads(call_record.messages[-1]["content"])
