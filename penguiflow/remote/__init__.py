"""Remote calls: run a node's work on another agent through a ``RemoteTransport``.

``RemoteTransport`` is the seam (A2A over HTTP in ``penguiflow_a2a``, an
in-memory fake in ``penguiflow.testkit``); ``RemoteNode`` turns one into an
ordinary flow ``Node``. No network code lives here.
"""

from __future__ import annotations

from penguiflow.remote._node import RemoteNode
from penguiflow.remote._records import (
    RemoteCallRequest,
    RemoteCallResult,
    RemoteStreamEvent,
    RemoteTransport,
)

# Order is the 2.2.5 one (distribution.md); programs compare it.
__all__ = [  # noqa: RUF022
    "RemoteCallRequest",
    "RemoteCallResult",
    "RemoteStreamEvent",
    "RemoteTransport",
    "RemoteNode",
]
