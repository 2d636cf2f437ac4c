"""Workloads (a)-(h) written against the PenguiFlow 2.2.5 public API.

The same code times this project and the published 2.2.5: which ``penguiflow`` it
imports is decided by the interpreter and environment ``runner.py`` was started with.
Only names from the 2.2.5 public API are used (spec/README.md), so any difference in
the numbers comes from the runtimes. Every workload checks its outputs and raises
`wl_common.CheckFailed` on a wrong answer.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import tracemalloc
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel
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

import penguiflow
from penguiflow import Headers, Message, ModelRegistry, Node, NodePolicy, create, join_k

__all__ = ["WORKLOADS", "describe"]

HEADERS = Headers(tenant="bench")


def describe() -> dict[str, str]:
    """Return where ``penguiflow`` was imported from and its version."""
    return {"module": penguiflow.__file__ or "", "version": penguiflow.__version__}


def _policy(**kwargs: Any) -> NodePolicy:
    return NodePolicy(validate="none", **kwargs)


def _message(i: int) -> Message:
    return Message(payload=i, headers=HEADERS)


def _counting(name: str, counts: Counter[str]) -> Node:
    async def passthrough(msg: Any, ctx: Any) -> Any:
        counts[name] += 1
        return msg

    return Node(passthrough, name=name, policy=_policy())


def _chain(length: int, counts: Counter[str]) -> Any:
    nodes = [_counting(f"n{i}", counts) for i in range(length)]
    adjacency = [nodes[i].to(nodes[i + 1]) for i in range(length - 1)]
    return create(*adjacency, nodes[-1].to())


async def _with_flow(flow: Any, body: Callable[[Any], Awaitable[Any]], **run: Any) -> Any:
    flow.run(**run)
    try:
        return await body(flow)
    finally:
        await flow.stop()


async def latency_chain(n: int) -> dict[str, float]:
    """(a) Sequential emit -> fetch through a 5-node chain: p50/p95 per message and hop."""
    counts: Counter[str] = Counter()
    warm = max(50, n // 10)
    msgs = [_message(i) for i in range(warm + n)]

    async def body(flow: Any) -> list[int]:
        clock = now_ns
        samples = []
        for msg in msgs:
            t0 = clock()
            await flow.emit(msg)
            out = await flow.fetch()
            samples.append(clock() - t0)
            check(out is msg, "a: fetched object is not the emitted message")
        return samples[warm:]

    samples = await _with_flow(_chain(HOPS, counts), body)
    check(all(counts[f"n{i}"] == warm + n for i in range(HOPS)), f"a: node counts {counts}")
    return latency_summary(samples, HOPS)


async def pipelined_chain(n: int) -> dict[str, float]:
    """(b) The 5-node chain kept full by a producer task: messages per second."""
    counts: Counter[str] = Counter()
    warm = [_message(i) for i in range(max(50, n // 10))]
    msgs = [_message(i) for i in range(n)]

    async def body(flow: Any) -> float:
        await pipeline(flow, warm)
        outs, secs = await pipeline(flow, msgs)
        check(len(outs) == n and all(o is m for o, m in zip(outs, msgs)), "b: order/identity")
        return secs

    secs = await _with_flow(_chain(HOPS, counts), body)
    total = len(warm) + n
    check(all(counts[f"n{i}"] == total for i in range(HOPS)), f"b: node counts {counts}")
    return {"msgs_per_s": n / secs}


def _fan_out_join_flow() -> Any:
    def worker(k: int) -> Node:
        async def work(msg: Any, ctx: Any) -> Any:
            return msg.model_copy(update={"payload": (k, msg.payload)})

        return Node(work, name=f"w{k}", policy=_policy())

    async def passthrough(msg: Any, ctx: Any) -> Any:
        return msg

    source = Node(passthrough, name="source", policy=_policy())
    sink = Node(passthrough, name="sink", policy=_policy())
    workers = [worker(k) for k in range(4)]
    join = join_k("join", 4)
    return create(source.to(*workers), *(w.to(join) for w in workers), join.to(sink), sink.to())


async def fan_out_join(n: int) -> dict[str, float]:
    """(c) source -> 4 workers -> join_k(4) -> sink, pipelined: traces per second."""
    warm = [_message(i) for i in range(max(20, n // 10))]
    msgs = [_message(i) for i in range(n)]

    async def body(flow: Any) -> float:
        outs, _ = await pipeline(flow, warm)
        check_joined(outs, warm)
        outs, secs = await pipeline(flow, msgs)
        check_joined(outs, msgs)
        return secs

    secs = await _with_flow(_fan_out_join_flow(), body)
    return {"traces_per_s": n / secs}


async def streaming(n: int) -> dict[str, float]:
    """(d) A node streams 100 chunks per message; chunks per second.

    ``chunks_per_s``: the chunks cross one downstream node (``relay``) before Rookery,
    as when an LLM node streams to a formatter. ``direct_chunks_per_s``: the streaming
    node is the egress node and chunks go straight to Rookery.
    """

    async def streamer(msg: Any, ctx: Any) -> None:
        for _ in range(CHUNKS_PER_MESSAGE - 1):
            await ctx.emit_chunk(parent=msg, text="tok")
        await ctx.emit_chunk(parent=msg, text="end", done=True)

    async def relay(msg: Any, ctx: Any) -> Any:
        return msg

    msgs = [_message(i) for i in range(max(1, n // CHUNKS_PER_MESSAGE))]

    async def run(flow: Any, batch: list[Message]) -> float:
        outs, secs = await pipeline(flow, batch, len(batch) * CHUNKS_PER_MESSAGE)
        check_streams(outs, batch)
        return secs

    async def body(flow: Any) -> float:
        await run(flow, [_message(i) for i in range(2)])
        return await run(flow, msgs)

    rates = {}
    for key, with_relay in (("chunks_per_s", True), ("direct_chunks_per_s", False)):
        source = Node(streamer, name="streamer", policy=_policy())
        if with_relay:
            sink = Node(relay, name="relay", policy=_policy())
            flow = create(source.to(sink), sink.to())
        else:
            flow = create(source.to())
        secs = await _with_flow(flow, body)
        rates[key] = len(msgs) * CHUNKS_PER_MESSAGE / secs
    return rates


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

    # backoff_base=0.0 on both frameworks: the retry machinery is timed, not a sleep.
    node = Node(flaky, name="flaky", policy=_policy(max_retries=1, backoff_base=0.0))
    msgs = [_message(i) for i in range(n)]

    async def body(flow: Any) -> float:
        outs, secs = await pipeline(flow, msgs)
        check(all(o is m for o, m in zip(outs, msgs)), "e: lost or reordered output")
        return secs

    secs = await _with_flow(create(node.to()), body)
    check(failures == (n if fail else 0), f"e: {failures} failures for {n} messages")
    return float(secs)


async def retry_overhead(n: int) -> dict[str, float]:
    """(e) One retry per message, pipelined, against a no-fail control: µs per retry."""
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


async def _validation_phase(n: int, mode: str) -> float:
    async def parse(q: Query, ctx: Any) -> Draft:
        return Draft(id=q.id, text=q.text, score=0.5)

    async def refine(d: Draft, ctx: Any) -> Draft:
        return d

    async def answer(d: Draft, ctx: Any) -> Answer:
        return Answer(id=d.id, text=d.text, score=d.score, ok=True)

    policy = NodePolicy(validate=mode)
    a, b, c = (Node(fn, name=fn.__name__, policy=policy) for fn in (parse, refine, answer))
    registry = ModelRegistry()
    registry.register("parse", Query, Draft)
    registry.register("refine", Draft, Draft)
    registry.register("answer", Draft, Answer)
    queries = [Query(id=i, text="what", tags=["x"]) for i in range(n)]

    async def body(flow: Any) -> float:
        outs, secs = await pipeline(flow, queries)
        check([o.id for o in outs] == list(range(n)), "f: wrong or reordered answers")
        check(all(isinstance(o, Answer) for o in outs), "f: output is not an Answer")
        return secs

    return float(await _with_flow(create(a.to(b), b.to(c), c.to()), body, registry=registry))


async def validation_overhead(n: int) -> dict[str, float]:
    """(f) validate="both" with registered pydantic models against validate="none"."""
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
    """(g) ``n`` traces emitted at once (one task each) through a 3-node chain."""
    counts: Counter[str] = Counter()
    warm = [_message(i) for i in range(100)]
    msgs = [_message(i) for i in range(n)]

    async def body(flow: Any) -> tuple[float, int]:
        await pipeline(flow, warm)
        gc.collect()
        base = rss_kib()
        peak = base
        start = now()
        emitters = [asyncio.create_task(flow.emit(m)) for m in msgs]
        outs = []
        try:
            for i in range(n):
                outs.append(await flow.fetch())
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

    wall, growth = await _with_flow(_chain(3, counts), body)
    check(all(counts[f"n{i}"] == n + 100 for i in range(3)), f"g: node counts {counts}")
    return {"wall_s": wall, "rss_growth_kib": float(growth)}


async def _roundtrip(flow: Any) -> None:
    msg = _message(0)
    await flow.emit(msg)
    check(await flow.fetch() is msg, "h: warm-up flow does not deliver")


async def _idle_flow_memory() -> tuple[float, float]:
    counts: Counter[str] = Counter()
    # A first flow pays for lazily imported modules and caches, which are not per flow.
    await _with_flow(_chain(2, counts), _roundtrip)
    gc.collect()
    rss0 = rss_kib()
    tracemalloc.start()
    flow = _chain(100, counts)
    flow.run()
    try:
        for _ in range(10):
            await asyncio.sleep(0)
        gc.collect()
        traced, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss = rss_kib() - rss0
        msg = _message(1)
        await flow.emit(msg)
        check(await flow.fetch() is msg, "h: idle 100-node flow does not deliver")
    finally:
        tracemalloc.stop()
        await flow.stop()
    return traced / 1024, float(rss)


async def _startup_ms(repeats: int) -> tuple[float, float]:
    """Median ms to build + ``run()`` a 100-node chain (one loop turn), and to stop it."""
    counts: Counter[str] = Counter()
    starts: list[float] = []
    stops: list[float] = []
    for _ in range(repeats + 1):  # the first one pays for lazy imports: discarded
        t0 = now()
        flow = _chain(100, counts)
        flow.run()
        await asyncio.sleep(0)  # every worker task gets its first step
        t1 = now()
        await flow.stop()
        stops.append((now() - t1) * 1e3)
        starts.append((t1 - t0) * 1e3)
    return statistics.median(starts[1:]), statistics.median(stops[1:])


async def import_and_idle(repeats: int) -> dict[str, float]:
    """(h) ``import penguiflow`` in fresh processes, an idle 100-node flow's memory, startup."""
    import_ms, use_ms = fresh_import_ms(
        "import penguiflow",
        "from penguiflow import Headers, Message, Node, NodePolicy, create",
        repeats,
    )
    traced_kib, rss = await _idle_flow_memory()
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
