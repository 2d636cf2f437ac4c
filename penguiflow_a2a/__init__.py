"""Serve a PenguiFlow over A2A (aiohttp) and call A2A agents from a flow.

``create_a2a_app`` and ``penguiflow_a2a.client`` need aiohttp (the
``penguiflow[a2a-server]`` extra); the models and the adapter do not.
"""

from __future__ import annotations

from .server import (
    A2AAgentCard,
    A2AMessagePayload,
    A2AServerAdapter,
    A2ASkill,
    A2ATaskCancelRequest,
    create_a2a_app,
)

__all__ = [  # noqa: RUF022 - the 2.2.5 order
    "A2AAgentCard",
    "A2ASkill",
    "A2AMessagePayload",
    "A2ATaskCancelRequest",
    "A2AServerAdapter",
    "create_a2a_app",
]
