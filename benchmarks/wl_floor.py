"""The raw asyncio floor: workloads (a)-(h) as plain ``asyncio.Queue`` chains and tasks.

This is what a user would write by hand without a framework: one task per stage, one
bounded queue (maxsize 64, PenguiFlow's default) per edge, the same node functions
called as ``fn(item, ctx)``, and pydantic models of the same shape as PenguiFlow's
``Message``, ``Headers`` and ``StreamChunk`` so that building and copying envelopes
costs the same. No per-trace bookkeeping, events, cancellation or supervision: the
floor is the lower bound the runtime's overhead is measured against.

Longer than ~400 lines on purpose: it mirrors ``wl_flow.py`` workload by workload, so
the two are read side by side.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter
from wl_common import (
    CHUNKS_PER_MESSAGE,
    HOPS,
    check,
    check_joined,
    check_streams,
    fresh_import_ms,
    latency_summary,
    now,
    now_ns,
    paired_medians,
    pipeline,
    rss_kib,
)

__all__ = ["WORKLOADS", "describe"]

NodeFn = Callable[[Any, Any], Awaitable[Any]]
MAXSIZE = 64


class Headers(BaseModel):
    tenant: str
    topic: str | None = None
    priority: int = 0


class Message(BaseModel):
    payload: Any
    headers: Headers
    trace_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    ts: float = Field(default_factory=time.time)
    deadline_s: float | None = None
    meta: dict[str, Any] = Field(default_factory=dict)


class StreamChunk(BaseModel):
    stream_id: str
    seq: int
    text: str
    done: bool = False
    meta: dict[str, Any] = Field(default_factory=dict)


HEADERS = Headers(tenant="bench")


def describe() -> dict[str, str]:
    """Return what the floor runs on."""
    return {"module": asyncio.__file__ or "", "version": "asyncio"}


def _message(i: int) -> Message:
    return Message(payload=i, headers=HEADERS)


class Shape:
    """Stage tasks joined by bounded queues, with the emit/fetch/stop surface of a flow."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[None]] = []
        self.ingress: asyncio.Queue[Any] = asyncio.Queue(MAXSIZE)
        self.egress: asyncio.Queue[Any] = asyncio.Queue(MAXSIZE)

    def spawn(self, coro: Awaitable[None]) -> None:
        self.tasks.append(asyncio.ensure_future(coro))

    async def emit(self, item: Any) -> None:
        await self.ingress.put(item)

    async def fetch(self) -> Any:
        return await self.egress.get()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def stage(fn: NodeFn, inbox: asyncio.Queue[Any], outbox: asyncio.Queue[Any]) -> None:
    """Run ``fn`` on each item of ``inbox``, forwarding non-None results to ``outbox``."""
    while True:
        item = await inbox.get()
        out = await fn(item, None)
        if out is not None:
            await outbox.put(out)


def chain(fns: Sequence[NodeFn]) -> Shape:
    """Build ingress -> fns[0] -> ... -> fns[-1] -> egress."""
    shape = Shape()
    queues = [shape.ingress, *(asyncio.Queue(MAXSIZE) for _ in fns[1:]), shape.egress]
    for fn, inbox, outbox in zip(fns, queues, queues[1:]):
        shape.spawn(stage(fn, inbox, outbox))
    return shape


def _counting(name: str, counts: Counter[str]) -> NodeFn:
    async def passthrough(msg: Any, ctx: Any) -> Any:
        counts[name] += 1
        return msg

    return passthrough


def _chain(length: int, counts: Counter[str]) -> Shape:
    return chain([_counting(f"n{i}", counts) for i in range(length)])


async def _with(shape: Shape, body: Callable[[Shape], Awaitable[Any]]) -> Any:
    try:
        return await body(shape)
    finally:
        await shape.stop()


async def latency_chain(n: int) -> dict[str, float]:
    """(a) Sequential emit -> fetch through a 5-stage chain."""
    counts: Counter[str] = Counter()
    warm = max(50, n // 10)
    msgs = [_message(i) for i in range(warm + n)]

    async def body(shape: Shape) -> list[int]:
        clock = now_ns
        samples = []
        for msg in msgs:
            t0 = clock()
            await shape.emit(msg)
            out = await shape.fetch()
            samples.append(clock() - t0)
            check(out is msg, "a: fetched object is not the emitted message")
        return samples[warm:]

    samples = await _with(_chain(HOPS, counts), body)
    check(all(counts[f"n{i}"] == warm + n for i in range(HOPS)), f"a: node counts {counts}")
    return latency_summary(samples, HOPS)


async def pipelined_chain(n: int) -> dict[str, float]:
    """(b) The 5-stage chain kept full by a producer task."""
    counts: Counter[str] = Counter()
    warm = [_message(i) for i in range(max(50, n // 10))]
    msgs = [_message(i) for i in range(n)]

    async def body(shape: Shape) -> float:
        await pipeline(shape, warm)
        outs, secs = await pipeline(shape, msgs)
        check(len(outs) == n and all(o is m for o, m in zip(outs, msgs)), "b: order/identity")
        return secs

    secs = await _with(_chain(HOPS, counts), body)
    total = len(warm) + n
    check(all(counts[f"n{i}"] == total for i in range(HOPS)), f"b: node counts {counts}")
    return {"msgs_per_s": n / secs}


def _fan_out_join() -> Shape:
    shape = Shape()
    work_qs: list[asyncio.Queue[Any]] = [asyncio.Queue(MAXSIZE) for _ in range(4)]
    join_q: asyncio.Queue[Any] = asyncio.Queue(MAXSIZE)
    sink_q: asyncio.Queue[Any] = asyncio.Queue(MAXSIZE)
    buckets: dict[str, list[Any]] = {}

    async def passthrough(msg: Any, ctx: Any) -> Any:
        return msg

    async def source() -> None:
        while True:
            item = await passthrough(await shape.ingress.get(), None)
            for queue in work_qs:
                await queue.put(item)

    def worker(k: int) -> NodeFn:
        async def work(msg: Any, ctx: Any) -> Any:
            return msg.model_copy(update={"payload": (k, msg.payload)})

        return work

    async def join(msg: Any, ctx: Any) -> Any:
        bucket = buckets.setdefault(msg.trace_id, [])
        bucket.append(msg)
        if len(bucket) < 4:
            return None
        del buckets[msg.trace_id]
        return bucket[0].model_copy(update={"payload": [m.payload for m in bucket]})

    shape.spawn(source())
    for k, queue in enumerate(work_qs):
        shape.spawn(stage(worker(k), queue, join_q))
    shape.spawn(stage(join, join_q, sink_q))
    shape.spawn(stage(passthrough, sink_q, shape.egress))
    return shape


async def fan_out_join(n: int) -> dict[str, float]:
    """(c) source -> 4 workers -> join of 4 -> sink, pipelined."""
    warm = [_message(i) for i in range(max(20, n // 10))]
    msgs = [_message(i) for i in range(n)]

    async def body(shape: Shape) -> float:
        outs, _ = await pipeline(shape, warm)
        check_joined(outs, warm)
        outs, secs = await pipeline(shape, msgs)
        check_joined(outs, msgs)
        return secs

    secs = await _with(_fan_out_join(), body)
    return {"traces_per_s": n / secs}


def _streamer(*, relay: bool) -> Shape:
    shape = Shape()
    out: asyncio.Queue[Any] = asyncio.Queue(MAXSIZE) if relay else shape.egress

    async def passthrough(msg: Any, ctx: Any) -> Any:
        return msg

    async def stream() -> None:
        # Builds the same chunk and envelope per chunk as emit_chunk does.
        while True:
            msg = await shape.ingress.get()
            for seq in range(CHUNKS_PER_MESSAGE):
                done = seq == CHUNKS_PER_MESSAGE - 1
                text = "end" if done else "tok"
                chunk = StreamChunk(stream_id=msg.trace_id, seq=seq, text=text, done=done)
                envelope = Message(
                    payload=chunk,
                    headers=msg.headers,
                    trace_id=msg.trace_id,
                    deadline_s=msg.deadline_s,
                    meta=dict(msg.meta),
                )
                await out.put(envelope)

    shape.spawn(stream())
    if relay:
        shape.spawn(stage(passthrough, out, shape.egress))
    return shape


async def streaming(n: int) -> dict[str, float]:
    """(d) One task streams 100 chunk envelopes per message, with and without a relay."""
    msgs = [_message(i) for i in range(max(1, n // CHUNKS_PER_MESSAGE))]

    async def run(shape: Shape, batch: list[Message]) -> float:
        outs, secs = await pipeline(shape, batch, len(batch) * CHUNKS_PER_MESSAGE)
        check_streams(outs, batch)
        return secs

    async def body(shape: Shape) -> float:
        await run(shape, [_message(i) for i in range(2)])
        return await run(shape, msgs)

    rates = {}
    for key, relay in (("chunks_per_s", True), ("direct_chunks_per_s", False)):
        secs = await _with(_streamer(relay=relay), body)
        rates[key] = len(msgs) * CHUNKS_PER_MESSAGE / secs
    return rates


def _retrying(fn: NodeFn, retries: int, backoff: float) -> NodeFn:
    async def call(item: Any, ctx: Any) -> Any:
        for attempt in range(retries + 1):
            try:
                return await fn(item, ctx)
            except Exception:
                if attempt == retries:
                    raise
                await asyncio.sleep(backoff)
        return None

    return call


async def _retry_phase(n: int, *, fail: bool) -> float:
    seen: set[str] = set()
    failures = 0

    async def flaky(msg: Any, ctx: Any) -> Any:
        nonlocal failures
        if msg.trace_id not in seen:
            seen.add(msg.trace_id)
            if fail:
                failures += 1
                raise RuntimeError("transient")
        return msg

    msgs = [_message(i) for i in range(n)]

    async def body(shape: Shape) -> float:
        outs, secs = await pipeline(shape, msgs)
        check(all(o is m for o, m in zip(outs, msgs)), "e: lost or reordered output")
        return secs

    secs = await _with(chain([_retrying(flaky, 1, 0.0)]), body)
    check(failures == (n if fail else 0), f"e: {failures} failures for {n} messages")
    return float(secs)


async def retry_overhead(n: int) -> dict[str, float]:
    """(e) One retry per message against a no-fail control."""
    await _retry_phase(max(20, n // 10), fail=True)
    await _retry_phase(max(20, n // 10), fail=False)
    control, retried = await paired_medians(
        lambda: _retry_phase(n, fail=False), lambda: _retry_phase(n, fail=True)
    )
    return {
        "control_us": control / n * 1e6,
        "retry_us": retried / n * 1e6,
        "overhead_us": (retried - control) / n * 1e6,
    }


class Query(BaseModel):
    id: int
    text: str
    tags: list[str] = []


class Draft(BaseModel):
    id: int
    text: str
    score: float


class Answer(BaseModel):
    id: int
    text: str
    score: float
    ok: bool


def _validating(fn: NodeFn, in_model: type[BaseModel], out_model: type[BaseModel]) -> NodeFn:
    in_adapter: TypeAdapter[Any] = TypeAdapter(in_model)
    out_adapter: TypeAdapter[Any] = TypeAdapter(out_model)

    async def call(item: Any, ctx: Any) -> Any:
        result = await fn(in_adapter.validate_python(item), ctx)
        return None if result is None else out_adapter.validate_python(result)

    return call


async def _validation_phase(n: int, mode: str) -> float:
    async def parse(q: Query, ctx: Any) -> Draft:
        return Draft(id=q.id, text=q.text, score=0.5)

    async def refine(d: Draft, ctx: Any) -> Draft:
        return d

    async def answer(d: Draft, ctx: Any) -> Answer:
        return Answer(id=d.id, text=d.text, score=d.score, ok=True)

    fns: list[NodeFn] = [parse, refine, answer]
    if mode == "both":
        models = [(Query, Draft), (Draft, Draft), (Draft, Answer)]
        fns = [_validating(fn, i, o) for fn, (i, o) in zip(fns, models)]
    queries = [Query(id=i, text="what", tags=["x"]) for i in range(n)]

    async def body(shape: Shape) -> float:
        outs, secs = await pipeline(shape, queries)
        check([o.id for o in outs] == list(range(n)), "f: wrong or reordered answers")
        check(all(isinstance(o, Answer) for o in outs), "f: output is not an Answer")
        return secs

    return float(await _with(chain(fns), body))


async def validation_overhead(n: int) -> dict[str, float]:
    """(f) Explicit TypeAdapter validation around each stage against none."""
    await _validation_phase(max(20, n // 10), "both")
    await _validation_phase(max(20, n // 10), "none")
    plain, validated = await paired_medians(
        lambda: _validation_phase(n, "none"), lambda: _validation_phase(n, "both")
    )
    return {
        "none_us": plain / n * 1e6,
        "both_us": validated / n * 1e6,
        "overhead_us": (validated - plain) / n * 1e6,
    }


async def concurrent_traces(n: int) -> dict[str, float]:
    """(g) ``n`` messages emitted at once (one task each) through a 3-stage chain."""
    counts: Counter[str] = Counter()
    warm = [_message(i) for i in range(100)]
    msgs = [_message(i) for i in range(n)]

    async def body(shape: Shape) -> tuple[float, int]:
        await pipeline(shape, warm)
        gc.collect()
        base = rss_kib()
        peak = base
        start = now()
        emitters = [asyncio.create_task(shape.emit(m)) for m in msgs]
        outs = []
        try:
            for i in range(n):
                outs.append(await shape.fetch())
                if i % 500 == 0:
                    peak = max(peak, rss_kib())
            await asyncio.gather(*emitters)
        finally:
            for task in emitters:
                task.cancel()
        wall = now() - start
        peak = max(peak, rss_kib())
        check({id(o) for o in outs} == {id(m) for m in msgs}, "g: lost or duplicated traces")
        return wall, peak - base

    wall, growth = await _with(_chain(3, counts), body)
    check(all(counts[f"n{i}"] == n + 100 for i in range(3)), f"g: node counts {counts}")
    return {"wall_s": wall, "rss_growth_kib": float(growth)}


async def _idle_memory() -> tuple[float, float]:
    counts: Counter[str] = Counter()
    gc.collect()
    rss0 = rss_kib()
    tracemalloc.start()
    shape = _chain(100, counts)
    try:
        for _ in range(10):
            await asyncio.sleep(0)
        gc.collect()
        traced, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = rss_kib() - rss0
        msg = _message(1)
        await shape.emit(msg)
        check(await shape.fetch() is msg, "h: idle 100-stage chain does not deliver")
    finally:
        tracemalloc.stop()
        await shape.stop()
    return traced / 1024, float(rss)


async def _startup_ms(repeats: int) -> tuple[float, float]:
    """Median ms to build + start a 100-stage chain (one loop turn), and to stop it."""
    counts: Counter[str] = Counter()
    starts: list[float] = []
    stops: list[float] = []
    for _ in range(repeats + 1):  # the first one is discarded, as for the flows
        t0 = now()
        shape = _chain(100, counts)
        await asyncio.sleep(0)  # every stage task gets its first step
        t1 = now()
        await shape.stop()
        stops.append((now() - t1) * 1e3)
        starts.append((t1 - t0) * 1e3)
    return statistics.median(starts[1:]), statistics.median(stops[1:])


async def import_and_idle(repeats: int) -> dict[str, float]:
    """(h) ``import asyncio`` (+ pydantic) in fresh processes; idle 100-stage memory."""
    import_ms, use_ms = fresh_import_ms("import asyncio", "from pydantic import BaseModel", repeats)
    traced_kib, rss = await _idle_memory()
    start_ms, stop_ms = await _startup_ms(3 * repeats)
    return {
        "start_ms": start_ms,
        "stop_ms": stop_ms,
        "import_ms": import_ms,
        "import_use_ms": use_ms,
        "idle_flow_kib": traced_kib,
        "idle_flow_rss_kib": rss,
    }


WORKLOADS: dict[str, Callable[[int], Awaitable[dict[str, float]]]] = {
    "a": latency_chain,
    "b": pipelined_chain,
    "c": fan_out_join,
    "d": streaming,
    "e": retry_overhead,
    "f": validation_overhead,
    "g": concurrent_traces,
    "h": import_and_idle,
}
