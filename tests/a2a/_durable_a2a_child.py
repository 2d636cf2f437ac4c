"""The A2A server ``test_durable_tasks_kill9.py`` SIGKILLs: a durable flow behind aiohttp.

Usage: ``python _durable_a2a_child.py STORE`` (a SQLite file, or
``redis://host:port/db#namespace``). It serves the
routing flow of ``a2a_support`` (durable, on STORE) on a free port of
127.0.0.1 and writes one line per fact, each with one ``os.write``:

* ``ready <port>``: the server accepts requests;
* ``entered <gate>``: the ``hang`` node waits on gate ``g`` (it never opens here).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from a2a_support import AGENT_URL, Gates, build_flow, make_card
from aiohttp import web

from penguiflow.stores import SQLiteStateStore
from penguiflow_a2a import A2AServerAdapter, create_a2a_app

# A killed child's Redis journal lease expires this soon: the next child waits no longer
# (one live process at a time here, so a short lease is never taken over).
KILL_LEASE_S = 0.5


def say(line: str) -> None:
    os.write(1, f"{line}\n".encode())


def open_store(spec: str) -> Any:
    """The state store ``spec`` names (see the module docstring)."""
    if spec.startswith("redis://"):
        from penguiflow.distributed import RedisStateStore

        url, _, namespace = spec.partition("#")
        return RedisStateStore(url, namespace=namespace, journal_lease_s=KILL_LEASE_S)
    return SQLiteStateStore(spec)


async def main(spec: str) -> None:
    gates = Gates()
    store = open_store(spec)
    adapter = A2AServerAdapter(
        build_flow(gates, state_store=store, durable=True),
        agent_card=make_card(),
        agent_url=AGENT_URL,
    )
    runner = web.AppRunner(create_a2a_app(adapter))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    say(f"ready {port}")
    await gates.entered("g").wait()
    say("entered g")
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
