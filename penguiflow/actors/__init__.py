"""The actor kernel: mailboxes, actors, refs and the actor system.

This layer knows nothing of flows, nodes, messages or LLMs; it imports only
``penguiflow._time``, ``penguiflow._logging`` and ``penguiflow.errors`` (and the
supervision tree, which is part of the kernel).
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
from penguiflow.actors.mailbox import Mailbox
from penguiflow.actors.ref import ActorRef
from penguiflow.actors.system import ActorSystem

__all__ = [
    "SELF_LANE",
    "SYSTEM_LANE",
    "Actor",
    "ActorContext",
    "ActorRef",
    "ActorSystem",
    "DeadLetter",
    "Delivery",
    "Mailbox",
    "MailboxEmpty",
    "MailboxStatistics",
]
