"""Helpers shared by the workload modules: sizes, percentiles, memory probes, checks.

The workload modules (``wl_flow``, ``wl_floor``) and this one are imported by
``runner.py`` as top-level modules from the ``benchmarks/`` directory, never as
``benchmarks.*``: putting the repository root on ``sys.path`` would let the working
tree shadow the PenguiFlow 2.2.5 that the isolated venv is meant to time.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

__all__ = [
    "CHUNKS_PER_MESSAGE",
    "HOPS",
    "SIZES",
    "WORKLOADS",
    "CheckFailed",
    "check",
    "check_joined",
    "check_streams",
    "fresh_import_ms",
    "latency_summary",
    "max_rss_kib",
    "now",
    "now_ns",
    "paired_medians",
    "percentile",
    "pipeline",
    "rss_kib",
    "size_for",
]

# workload -> (full N, quick N); what N counts is stated in benchmarks/README.md.
SIZES: dict[str, tuple[int, int]] = {
    "a": (3000, 200),  # sequential messages through the 5-node chain
    "b": (20000, 1000),  # pipelined messages through the 5-node chain
    "c": (5000, 300),  # traces through source -> 4 workers -> join_k(4) -> sink
    "d": (20000, 1000),  # chunks (100 per message)
    "e": (5000, 300),  # messages, each failing once then succeeding
    "f": (5000, 300),  # messages through a 3-node validated chain
    "g": (10000, 1000),  # concurrent traces through a 3-node chain
    "h": (7, 1),  # fresh-process imports timed (the median is kept)
}
WORKLOADS = tuple(SIZES)

# The clock every timing reads: wall time by default; with PENGUIFLOW_BENCH_CLOCK=cpu
# the process's CPU time, which other processes on a shared machine cannot inflate
# (the workloads are single-threaded and never wait on I/O, so both agree when the
# machine is idle).
CLOCK = os.environ.get("PENGUIFLOW_BENCH_CLOCK", "wall")
if CLOCK == "cpu":
    now, now_ns = time.process_time, time.process_time_ns
else:
    now, now_ns = time.perf_counter, time.perf_counter_ns
HOPS = 5  # nodes in the chain of workloads a and b
CHUNKS_PER_MESSAGE = 100


class CheckFailed(AssertionError):
    """A workload produced a wrong result (a fast wrong answer is a failure)."""


def check(condition: object, what: str) -> None:
    """Raise `CheckFailed` with ``what`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(what)


def size_for(workload: str, *, quick: bool) -> int:
    """Return the default N of ``workload`` for the full or quick mode."""
    full, small = SIZES[workload]
    return small if quick else full


def percentile(values: Sequence[float], q: float) -> float:
    """Return the nearest-rank ``q`` percentile (0 < q <= 100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats
    return float(ordered[int(rank) - 1])


def latency_summary(samples_ns: Sequence[int], hops: int) -> dict[str, float]:
    """Return p50/p95 per message and per hop, in microseconds."""
    p50 = percentile(samples_ns, 50) / 1000
    p95 = percentile(samples_ns, 95) / 1000
    return {
        "p50_us": p50,
        "p95_us": p95,
        "p50_hop_us": p50 / hops,
        "p95_hop_us": p95 / hops,
    }


_PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def rss_kib() -> int:
    """Return the current resident set size of this process in KiB (Linux)."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        return int(fh.read().split()[1]) * _PAGE_KIB


def max_rss_kib() -> int:
    """Return this process's peak resident set size in KiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


_IMPORT_PROBE = """
import time
_t0 = time.perf_counter()
{first}
_t1 = time.perf_counter()
{second}
_t2 = time.perf_counter()
print((_t1 - _t0) * 1e3, (_t2 - _t0) * 1e3)
"""


def fresh_import_ms(first: str, second: str, repeats: int) -> tuple[float, float]:
    """Time two import statements in fresh interpreters; return median ms of each.

    The child is this interpreter with this environment, so it resolves the same
    ``penguiflow`` as the runner. ``-c`` puts the working directory on ``sys.path``;
    the driver starts runners in a neutral directory. One discarded run first makes
    sure bytecode caches exist, as they would for an installed package.
    """
    code = _IMPORT_PROBE.format(first=first, second=second)
    firsts: list[float] = []
    seconds: list[float] = []
    for i in range(repeats + 1):
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.split()
        if i:
            firsts.append(float(out[0]))
            seconds.append(float(out[1]))
    return statistics.median(firsts), statistics.median(seconds)


async def pipeline(
    flow: Any, items: Sequence[Any], outputs: int | None = None
) -> tuple[list[Any], float]:
    """Emit ``items`` from a producer task while fetching outputs; return them and seconds.

    ``flow`` is anything with awaitable ``emit(item)`` and ``fetch()``: a PenguiFlow or
    a floor shape. ``outputs`` defaults to one per item.
    """

    async def produce() -> None:
        for item in items:
            await flow.emit(item)

    count = len(items) if outputs is None else outputs
    start = now()
    producer = asyncio.create_task(produce())
    try:
        outs = [await flow.fetch() for _ in range(count)]
        await producer
    finally:
        producer.cancel()
    return outs, now() - start


def check_joined(outs: Sequence[Any], msgs: Sequence[Any]) -> None:
    """Check that each message came back once, joined from its 4 workers' results."""
    by_trace = {o.trace_id: o.payload for o in outs}
    check(len(by_trace) == len(msgs), "c: traces lost or duplicated")
    for msg in msgs:
        got = by_trace.get(msg.trace_id)
        if sorted(got or []) != [(k, msg.payload) for k in range(4)]:
            raise CheckFailed(f"c: bad join {got!r} for payload {msg.payload!r}")


def check_streams(outs: Sequence[Any], msgs: Sequence[Any]) -> None:
    """Check every message's stream: seq 0..99 in order, ``done`` only on the last."""
    seqs: dict[str, list[int]] = {}
    for out in outs:
        chunk = out.payload
        seqs.setdefault(chunk.stream_id, []).append(chunk.seq)
        if chunk.done != (chunk.seq == CHUNKS_PER_MESSAGE - 1):
            raise CheckFailed(f"d: done flag at {chunk!r}")
    expected = list(range(CHUNKS_PER_MESSAGE))
    check(len(seqs) == len(msgs), "d: streams lost")
    check(all(seqs.get(m.trace_id) == expected for m in msgs), "d: seq gaps or reordering")


async def paired_medians(
    control: Callable[[], Awaitable[float]],
    treatment: Callable[[], Awaitable[float]],
    reps: int = 3,
) -> tuple[float, float]:
    """Run control and treatment alternately ``reps`` times; return each one's median.

    Used where the reported number is a difference of two timings (retry and
    validation overhead), which drift in machine load would otherwise swamp.
    """
    controls: list[float] = []
    treatments: list[float] = []
    for _ in range(reps):
        controls.append(await control())
        treatments.append(await treatment())
    return statistics.median(controls), statistics.median(treatments)
