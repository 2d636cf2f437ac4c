"""The records that travel into and out of mailboxes, and the dead-letter record.

User messages travel bare (a ``tell`` enqueues the message object itself, so a
mailbox snapshot shows user items). Only an ``ask`` is wrapped, to carry its
reply future, and the kernel's control messages live on the system lane. What
comes out of a mailbox is a ``Delivery``: the item and the lane it came from.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SELF_LANE",
    "SYSTEM_LANE",
    "DeadLetter",
    "Delivery",
    "MailboxEmpty",
    "MailboxStatistics",
]

SYSTEM_LANE = -1
"""Lane number of the unbounded system lane (served first)."""
SELF_LANE = -2
"""Lane number of the unbounded self lane (served after system, before data)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One item taken from a mailbox and the lane it came from.

    ``lane`` is the data lane index, ``SYSTEM_LANE`` (-1) or ``SELF_LANE`` (-2).

    .. versionadded:: 3.0
    """

    item: Any
    lane: int


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    """A frozen snapshot of a mailbox's counters.

    .. versionadded:: 3.0
    """

    depths: tuple[int, ...]
    capacity: int
    system_depth: int
    self_depth: int
    waiting_producers: int
    waiting_consumers: int
    closed: bool


class MailboxEmpty(asyncio.QueueEmpty):
    """``get_nowait`` found nothing to take."""


# Creating the frozen dataclass through its generated ``__init__`` costs two
# ``object.__setattr__`` lookups per message; the hot path fills slots directly.
_new_delivery = Delivery.__new__
_slots: Any = Delivery.__dict__
_set_item = _slots["item"].__set__
_set_lane = _slots["lane"].__set__


def _delivery(item: Any, lane: int) -> Delivery:
    d = _new_delivery(Delivery)
    _set_item(d, item)
    _set_lane(d, lane)
    return d


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
