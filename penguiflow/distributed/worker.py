"""The ``penguiflow-worker`` console script: host distributed nodes of a flow.

::

    penguiflow-worker --redis redis://127.0.0.1:6379/0 --flow app.flows:build_flow \\
        --node enrich [--node score] [--concurrency 4]

``--flow`` names a zero-argument callable returning the flow (or
``(flow, registry)``), the same one the origin process builds. SIGTERM or
SIGINT stops the worker after the entries in hand are answered.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import socket
import sys
from collections.abc import Sequence

from penguiflow.distributed._host import FlowFactory, NodeHost
from penguiflow.distributed._protocol import Keys
from penguiflow.distributed._redis import connect, redis_errors

__all__ = ["describe_exit", "load_flow_factory", "main", "run_worker"]


def load_flow_factory(spec: str) -> FlowFactory:
    """Import ``package.module:callable`` and return the callable.

    Raises:
        ValueError: the spec is malformed or names nothing.
        TypeError: it names something that is not callable.
    """
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError("flow spec must be in the form 'package.module:callable'")
    module = importlib.import_module(module_name)
    factory = getattr(module, attr, None)
    if factory is None:
        raise ValueError(f"{spec!r} does not resolve to a callable")
    if not callable(factory):
        raise TypeError(f"{spec!r} resolved to {type(factory)!r}, not a callable")
    return factory  # type: ignore[no-any-return]


async def run_worker(
    url: str,
    *,
    flow: str,
    nodes: Sequence[str],
    concurrency: int = 1,
    flow_name: str | None = None,
    prefix: str = "penguiflow",
    claim_idle_ms: int = 30_000,
    block_ms: int = 1000,
    max_deliveries: int = 5,
    prefetch: int = 1,
    worker_id: str | None = None,
    stop: asyncio.Event | None = None,
    stale_consumer_ms: int | None = None,
) -> None:
    """Host ``nodes`` of the flow built by ``flow`` until ``stop`` is set (or a signal).

    .. versionadded:: 3.0
    """
    build = load_flow_factory(flow)
    redis, _ = connect(url, block_ms=block_ms)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    host = NodeHost(
        redis,
        keys=Keys(prefix, flow_name or flow),
        build=build,
        nodes=nodes,
        concurrency=concurrency,
        worker_id=worker_id or f"{socket.gethostname()}-{os.getpid()}",
        claim_idle_ms=claim_idle_ms,
        block_ms=block_ms,
        max_deliveries=max_deliveries,
        prefetch=prefetch,
        stale_consumer_ms=stale_consumer_ms,
    )
    try:
        await host.run(stop)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await redis.aclose()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="penguiflow-worker", description="Host distributed nodes of a PenguiFlow flow."
    )
    parser.add_argument("--redis", required=True, help="redis:// URL")
    parser.add_argument("--flow", required=True, help="package.module:build_flow")
    parser.add_argument("--node", required=True, action="append", help="node to host (repeat)")
    parser.add_argument("--concurrency", type=int, default=1, help="entries at once per node")
    parser.add_argument("--flow-name", default=None, help="defaults to the --flow spec")
    parser.add_argument("--prefix", default="penguiflow", help="Redis key prefix")
    parser.add_argument("--claim-idle-ms", type=int, default=30_000)
    parser.add_argument("--block-ms", type=int, default=1000)
    parser.add_argument("--max-deliveries", type=int, default=5)
    parser.add_argument("--prefetch", type=int, default=1, help="entries read at once per slot")
    parser.add_argument("--worker-id", default=None)
    parser.add_argument(
        "--stale-consumer-ms",
        type=int,
        default=None,
        help="delete other workers' consumers idle this long with nothing pending "
        "(default: twice --claim-idle-ms)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the worker; returns the exit code (1 with ``error: ...`` on failure)."""
    args = _parser().parse_args(argv)
    try:
        asyncio.run(
            run_worker(
                args.redis,
                flow=args.flow,
                nodes=args.node,
                concurrency=args.concurrency,
                flow_name=args.flow_name,
                prefix=args.prefix,
                claim_idle_ms=args.claim_idle_ms,
                block_ms=args.block_ms,
                max_deliveries=args.max_deliveries,
                prefetch=args.prefetch,
                worker_id=args.worker_id,
                stale_consumer_ms=args.stale_consumer_ms,
            )
        )
    except Exception as exc:
        print(f"error: {describe_exit(exc)}", file=sys.stderr)
        return 1
    return 0


def describe_exit(exc: BaseException) -> str:
    """One line saying why the worker stopped: the first real error, not its task group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, redis_errors()):
        return f"redis: {type(exc).__name__}: {text}"
    return text


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    raise SystemExit(main())
