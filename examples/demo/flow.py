"""PenguiFlow end to end: routing, fan-out/join, streaming, a crash that loses nothing.

Run: ``make demo`` or ``python -m examples.demo.flow [--output-dir demo-output]``

The flow answers two requests:

    intake -> router -> research -> web ------\\
                     |          \\-> archive --> join -> writer -> Rookery
                     \\-> smalltalk ------------------------------> Rookery

* ``router`` (a ``predicate_router``) sends research questions to ``research``
  and everything else to ``smalltalk``;
* ``research`` fans out to ``web`` and ``archive``; ``join`` (``join_k``)
  waits for both answers of the same trace;
* ``archive`` crashes on its first message; the flow's supervisor restarts it
  and the message is redelivered, so nothing is lost;
* ``writer`` and ``smalltalk`` stream their answers chunk by chunk
  (``ctx.emit_chunk``); the caller prints each chunk as it arrives;
* the run is persisted in SQLite and its history printed with
  ``penguiflow-admin history <trace>``;
* a Mermaid diagram of the flow is written to ``<output-dir>/flow.mmd``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from penguiflow import (
    FinalAnswer,
    Headers,
    Message,
    Node,
    NodePolicy,
    PenguiFlow,
    StreamChunk,
    create,
    flow_to_mermaid,
    join_k,
    predicate_router,
    stream_flow,
)
from penguiflow.core import Context

NONE = NodePolicy(validate="none")
FACTS = {
    "web": "emperor penguins breed in the antarctic winter",
    "archive": "males keep the egg warm for about 65 days",
}


class ArchiveCrash(BaseException):
    """A crash, not an error: it escapes NodePolicy and restarts the node's actor."""


_archive_calls = 0


async def intake(message: Message, _ctx: Context) -> Message:
    return message.model_copy(update={"payload": message.payload.strip().lower()})


def route(message: Message) -> str:
    return "research" if message.payload.startswith("research") else "smalltalk"


async def research(message: Message, _ctx: Context) -> Message:
    return message  # the graph fans this out to web and archive


async def web(message: Message, _ctx: Context) -> Message:
    return message.model_copy(update={"payload": ("web", FACTS["web"])})


async def archive(message: Message, _ctx: Context) -> Message:
    global _archive_calls
    _archive_calls += 1
    if _archive_calls == 1:
        print("  [archive] crashed on its first message (the supervisor restarts it)")
        raise ArchiveCrash("index file truncated")
    return message.model_copy(update={"payload": ("archive", FACTS["archive"])})


async def stream_answer(message: Message, ctx: Context, text: str, sources: list[str]) -> Message:
    words = text.split()
    for i, word in enumerate(words):
        await ctx.emit_chunk(parent=message, text=word, done=i == len(words) - 1)
    return message.model_copy(update={"payload": FinalAnswer(text=text, citations=sources)})


async def writer(message: Message, ctx: Context) -> Message:
    found = dict(message.payload)  # [(source, fact), ...] in arrival order
    sources = sorted(found)
    text = "; ".join(found[source] for source in sources).capitalize() + "."
    return await stream_answer(message, ctx, text, sources)


async def smalltalk(message: Message, ctx: Context) -> Message:
    return await stream_answer(message, ctx, "Hello! Ask me to research penguins.", [])


def build_flow(state_store: Any = None) -> PenguiFlow:
    intake_node = Node(intake, name="intake", policy=NONE)
    router = predicate_router("router", route)
    research_node = Node(research, name="research", policy=NONE)
    web_node = Node(web, name="web", policy=NONE)
    archive_node = Node(archive, name="archive", policy=NONE)
    join = join_k("join", 2)
    writer_node = Node(writer, name="writer", policy=NONE)
    smalltalk_node = Node(smalltalk, name="smalltalk", policy=NONE)
    return create(
        intake_node.to(router),
        router.to(research_node, smalltalk_node),
        research_node.to(web_node, archive_node),
        web_node.to(join),
        archive_node.to(join),
        join.to(writer_node),
        writer_node.to(),
        smalltalk_node.to(),
        state_store=state_store,
    )


async def ask(flow: PenguiFlow, text: str) -> Message:
    """Send one request and print its answer chunk by chunk as it streams in."""
    message = Message(payload=text, headers=Headers(tenant="demo"))
    print(f"> {text}")
    started = False
    async for item in stream_flow(flow, message, include_final=True):
        if isinstance(item, StreamChunk):
            # Each chunk is printed the moment it arrives, on one growing line.
            print(item.text if started else f"  {item.text}", end=" ", flush=True)
            started = True
        else:
            print(f"\n  final: {item.text!r} citations={item.citations}")
    return message


def open_state_store(out_dir: Path) -> Any:
    # --- persistence (SQLite): every FlowEvent of the run is saved; see below for the CLI.
    from penguiflow.stores import SQLiteStateStore

    db = out_dir / "demo.sqlite3"
    db.unlink(missing_ok=True)  # one run per file, so the history shown is this run's
    return SQLiteStateStore(db)


async def run_demo(out_dir: Path) -> str:
    store = open_state_store(out_dir)
    flow = build_flow(state_store=store)
    diagram = out_dir / "flow.mmd"
    diagram.write_text(flow_to_mermaid(flow, direction="LR") + "\n", encoding="utf-8")
    flow.run()
    try:
        async with asyncio.timeout(20):
            question = await ask(flow, "Research: emperor penguins")
            await ask(flow, "hi there")
        restarts = sum(child.restarts for child in flow.supervisor.which_children())
    finally:
        await flow.stop()
        await store.close()
    print(f"\nsupervisor restarts: {restarts} (archive), messages lost: 0")
    print(f"mermaid diagram: {diagram}")
    return question.trace_id


def show_history(out_dir: Path, trace_id: str) -> None:
    """Replay the persisted run through the admin CLI, as an operator would."""
    db = out_dir / "demo.sqlite3"
    args = ["history", trace_id, "--state-store", str(db), "--tail", "6", "--table"]
    print(f"\n$ penguiflow-admin {' '.join(args)}")
    done = subprocess.run(
        [sys.executable, "-m", "penguiflow.admin", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    print(done.stdout.rstrip() or done.stderr.rstrip())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="demo-output", type=Path)
    options = parser.parse_args(argv)
    out_dir: Path = options.output_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    trace_id = asyncio.run(run_demo(out_dir))
    show_history(out_dir, trace_id)


if __name__ == "__main__":
    main()
