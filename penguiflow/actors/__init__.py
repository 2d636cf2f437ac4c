"""The actor kernel: mailboxes, actors, refs and the actor system.

This layer knows nothing of flows, nodes, messages or LLMs; it imports only
``penguiflow._time``, ``penguiflow._logging`` and ``penguiflow.errors``.
"""

from __future__ import annotations

from penguiflow.actors.mailbox import (
    SELF_LANE,
    SYSTEM_LANE,
    Delivery,
    Mailbox,
    MailboxEmpty,
    MailboxStatistics,
)

__all__ = [
    "SELF_LANE",
    "SYSTEM_LANE",
    "Delivery",
    "Mailbox",
    "MailboxEmpty",
    "MailboxStatistics",
]
