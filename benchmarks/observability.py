"""What observability costs: hop latency with and without instrumentation, scrape time.

Run from the repository root::

    .venv/bin/python -m benchmarks.observability [--rounds 7] [--messages 2000]

*Hop latency* is measured on a 5-node chain with one message in flight (emit,
fetch, repeat): each message's round trip divided by 5, p50 per round. The
variants run side by side in interleaved rounds: plain, PrometheusCollector,
OpenTelemetry SDK with a no-op exporter behind a SimpleSpanProcessor (``otel``:
span export is paid inline, the worst case), the same behind a
BatchSpanProcessor (``otel-batch``: the usual production setup, export in the
processor's thread) and the SimpleSpanProcessor one with a sampler that drops
every trace (``otel-unsampled``). The report gives the median of the round p50s
and their spread (min..max), and the median and spread of each round's ratio to
plain (rounds are interleaved, so a round's ratio compares like with like).
*Scrape time* is one ``generate_latest`` of a PrometheusCollector on a 100-node
chain that has carried traffic.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from penguiflow import Node, NodePolicy, create
from penguiflow.types import Headers, Message

HOPS = 5


async def step(msg: Any, ctx: Any) -> Any:
    return msg


def chain(length: int) -> Any:
    nodes = [Node(step, name=f"n{i}", policy=NodePolicy(validate="none")) for i in range(length)]
    return create(*(a.to(b) for a, b in zip(nodes, nodes[1:], strict=False)), nodes[-1].to())


#: A variant instruments a flow and returns its undo, which returns how many
#: spans reached the exporter (None: the variant makes no spans).
Undo = Callable[[], int | None]


def plain(flow: Any) -> Undo:
    return lambda: None


def prometheus(flow: Any) -> Undo:
    from prometheus_client import CollectorRegistry

    from penguiflow.metrics import PrometheusCollector

    collector = PrometheusCollector(flow, registry=CollectorRegistry())

    def undo() -> None:
        collector.unregister()

    return undo


def otel(flow: Any, *, sampled: bool = True, batch: bool = False) -> Undo:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        SimpleSpanProcessor,
        SpanExporter,
        SpanExportResult,
    )
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

    from penguiflow.otel import instrument

    class NoOpExporter(SpanExporter):
        exported = 0

        def export(self, spans: Sequence[Any]) -> SpanExportResult:
            self.exported += len(spans)  # counted, so a dropped span shows (run checks)
            return SpanExportResult.SUCCESS

    provider = TracerProvider(sampler=ALWAYS_ON if sampled else ALWAYS_OFF)
    exporter = NoOpExporter()
    if batch:
        # The SDK defaults (512 spans a batch, every 5 s or when 512 are queued) but
        # a queue that holds a whole round: the default 2048 drops spans when the
        # export thread falls behind, and a dropped span would be work not measured.
        processor: Any = BatchSpanProcessor(exporter, max_queue_size=1 << 16)
    else:
        processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    handle = instrument(flow, tracer_provider=provider)

    def undo() -> int:
        handle.uninstrument()
        provider.shutdown()  # joins the batch processor's thread (exporting what is left)
        return exporter.exported

    return undo


def otel_batch(flow: Any) -> Undo:
    return otel(flow, batch=True)


def otel_unsampled(flow: Any) -> Undo:
    return otel(flow, sampled=False)


VARIANTS: dict[str, Callable[[Any], Undo]] = {
    "plain": plain,
    "prometheus": prometheus,
    "otel": otel,
    "otel-batch": otel_batch,
    "otel-unsampled": otel_unsampled,
}


async def hop_p50_us(variant: str, messages: int) -> float:
    """p50 of per-message round trip / HOPS, in microseconds, for one round."""
    flow = chain(HOPS)
    undo = VARIANTS[variant](flow)
    flow.run()
    items = [Message(payload=i, headers=Headers(tenant="bench")) for i in range(messages)]
    samples: list[float] = []
    clock = time.perf_counter
    warm_up = items[:100]  # the same messages again: a trace span and node spans each time
    try:
        for item in warm_up:
            await flow.emit(item)
            await flow.fetch()
        for item in items:
            start = clock()
            await flow.emit(item)
            await flow.fetch()
            samples.append(clock() - start)
    finally:
        await flow.stop()
        exported = undo()
    # Every message: one trace span and one span per node attempt, all exported.
    expected = 0 if variant == "otel-unsampled" else (len(warm_up) + messages) * (HOPS + 1)
    if exported is not None and exported != expected:
        raise RuntimeError(f"{variant}: {exported} spans exported, {expected} expected")
    return statistics.median(samples) / HOPS * 1e6


async def scrape_ms(nodes: int = 100, scrapes: int = 30) -> tuple[float, float]:
    """Median and max of ``scrapes`` scrapes of a ``nodes``-node chain, in ms."""
    from prometheus_client import CollectorRegistry

    from penguiflow.metrics import PrometheusCollector

    flow = chain(nodes)
    collector = PrometheusCollector(flow, registry=CollectorRegistry())
    flow.run()
    try:
        for i in range(20):  # traffic: every node has counters and a histogram
            await flow.emit(Message(payload=i, headers=Headers(tenant="bench")))
            await flow.fetch()
        times = []
        for _ in range(scrapes):
            start = time.perf_counter()
            collector.exposition()
            times.append((time.perf_counter() - start) * 1000)
    finally:
        await flow.stop()
    return statistics.median(times), max(times)


async def run(rounds: int, messages: int, variants: Sequence[str]) -> dict[str, Any]:
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name in variants:  # interleaved: drift hits every variant alike
            results[name].append(await hop_p50_us(name, messages))
    report: dict[str, Any] = {
        name: {
            "p50_us": statistics.median(values),
            "min_us": min(values),
            "max_us": max(values),
        }
        for name, values in results.items()
    }
    if "plain" in results:
        for name, values in results.items():
            ratios = [v / p for v, p in zip(values, results["plain"], strict=True)]
            report[name]["ratio"] = statistics.median(ratios)
            report[name]["ratio_min"] = min(ratios)
            report[name]["ratio_max"] = max(ratios)
    if "prometheus" in variants:
        median, worst = await scrape_ms()
        report["scrape_100_nodes_ms"] = {"median": median, "max": worst}
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    report = asyncio.run(run(args.rounds, args.messages, variants))
    print(f"hop latency, 5-node chain, p50 per hop ({args.rounds} interleaved rounds)")
    for name in variants:
        row = report[name]
        spread = f"(rounds {row['min_us']:.2f}..{row['max_us']:.2f})"
        ratio = ""
        if "ratio" in row:
            ratio = (
                f"  {row['ratio']:.2f}x plain "
                f"(rounds {row['ratio_min']:.2f}..{row['ratio_max']:.2f})"
            )
        print(f"  {name:<15} {row['p50_us']:7.2f} us  {spread}{ratio}")
    if "scrape_100_nodes_ms" in report:
        scrape = report["scrape_100_nodes_ms"]
        print(
            f"prometheus scrape, 100-node flow: median {scrape['median']:.2f} ms, "
            f"max {scrape['max']:.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
