"""The 2.2.5 home of the A2A names: ``from penguiflow_a2a.server import ...``.

Everything is defined in the modules beside this one and re-exported here
unchanged; importing it does not import aiohttp.
"""

from __future__ import annotations

from .adapter import A2AServerAdapter
from .app import create_a2a_app
from .models import A2AAgentCard, A2AMessagePayload, A2ASkill, A2ATaskCancelRequest
from .models import A2ARequestError as A2ARequestError  # importable from here, as in 2.2.5

__all__ = [  # noqa: RUF022 - the 2.2.5 order
    "A2AAgentCard",
    "A2ASkill",
    "A2AMessagePayload",
    "A2ATaskCancelRequest",
    "A2AServerAdapter",
    "create_a2a_app",
]
