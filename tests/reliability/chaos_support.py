"""The chaos flow and its driver, shared by the chaos test and the soak script.

The flow, every node faulty under one seeded ``FaultPlan``::

    OpenSea -> ingress -> a ---> join(k=2) -> router -> loop (controller, self-edge)
                      \\-> b -/                      \\-> stream (chunks, then a final)
                                                     \\-> finish

* ``ingress`` faults are permanent when every attempt faults: the trace ends
  with a ``FlowError`` (``emit_errors_to_rookery=True``).
* ``a`` and ``b`` (the fan-out) and ``loop``/``stream`` faults are transient
  (the last attempt always runs), so a fan-out branch never loses its half of
  the join; ``a`` also times out and hangs under its ``timeout_s``.
* ``finish`` faults are permanent: ``FlowError``.
* ``loop`` ends with its own ``FinalAnswer`` or with the hop budget answer.
* ``stream`` emits ``CHUNKS`` chunks then a final answer; its faults strike
  before the first chunk, so retries never repeat a chunk.

Actors are killed while idle, every ``kill_every`` terminal results, and by
``crash`` faults (parked, then killed from outside): the supervisor restarts
them and the in-flight message is redelivered.

Every trace ends with exactly one terminal item at Rookery: a ``Message``
with a ``FinalAnswer`` payload (a result or a budget answer) or a
``FlowError``. ``ChaosOutcome`` counts them per trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from penguiflow import (
    WM,
    FinalAnswer,
    FlowError,
    Headers,
    Message,
    NodePolicy,
    StreamChunk,
    create,
    join_k,
    predicate_router,
)
from penguiflow.core import ROOKERY
from penguiflow.testkit import FakeClock, FaultKind, FaultPlan

CHUNKS = 3
BUDGET_HOPS = 4
NODES = ("ingress", "a", "b", "join", "router", "loop", "stream", "finish")
RETRY = NodePolicy(validate="none", max_retries=2, backoff_base=0.5, max_backoff=2.0)
TIMED = NodePolicy(validate="none", max_retries=2, backoff_base=0.5, timeout_s=1.0)
NO_HANG = frozenset(FaultKind) - {FaultKind.HANG}  # only ``a`` has a timeout to end a hang


@dataclass
class ChaosOutcome:
    """What reached Rookery, per trace, and whether it was sound."""

    results: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    budget: Counter[str] = field(default_factory=Counter)
    chunks: dict[str, list[int]] = field(default_factory=dict)
    finals_before_done: int = 0
    stray: int = 0

    def terminals(self, trace_id: str) -> int:
        return self.results[trace_id] + self.errors[trace_id] + self.budget[trace_id]

    def record(self, item: Any) -> str | None:
        """Classify one Rookery item; return its trace id if it was terminal."""
        if isinstance(item, FlowError):
            assert item.trace_id is not None
            self.errors[item.trace_id] += 1
            return item.trace_id
        if not isinstance(item, Message):
            self.stray += 1
            return None
        payload = item.payload
        trace_id = item.trace_id
        if isinstance(payload, StreamChunk):
            self.chunks.setdefault(trace_id, []).append(payload.seq)
            return None
        if isinstance(payload, FinalAnswer):
            if payload.text == "Hop budget exhausted":
                self.budget[trace_id] += 1
            else:
                self.results[trace_id] += 1
                seqs = self.chunks.get(trace_id)
                if payload.text.startswith("streamed") and (not seqs or len(seqs) != CHUNKS + 1):
                    self.finals_before_done += 1
            return trace_id
        self.stray += 1
        return None


def build_chaos_flow(plan: FaultPlan, clock: FakeClock, *, queue_maxsize: int = 64) -> Any:
    """The flow described in the module docstring, every node under ``plan``."""

    async def ingress(msg: Message, ctx: Any) -> Message:
        return msg

    async def branch_a(msg: Message, ctx: Any) -> Message:
        return msg.model_copy(update={"payload": ("a", msg.payload)})

    async def branch_b(msg: Message, ctx: Any) -> Message:
        return msg.model_copy(update={"payload": ("b", msg.payload)})

    async def loop(msg: Message, ctx: Any) -> Message:
        payload = msg.payload
        if not isinstance(payload, WM):
            number = _number(msg)
            wm = WM(query=str(number), budget_hops=BUDGET_HOPS)
            return msg.model_copy(update={"payload": wm})
        # Traces ending in 1 or 4 (mod 6) finish early; the others hit the hop budget.
        if int(payload.query) % 2 == 1 and payload.hops >= 2:
            return msg.model_copy(update={"payload": FinalAnswer(text=f"looped {payload.hops}")})
        return msg

    async def stream(msg: Message, ctx: Any) -> Message:
        for index in range(CHUNKS):
            await ctx.emit_chunk(parent=msg, text=f"part {index}")
        await ctx.emit_chunk(parent=msg, text="", done=True)
        return msg.model_copy(update={"payload": FinalAnswer(text="streamed")})

    async def finish(msg: Message, ctx: Any) -> Message:
        return msg.model_copy(update={"payload": FinalAnswer(text="finished")})

    def hop_key(msg: Any) -> str:
        payload = msg.payload
        hops = payload.hops if isinstance(payload, WM) else -1
        return f"{msg.trace_id}:{hops}"

    def choose(msg: Message) -> str:
        return ("loop", "stream", "finish")[_number(msg) % 3]

    n_ingress = plan.node(ingress, name="ingress", policy=RETRY, faults=NO_HANG)
    n_a = plan.node(branch_a, name="a", policy=TIMED, transient=True)
    n_b = plan.node(branch_b, name="b", policy=RETRY, transient=True, faults=NO_HANG)
    join = join_k("join", 2)
    router = predicate_router("router", choose)
    n_loop = plan.node(
        loop,
        name="loop",
        policy=RETRY,
        allow_cycle=True,
        key=hop_key,
        transient=True,
        faults=NO_HANG,
    )
    n_stream = plan.node(stream, name="stream", policy=RETRY, transient=True, faults=NO_HANG)
    n_finish = plan.node(finish, name="finish", policy=RETRY, faults=NO_HANG)
    return create(
        n_ingress.to(n_a, n_b),
        n_a.to(join),
        n_b.to(join),
        join.to(router),
        router.to(n_loop, n_stream, n_finish),
        n_loop.to(n_loop),
        n_stream.to(),
        n_finish.to(),
        queue_maxsize=queue_maxsize,
        emit_errors_to_rookery=True,
        clock=clock,
    )


def _number(msg: Message) -> int:
    payload = msg.payload
    while isinstance(payload, tuple | list):
        payload = payload[-1]
    return int(payload)


def make_message(number: int, run: str = "chaos") -> Message:
    return Message(payload=number, headers=Headers(tenant="chaos"), trace_id=f"{run}-{number}")


async def drive_clock(clock: FakeClock) -> None:
    """Fire the fake clock's timers (backoff sleeps, timeouts) as they are armed."""
    while True:
        await clock.wait_for_timers(1)
        clock.advance_to_next()
        await asyncio.sleep(0)  # let the woken sleepers run before the next timer


async def run_traces(
    flow: Any,
    plan: FaultPlan,
    clock: FakeClock,
    numbers: range,
    *,
    run: str = "chaos",
    kill_every: int = 0,
    only_idle: bool = True,
    outcome: ChaosOutcome | None = None,
) -> ChaosOutcome:
    """Feed ``numbers`` as traces, drain Rookery until each has a terminal item.

    Then wait for the flow to go idle and drain what is left, so a duplicate
    terminal would be seen. ``kill_every`` > 0 kills one actor (round robin,
    paced by the plan; only an idle one unless ``only_idle`` is false) every
    that many terminal results.
    """
    outcome = outcome if outcome is not None else ChaosOutcome()
    expected = {f"{run}-{n}" for n in numbers}
    driver = asyncio.create_task(drive_clock(clock))

    async def feed() -> None:
        for number in numbers:
            await flow.emit(make_message(number, run))

    feeder = asyncio.create_task(feed())
    victims = 0
    try:
        remaining = len(expected)
        seen = 0
        while remaining:
            trace_id = outcome.record(await flow.fetch())
            if trace_id is None or trace_id not in expected:
                continue
            if outcome.terminals(trace_id) == 1:
                remaining -= 1
            seen += 1
            if kill_every and seen % kill_every == 0:
                clock.advance(plan.crash_interval_s)
                plan.kill(flow, NODES[victims % len(NODES)], only_idle=only_idle)
                victims += 1
        await feeder
        await flow.wait_idle()
        rookery = flow.context(ROOKERY)
        while True:
            try:
                outcome.record(rookery.fetch_nowait())
            except asyncio.QueueEmpty:
                break
    finally:
        for task in (feeder, driver):
            task.cancel()
        await asyncio.gather(feeder, driver, return_exceptions=True)
    return outcome


def live_messages() -> int:
    """How many ``Message`` objects are alive (after a full collection)."""
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is Message)


def live_objects() -> int:
    gc.collect()
    return len(gc.get_objects())


class CountingHandler(logging.Handler):
    """Counts records by level and keeps none of them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.levels: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.levels[record.levelname] += 1


@contextlib.contextmanager
def counted_runtime_logs() -> Iterator[CountingHandler]:
    """Route ``penguiflow`` records to a counting handler instead of the root logger.

    pytest's log capture keeps every record it sees, and a ``node_error``
    record keeps its traceback, frames and the messages in them: without this
    the memory check would measure pytest, not the runtime.
    """
    logger = logging.getLogger("penguiflow")
    handler = CountingHandler()
    logger.addHandler(handler)
    propagate, logger.propagate = logger.propagate, False
    try:
        yield handler
    finally:
        logger.propagate = propagate
        logger.removeHandler(handler)
