"""The 2.2.5 README quickstart, run verbatim, and the runnable example built from it."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import logging
from typing import Any

import pytest

# The "Quickstart Example" section of the 2.2.5 README, character for character.
QUICKSTART = """
from pydantic import BaseModel
from penguiflow import Headers, Message, ModelRegistry, Node, NodePolicy, create


class TriageIn(BaseModel):
    text: str


class TriageOut(BaseModel):
    text: str
    topic: str


class RetrieveOut(BaseModel):
    topic: str
    docs: list[str]


class PackOut(BaseModel):
    prompt: str


async def triage(msg: TriageIn, ctx) -> TriageOut:
    topic = "metrics" if "metric" in msg.text else "general"
    return TriageOut(text=msg.text, topic=topic)


async def retrieve(msg: TriageOut, ctx) -> RetrieveOut:
    docs = [f"doc_{i}_{msg.topic}" for i in range(2)]
    return RetrieveOut(topic=msg.topic, docs=docs)


async def pack(msg: RetrieveOut, ctx) -> PackOut:
    prompt = f"[{msg.topic}] summarize {len(msg.docs)} docs"
    return PackOut(prompt=prompt)


triage_node = Node(triage, name="triage", policy=NodePolicy(validate="both"))
retrieve_node = Node(retrieve, name="retrieve", policy=NodePolicy(validate="both"))
pack_node = Node(pack, name="pack", policy=NodePolicy(validate="both"))

registry = ModelRegistry()
registry.register("triage", TriageIn, TriageOut)
registry.register("retrieve", TriageOut, RetrieveOut)
registry.register("pack", RetrieveOut, PackOut)

flow = create(
    triage_node.to(retrieve_node),
    retrieve_node.to(pack_node),
)
flow.run(registry=registry)

message = Message(
    payload=TriageIn(text="show marketing metrics"),
    headers=Headers(tenant="acme"),
)

await flow.emit(message)
out = await flow.fetch()
print(out.prompt)  # PackOut(prompt='[metrics] summarize 2 docs')

await flow.stop()
"""


class _FailureHandler(logging.Handler):
    """Collects ``node_failed`` records of ``penguiflow.core`` and signals the first."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "node_failed":
            self.records.append(record)
            self.seen.set()


async def test_verbatim_quickstart_fails_at_triage_as_the_spec_says() -> None:
    """No envelope unwrapping: triage rejects the Message and nothing reaches Rookery."""
    namespace: dict[str, Any] = {}
    code = compile(QUICKSTART, "quickstart", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    handler = _FailureHandler()
    logger = logging.getLogger("penguiflow.core")
    logger.addHandler(handler)
    task = asyncio.ensure_future(eval(code, namespace))
    try:
        async with asyncio.timeout(5):
            await handler.seen.wait()
        assert not task.done()  # parked in `out = await flow.fetch()`
    finally:
        logger.removeHandler(handler)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await namespace["flow"].stop()
    (failure,) = handler.records
    assert failure.node_name == "triage"  # type: ignore[attr-defined]
    assert failure.flow_error["exception_type"] == "ValidationError"  # type: ignore[attr-defined]
    assert "out" not in namespace


async def test_quickstart_example_prints_the_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    from examples.quickstart.flow import PackOut, main

    async with asyncio.timeout(5):
        out = await main()
    assert out == PackOut(prompt="[metrics] summarize 2 docs")
    assert capsys.readouterr().out == "[metrics] summarize 2 docs\n"
