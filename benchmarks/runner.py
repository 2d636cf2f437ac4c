"""Run benchmark workloads against one target in this process and print JSON results.

Started by the driver (``python -m benchmarks``) as a script, never imported::

    <python> benchmarks/runner.py --target project --workloads a,b --quick
    <python> benchmarks/runner.py --target project --workloads b --profile /tmp/b.txt

The interpreter and environment decide what ``penguiflow`` is: the working tree
(``PYTHONPATH`` = repository root), PenguiFlow 2.2.5 (the isolated venv's python, no
``PYTHONPATH``), or nothing at all for ``--target floor``. Each workload prints one line
``@@BENCH <json>`` with ``ok``, its metrics, or the traceback of what went wrong.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import time
import traceback

MARK = "@@BENCH "
TARGETS = ("project", "penguiflow225", "floor")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", choices=TARGETS, required=True)
    parser.add_argument("--workloads", default="a,b,c,d,e,f,g,h")
    parser.add_argument("--n", type=int, default=None, help="override N for every workload")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per workload")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall")
    parser.add_argument(
        "--profile",
        default=None,
        help="write a pyinstrument call tree of the workloads to this file (.html or text)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    # Read by wl_common at import time, so set before the workloads are imported.
    os.environ["PENGUIFLOW_BENCH_CLOCK"] = args.clock
    # Same logging setup for every target: a configured application that drops records.
    # Without a handler, logging's last-resort handler would print every node_error
    # traceback of workload (e) to stderr and the terminal would be timed, not the runtime.
    logging.basicConfig(handlers=[logging.NullHandler()], level=logging.WARNING)
    from wl_common import size_for

    if args.target == "floor":
        import wl_floor as module
    else:
        import wl_flow as module
    profiler = None
    if args.profile:
        from pyinstrument import Profiler  # optional: only needed to profile

        profiler = Profiler(interval=0.0002, async_mode="disabled")
        profiler.start()
    failed = 0
    for name in args.workloads.split(","):
        n = args.n if args.n is not None else size_for(name, quick=args.quick)
        record: dict[str, object] = {"workload": name, "target": args.target, "n": n}
        record.update(describe=module.describe())
        start = time.perf_counter()
        try:
            metrics = asyncio.run(asyncio.wait_for(module.WORKLOADS[name](n), args.timeout))
        except Exception:
            failed += 1
            record.update(ok=False, error=traceback.format_exc(limit=8))
        else:
            record.update(ok=True, metrics=metrics)
        record["seconds"] = time.perf_counter() - start
        print(MARK + json.dumps(record), flush=True)
    if profiler is not None:
        profiler.stop()
        html = args.profile.endswith(".html")
        text = (
            profiler.output_html() if html else profiler.output_text(unicode=True, show_all=False)
        )
        with open(args.profile, "w", encoding="utf-8") as fh:
            fh.write(text)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
