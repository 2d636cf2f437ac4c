"""Helpers for the MCP tests: an HTTP server child process and process checks."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, exited but not reaped, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        # Field 3 is the state; the command name (field 2) may hold spaces: split after ')'.
        state = stat.read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


class HttpServer:
    """The test server with ``--http``: started, killed and restarted on one port."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.port = 0
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.argv, "--http", str(self.port), stdout=asyncio.subprocess.PIPE
        )
        assert self.proc.stdout is not None
        line = (await self.proc.stdout.readline()).decode()
        assert line.startswith("PORT "), line
        self.port = int(line.split()[1])

    async def kill(self) -> None:
        proc = self.proc
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()

    async def stop(self) -> None:
        await self.kill()
