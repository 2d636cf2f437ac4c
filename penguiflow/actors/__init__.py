"""The actor kernel: mailboxes, actors, refs and the actor system.

This layer knows nothing of flows, nodes, messages or LLMs, nor of the
supervision tree above it; it imports only ``penguiflow._time``,
``penguiflow._logging`` and ``penguiflow.errors``. What it needs from its
neighbours is typed by the Protocols in ``penguiflow.actors.ports``
(``MailboxLike``, ``CellOwner``, ``DeadLetterSink``, ``ActorHost``). The actor
system lives in ``penguiflow.supervision`` (``ActorSystem``).
"""

from __future__ import annotations

from penguiflow.actors.actor import Actor, ActorContext
from penguiflow.actors.envelope import (
    SELF_LANE,
    SYSTEM_LANE,
    DeadLetter,
    Delivery,
    MailboxEmpty,
    MailboxStatistics,
)
from penguiflow.actors.mailbox import ItemWatch, Mailbox
from penguiflow.actors.ports import ActorHost, CellOwner, DeadLetterSink, MailboxLike
from penguiflow.actors.ref import ActorRef

__all__ = [
    "SELF_LANE",
    "SYSTEM_LANE",
    "Actor",
    "ActorContext",
    "ActorHost",
    "ActorRef",
    "CellOwner",
    "DeadLetter",
    "DeadLetterSink",
    "Delivery",
    "ItemWatch",
    "Mailbox",
    "MailboxEmpty",
    "MailboxLike",
    "MailboxStatistics",
]
