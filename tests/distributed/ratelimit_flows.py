"""A rate-limited flow the Redis tests deploy; workers import it as ``ratelimit_flows:build``.

The node ``call`` stamps each item with the wall time and the process it ran in,
so the origin can measure the rate all workers achieved together.
"""

from __future__ import annotations

import os
import time
from typing import Any

from penguiflow import Message, Node, NodePolicy, RateLimit, create

RATE = 20.0
"""Tokens per second of the shared ``provider`` key."""

LIMIT = RateLimit(rate=RATE, per_s=1.0, burst=1, key="provider")


async def call(msg: Message, ctx: Any) -> Message:
    return msg.model_copy(update={"payload": {"pid": os.getpid(), "at": time.time()}})


def build() -> Any:
    node = Node(call, name="call", policy=NodePolicy(validate="none", rate_limit=LIMIT))
    return create(node.to())
