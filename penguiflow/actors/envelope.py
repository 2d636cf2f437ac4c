"""What the kernel itself puts into mailboxes, and the dead-letter record.

User messages travel bare (a ``tell`` enqueues the message object itself, so a
mailbox snapshot shows user items). Only an ``ask`` is wrapped, to carry its
reply future, and the kernel's control messages live on the system lane.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

__all__ = ["DeadLetter"]


class _Ask:
    """An ``ask``: the message plus the future its reply goes to."""

    __slots__ = ("msg", "reply")

    def __init__(self, msg: Any, reply: asyncio.Future[Any]) -> None:
        self.msg = msg
        self.reply = reply

    def __repr__(self) -> str:
        return f"<ask {self.msg!r}>"


class _Stop:
    """System-lane request to leave the receive loop and run ``on_stop``."""

    __slots__ = ("final", "reason")

    def __init__(self, reason: object, *, final: bool = False) -> None:
        self.reason = reason
        # True when the actor asked to be stopped for good (ctx.stop / self stop()),
        # so a permanent child is not restarted.
        self.final = final


class _Interrupt:
    """A pending ``interrupt``: why, and the message being handled at the time."""

    __slots__ = ("message", "reason")

    def __init__(self, reason: object, message: Any) -> None:
        self.reason = reason
        self.message = message


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that could not be delivered or processed.

    ``reason`` is one of ``"stopped"`` (sent to or left in a stopped actor),
    ``"poison"`` (it crashed the actor too often) or ``"crashed"`` (in flight when
    the actor crashed for the last time).

    .. versionadded:: 3.0
    """

    actor: str
    message: Any
    reason: str
