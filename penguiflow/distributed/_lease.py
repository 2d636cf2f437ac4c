"""The owner lease of a Redis journal: one running durable flow per namespace.

A SQLite journal is owned through a file lock the OS lets go of when its process
dies. Redis cannot see a process die, so a ``RedisJournal`` is owned through a
lease: the key ``<namespace>:journal:owner`` holds the owner's token and expires
``lease_s`` seconds after the owner's last call. The journal's script checks the
token before every call of a claimed journal and renews the lease (fencing: a
call from anyone but the holder is refused before it writes), and a heartbeat
renews it while the flow is idle.

* A second flow on a namespace whose owner is alive gets ``JournalInUse`` from
  its first journal call (``recover()``), after waiting one lease for it.
* After a crash (kill -9) of the owner its lease expires within ``lease_s``; the
  next flow's first call waits for that, then takes over.
* An owner that was frozen past its lease (SIGSTOP, a long pause) and lost it
  to another flow gets ``JournalInUse`` from every later call: it can no longer
  consume, produce or deliver anything, so nothing is handled twice.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable

from penguiflow._logging import get_logger
from penguiflow.errors import JournalError, JournalInUse

__all__ = ["DEFAULT_LEASE_S", "JournalLease"]

LOGGER = get_logger("penguiflow.distributed")

DEFAULT_LEASE_S = 10.0
"""Seconds a crashed owner's lease outlives it (the wait of the next owner)."""

#: ``renew(token)``: one call of the journal's script with nothing to do but the
#: ownership check (it raises ``JournalInUse`` if another holds the lease).
Renew = Callable[[str], Awaitable[None]]


def _token() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()} ({uuid.uuid4().hex[:12]})"


class JournalLease:
    """The lease a claimed ``RedisJournal`` holds; the journal runs the calls."""

    __slots__ = ("_beat", "_held", "lease_ms", "lease_s", "token")

    def __init__(self, lease_s: float) -> None:
        if not (isinstance(lease_s, int | float) and 0 < lease_s < 86_400):
            raise ValueError(f"lease_s must be a number of seconds in (0, 86400), got {lease_s!r}")
        self.lease_s = float(lease_s)
        self.lease_ms = max(1, int(self.lease_s * 1000))
        self.token: str | None = None  # set while a flow owns the journal
        self._held = False  # the lease was taken since claim()
        self._beat: asyncio.Task[None] | None = None

    def claim(self, name: str) -> None:
        """A flow starts on the journal (``run()``); no I/O: the first call takes the lease.

        Raises:
            JournalInUse: a running flow of this process owns it already.
        """
        if self.token is not None:
            raise JournalInUse(
                f"{name} is owned by a durable flow that is still running in this "
                "process: stop it before running another",
                owner=self.token,
            )
        self.token = _token()
        self._held = False

    def release(self, call: Callable[[str, str], Awaitable[object]]) -> Awaitable[None] | None:
        """The flow stops: end the heartbeat; the returned awaitable frees the lease."""
        token, self.token = self.token, None
        beat, self._beat = self._beat, None
        if beat is not None:
            beat.cancel()
        if token is None or not self._held:
            return None
        self._held = False
        return self._free(token, beat, call)

    async def _free(
        self,
        token: str,
        beat: asyncio.Task[None] | None,
        call: Callable[[str, str], Awaitable[object]],
    ) -> None:
        if beat is not None:
            await asyncio.gather(beat, return_exceptions=True)
        try:
            await call("release", token)
        except JournalError as exc:  # unreachable server: the lease expires by itself
            LOGGER.warning("journal_lease_release_failed", error=repr(exc))

    async def run(self, call: Callable[[str], Awaitable[str]], renew: Renew) -> str:
        """Run ``call(token)``; before the lease is first taken, wait out a dead owner's.

        ``call`` raises ``JournalInUse`` when another token holds the lease. Until
        this claim took the lease once, that is retried for one lease (a crashed
        owner's expires); after, it means the lease was lost and is raised.
        """
        token = self.token or ""
        if not token or self._held:
            try:
                return await call(token)
            except JournalInUse:
                if token and self.token is not None and self.token != token:
                    # This flow stopped and ran again while the call was on its way
                    # (a new token took the lease): refused before it wrote, so it
                    # is made again as the new owner.
                    return await self.run(call, renew)
                raise
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease_s + 0.5
        delay = 0.02
        while True:
            try:
                reply = await call(token)
            except JournalInUse:
                if loop.time() >= deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.25)
                continue
            if self.token == token and not self._held:
                self._held = True
                self._beat = loop.create_task(self._heartbeat(token, renew))
            return reply

    async def _heartbeat(self, token: str, renew: Renew) -> None:
        # Owned by the lease: release() cancels it and waits for it.
        while self.token == token:
            await asyncio.sleep(self.lease_s / 3)
            try:
                await renew(token)
            except JournalInUse as exc:
                LOGGER.warning("journal_lease_lost", owner=exc.owner, token=token)
                return
            except JournalError as exc:  # the server is away: writes fail on their own
                LOGGER.warning("journal_lease_renew_failed", error=repr(exc))
