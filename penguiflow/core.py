"""Flow assembly and the 2.2.5 runtime API: ``create``, ``PenguiFlow``, ``Context``.

The implementation lives in the package-private ``penguiflow._runtime``; this
module re-exports its public names at their 2.2.5 home.
"""

from __future__ import annotations

from penguiflow._runtime.context import Context
from penguiflow._runtime.flow import DEFAULT_QUEUE_MAXSIZE, PenguiFlow, create
from penguiflow._runtime.flow import MailboxSnapshot as MailboxSnapshot
from penguiflow._runtime.graph import OPEN_SEA, ROOKERY, CycleError, Endpoint, Floe
from penguiflow._runtime.playbook import PlaybookFactory, call_playbook
from penguiflow._runtime.policy import (
    BUDGET_EXCEEDED_TEXT,
    DEADLINE_EXCEEDED_TEXT,
    TOKEN_BUDGET_EXCEEDED_TEXT,
)
from penguiflow._runtime.signals import TraceCancelled as TraceCancelled

__all__ = [  # noqa: RUF022 - the 2.2.5 order
    "Context",
    "Floe",
    "PenguiFlow",
    "CycleError",
    "call_playbook",
    "create",
    "DEFAULT_QUEUE_MAXSIZE",
]

# Importable from here but outside __all__, as in 2.2.5.
_EXTRA = (
    BUDGET_EXCEEDED_TEXT,
    DEADLINE_EXCEEDED_TEXT,
    OPEN_SEA,
    ROOKERY,
    TOKEN_BUDGET_EXCEEDED_TEXT,
    Endpoint,
    MailboxSnapshot,
    PlaybookFactory,
    TraceCancelled,
)
