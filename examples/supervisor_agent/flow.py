"""A supervisor restarts a crashing actor without losing the messages queued behind it.

Run from the repository root: ``python -m examples.supervisor_agent.flow``

The "agent" is a long-running program that owns a supervision tree. Its
``fetcher`` actor crashes (an exception escapes ``receive``) on the third job
while four more jobs wait in its mailbox. The supervisor restarts it after a
short backoff: the mailbox belongs to the address, not the incarnation, so the
queued jobs are still there, and the job in flight is redelivered first. The
library only emits structured log records; this example (an application) decides
how to render them, with structlog's console renderer.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

import structlog

from penguiflow.actors import Actor, ActorContext
from penguiflow.supervision import ActorSystem, RestartBackoff

__all__ = ["main"]


class Fetcher(Actor):
    """Fetches a document per job; its cache is the state a crash throws away."""

    attempts: dict[str, int] = {}  # noqa: RUF012 - shared across incarnations on purpose
    # A reset connection is worth a second try: opt into redelivery of the message
    # that crashed us (the default, 1, drops it to dead letters on the first crash).
    poison_limit = 2

    def __init__(self, results: list[str], done: asyncio.Event, total: int) -> None:
        self.cache: dict[str, str] = {}
        self.results = results
        self.done = done
        self.total = total

    async def on_start(self, ctx: ActorContext) -> None:
        queued = ctx.self_ref.mailbox.depth()
        ctx.log.info("fetcher_ready", incarnation=ctx.incarnation, queued=queued)

    async def receive(self, message: Any, ctx: ActorContext) -> str:
        attempt = Fetcher.attempts[message] = Fetcher.attempts.get(message, 0) + 1
        if message == "job-3" and attempt == 1:
            raise ConnectionResetError("upstream reset the connection")  # a crash
        self.cache[message] = f"document for {message}"
        self.results.append(f"{message} (incarnation {ctx.incarnation}, attempt {attempt})")
        if len(self.results) == self.total:
            self.done.set()
        return self.cache[message]


def configure_logging() -> None:
    """Render PenguiFlow's stdlib records readably (an application's choice)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.stdlib.ExtraAdder(),  # our key-value pairs ride in `extra`
                structlog.stdlib.add_log_level,
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _one_line_errors,
                structlog.dev.ConsoleRenderer(colors=False, pad_event_to=22),
            ],
        )
    )
    logger = logging.getLogger("penguiflow")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _one_line_errors(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Show a crash as one line instead of a traceback (tracebacks stay in production)."""
    exc_info = event_dict.pop("exc_info", None)
    if isinstance(exc_info, tuple) and exc_info[1] is not None:
        event_dict["error"] = repr(exc_info[1])
    return event_dict


async def main() -> list[str]:
    """Run the agent; return the processed jobs in order."""
    jobs = [f"job-{i}" for i in range(1, 8)]
    results: list[str] = []
    done = asyncio.Event()
    async with ActorSystem("agent") as system:
        fetcher = system.spawn(
            lambda: Fetcher(results, done, len(jobs)),
            name="fetcher",
            backoff=RestartBackoff(min_s=0.05, max_s=1.0, jitter=0.0),
        )
        for job in jobs:
            await fetcher.tell(job)  # all queued before the crash happens
        async with asyncio.timeout(10):
            await done.wait()
        children = system.root.which_children()
        print("\nchildren:", children)
    lost = len(jobs) - len(results)
    restarts = children[0].restarts
    print(f"\njobs: {len(jobs)}, processed: {len(results)}, lost: {lost}, restarts: {restarts}")
    return results


if __name__ == "__main__":
    configure_logging()
    processed = asyncio.run(main())
    print("in order:")
    for line in processed:
        print("  ", line)
