"""``penguiflow-admin``: show or replay the stored history of a trace; list journaled traces.

Imported only by the console script (and ``python -m penguiflow.admin``). The
store comes from ``--state-store``: a ``package.module:callable`` factory, or,
as a convenience, the path of a SQLite file written by
``penguiflow.stores.SQLiteStateStore``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import importlib
import inspect
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from penguiflow.state import StateStore, StoredEvent

__all__ = ["load_state_store", "render_events", "main"]  # noqa: RUF022 -- spec order

_SPEC_ERROR = "state store spec must be in the form 'package.module:callable'"
_SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
# Keys every stored payload carries; the table view shows the others as details.
_BASE_KEYS = frozenset(
    {
        "ts", "event", "node_name", "node_id", "trace_id", "latency_ms", "q_depth_in",
        "q_depth_out", "q_depth_total", "outgoing", "queue_maxsize", "attempt",
        "trace_inflight", "trace_cancelled", "trace_pending",
    }
)  # fmt: skip

_DESCRIPTION = """\
Inspect what a PenguiFlow run stored: every FlowEvent of one trace, in order,
or the traces a durable flow's journal still holds (unfinished, parked).

A flow stores its events when it is created with a state store, e.g.
    PenguiFlow(..., state_store=SQLiteStateStore("runs.db"))
and this tool reads them back by trace id (Message.trace_id).
"""

_EPILOG = """\
examples:
  penguiflow-admin history 3f2a... --state-store ./demo-output/runs.db
  penguiflow-admin history 3f2a... --state-store ./runs.db --tail 5 --table
  penguiflow-admin history 3f2a... --state-store myapp.stores:make_store --json
  penguiflow-admin replay 3f2a... --state-store ./runs.db --delay 0.2
  penguiflow-admin traces --state-store ./runs.db --parked
  penguiflow-admin inspect --state-store ./runs.db --port 8765

--state-store takes a path to a SQLite file (.db/.sqlite/.sqlite3 or any existing
file) or a factory 'package.module:callable' that returns a StateStore (it is called
with no arguments; it may be async). Exit status: 0 on success (an unknown trace
prints nothing), 1 on any error (message on stderr), 2 on bad arguments.
"""


async def load_state_store(spec: str) -> StateStore:
    """Build a state store from a ``package.module:callable`` factory spec.

    Raises:
        ValueError: the spec is malformed or the attribute does not exist.
        ImportError: the module cannot be imported.
        TypeError: the attribute is not callable, or what it returns lacks
            ``save_event``/``load_history``/``save_remote_binding``.
    """
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ValueError(_SPEC_ERROR)
    module = importlib.import_module(module_name)
    try:
        factory = getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"{spec!r} does not resolve to a callable") from None
    if not callable(factory):
        raise TypeError(f"{spec!r} resolved to {type(factory)!r}, not a callable")
    store = factory()
    if inspect.isawaitable(store):
        store = await store
    if not all(
        hasattr(store, name) for name in ("save_event", "load_history", "save_remote_binding")
    ):
        raise TypeError(
            "StateStore factories must implement save_event/load_history/save_remote_binding"
        )
    return store  # type: ignore[no-any-return]


def _trim(events: Iterable[StoredEvent], tail: int | None) -> list[StoredEvent]:
    items = list(events)
    if tail is None:
        return items
    return items[-tail:] if tail > 0 else []


def _full_payload(event: StoredEvent) -> dict[str, Any]:
    payload = dict(event.payload)
    # Fill only what the payload lacks: a payload's own values win.
    payload.setdefault("event", event.kind)
    payload.setdefault("trace_id", event.trace_id)
    payload.setdefault("node_name", event.node_name)
    payload.setdefault("node_id", event.node_id)
    payload.setdefault("ts", event.ts)
    return payload


def render_events(events: Iterable[StoredEvent], *, tail: int | None = None) -> list[str]:
    """Render stored events as JSON lines (sorted keys), optionally the last ``tail`` only.

    ``tail=None`` keeps all events and ``tail <= 0`` none.
    """
    return [
        json.dumps(_full_payload(event), sort_keys=True, default=str)
        for event in _trim(events, tail)
    ]


def _render_table(events: Sequence[StoredEvent]) -> list[str]:
    rows = [("time (UTC)", "event", "node", "attempt", "latency_ms", "details")]
    for event in events:
        payload = _full_payload(event)
        try:
            when = dt.datetime.fromtimestamp(float(payload["ts"]), dt.UTC)
            stamp = when.strftime("%H:%M:%S.%f")[:-3]
        except (TypeError, ValueError, OverflowError):
            stamp = str(payload["ts"])
        latency = payload.get("latency_ms")
        details = " ".join(
            f"{key}={json.dumps(value, default=str)}"
            for key, value in sorted(payload.items())
            if key not in _BASE_KEYS
        )
        rows.append(
            (
                stamp,
                str(payload["event"]),
                str(payload["node_name"] or payload["node_id"] or "-"),
                str(payload.get("attempt", "")),
                "" if latency is None else f"{float(latency):.1f}",
                details,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)), row[5]]
        ).rstrip()
        for row in rows
    ]


def _looks_like_sqlite_path(value: str) -> bool:
    return os.path.isfile(value) or (":" not in value and value.endswith(_SQLITE_SUFFIXES))


async def _open_store(value: str) -> tuple[StateStore, bool]:
    """Return the store and whether this command owns it (and must close it)."""
    if _looks_like_sqlite_path(value):
        from penguiflow.stores.sqlite import SQLiteStateStore

        return SQLiteStateStore(value, create=False), True
    return await load_state_store(value), False


async def _load(args: argparse.Namespace) -> list[StoredEvent]:
    store, owned = await _open_store(args.state_store)
    try:
        return _trim(await store.load_history(args.trace_id), args.tail)
    finally:
        if owned:
            await store.close()  # type: ignore[attr-defined]


def _note_empty(trace_id: str) -> None:
    # Only people see this: scripts (stderr not a terminal) get the spec's silence.
    if sys.stderr.isatty():
        print(f"# trace {trace_id} has no stored events", file=sys.stderr)


async def _history(args: argparse.Namespace) -> None:
    events = await _load(args)
    if args.json:
        document = {"trace_id": args.trace_id, "events": [_full_payload(e) for e in events]}
        print(json.dumps(document, sort_keys=True, default=str))
        return
    if not events:
        _note_empty(args.trace_id)
        return
    for line in _render_table(events) if args.table else render_events(events):
        print(line)


async def _replay(args: argparse.Namespace) -> None:
    events = await _load(args)
    if not events:
        print(f"# trace {args.trace_id} has no stored events")
        return
    print(f"# replay trace={args.trace_id} events={len(events)}", flush=True)
    lines = _render_table(events)[1:] if args.table else render_events(events)
    for line in lines:
        print(line, flush=True)
        if args.delay > 0:
            await asyncio.sleep(args.delay)


_TRACE_COLUMNS = ("trace_id", "status", "entries", "undelivered", "keys")


async def _traces(args: argparse.Namespace) -> None:
    from penguiflow.journal import journal_of

    store, owned = await _open_store(args.state_store)
    try:
        journal = journal_of(store)
        records = await journal.traces(include_finished=args.all)
    finally:
        if owned:
            await store.close()  # type: ignore[attr-defined]
    if args.parked:
        records = [r for r in records if r.status == "parked"]
    if args.json:
        rows = [
            {
                "trace_id": r.trace_id,
                "status": r.status,
                "entries": r.entries,
                "undelivered": r.undelivered,
                "idempotency_keys": list(r.idempotency_keys),
            }
            for r in records
        ]
        print(json.dumps({"traces": rows}, sort_keys=True))
        return
    if not records:
        if sys.stderr.isatty():
            print("# no unfinished traces", file=sys.stderr)
        return
    table = [_TRACE_COLUMNS] + [
        (r.trace_id, r.status, str(r.entries), str(r.undelivered), ",".join(r.idempotency_keys))
        for r in records
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(_TRACE_COLUMNS))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="penguiflow-admin",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # The usage line is the 2.2.5 contract (spec/distribution.md), so it names only
    # the 2.2.5 commands; the 3.0 ones (traces, inspect) are listed below it.
    commands = parser.add_subparsers(dest="command", required=True, metavar="{history,replay}")
    history = commands.add_parser(
        "history",
        help="print the stored events of a trace, one JSON object per line",
        description="Print the stored events of TRACE_ID in stored order, one JSON "
        "object per line (keys sorted).",
    )
    replay = commands.add_parser(
        "replay",
        help="print a trace's events with a header, optionally paced by --delay",
        description="Print a '# replay' header and the stored events of TRACE_ID, "
        "pausing --delay seconds after each one.",
    )
    for command in (history, replay):
        command.add_argument("trace_id", help="the trace to show (Message.trace_id)")
        command.add_argument(
            "--state-store",
            required=True,
            metavar="MODULE:CALLABLE",
            help="where the events are: a SQLite file path, or a factory "
            "'package.module:callable' returning a StateStore",
        )
        command.add_argument(
            "--tail", type=int, default=None, metavar="N", help="only the last N events"
        )
    history_format = history.add_mutually_exclusive_group()
    history_format.add_argument(
        "--json",
        action="store_true",
        help="one JSON document {trace_id, events: [...]} for programs",
    )
    history_format.add_argument("--table", action="store_true", help="an aligned table for people")
    replay.add_argument(
        "--delay", type=float, default=0.0, metavar="SECONDS", help="pause after each event"
    )
    replay.add_argument("--table", action="store_true", help="table rows instead of JSON")
    traces = commands.add_parser(
        "traces",
        help="list the traces a durable flow's journal still holds",
        description="List the journaled traces that are not settled (running, parked, "
        "cancelled or with undelivered results), oldest first, as a table (trace_id, "
        "status, entries, undelivered, keys). The store must keep a journal, as "
        "SQLiteStateStore does; opening an older SQLite file upgrades its schema.",
    )
    traces.add_argument(
        "--state-store",
        required=True,
        metavar="MODULE:CALLABLE",
        help="a SQLite file path, or a factory 'package.module:callable' returning a "
        "store with a journal",
    )
    traces.add_argument(
        "--parked", action="store_true", help="only traces waiting for a resume value"
    )
    traces.add_argument("--all", action="store_true", help="settled (finished) traces too")
    traces.add_argument(
        "--json",
        action="store_true",
        help="one JSON document {traces: [...]} for programs",
    )
    inspect_cmd = commands.add_parser(
        "inspect",
        help="serve the inspector web page over a store's history (read-only)",
        description="Serve the inspector page (recent traces, each trace's timeline, "
        "and the parked traces of a store with a journal) over the state store's history "
        "until interrupted. Read-only: no cancel, no resume. Needs aiohttp.",
    )
    inspect_cmd.add_argument(
        "--state-store",
        required=True,
        metavar="MODULE:CALLABLE",
        help="a SQLite file path, or a factory 'package.module:callable'",
    )
    inspect_cmd.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine)"
    )
    inspect_cmd.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    return parser


async def _inspect(
    args: argparse.Namespace,
    stop: asyncio.Event | None = None,
    started: asyncio.Future[str] | None = None,
) -> None:
    """Serve the store inspector until ``stop`` is set (or the process is interrupted).

    ``started`` receives the page's URL once the server listens.
    """
    from aiohttp import web

    from penguiflow.inspector import create_store_inspector_app

    store, owned = await _open_store(args.state_store)
    runner = web.AppRunner(create_store_inspector_app(store))
    try:
        await runner.setup()
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        host, port = runner.addresses[0][:2]
        url = f"http://{host}:{port}/"
        print(f"inspector: {url} (Ctrl-C stops)", flush=True)
        if started is not None:
            started.set_result(url)
        await (stop if stop is not None else asyncio.Event()).wait()
    finally:
        await runner.cleanup()
        if owned:
            await store.close()  # type: ignore[attr-defined]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``penguiflow-admin`` command line; return the exit status.

    Argument errors exit through argparse (status 2). Any error while running
    the command prints ``error: <message>`` on stderr and returns 1. Runs its
    own event loop, so call it from synchronous code.
    """
    args = _parser().parse_args(argv)
    commands = {"history": _history, "replay": _replay, "traces": _traces, "inspect": _inspect}
    try:
        asyncio.run(commands[args.command](args))
    except KeyboardInterrupt:
        return 0
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
