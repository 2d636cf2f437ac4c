"""``RedisDeployment``: run some of a flow's nodes in worker processes, via Redis Streams.

The flow's code does not change; only its deployment does::

    flow = build_flow()                       # the same function the workers load
    deployment = RedisDeployment(url, nodes=["enrich"], flow_name="app.flows:build_flow")
    deployment.apply(flow)                    # before run()
    flow.run()
    ...
    await flow.stop()
    await deployment.close()

Workers: ``penguiflow-worker --redis URL --flow app.flows:build_flow --node enrich``.
"""

from __future__ import annotations

import os
import socket
import uuid
from types import TracebackType
from typing import TYPE_CHECKING

from penguiflow import hosting
from penguiflow._logging import get_logger
from penguiflow.distributed._origin import RemoteMailbox
from penguiflow.distributed._protocol import Keys
from penguiflow.distributed._redis import connect, redis_errors
from penguiflow.distributed.ratelimit import RedisRateLimiter

if TYPE_CHECKING:
    from collections.abc import Sequence

    from redis.asyncio import Redis

    from penguiflow.core import PenguiFlow

__all__ = ["RedisDeployment"]

_log = get_logger("penguiflow.distributed")


class RedisDeployment:
    """Where a flow's distributed nodes run: a Redis server and the workers reading it.

    Args:
        url: a ``redis://`` URL, or a ``redis.asyncio.Redis`` client created with
            ``decode_responses=True`` (not closed by ``close()``).
        nodes: names of the nodes to run in workers (each must be unique in the flow).
        flow_name: the name workers use for this flow; ``penguiflow-worker`` uses
            its ``--flow`` spec unless given ``--flow-name``.
        prefix: first part of every Redis key.
        capacity: most items a node may have sent but not yet answered (its
            unacknowledged backlog) before producers wait; default
            ``queue_maxsize`` times the node's number of incoming edges;
            ``<= 0`` means unbounded.
        block_ms: how long one read of the return stream blocks (a client made
            from a URL gets a socket timeout above it; give your own client one).
        return_ttl_ms: this origin's return streams expire this long after the
            origin last refreshed them (it does at a third of it until
            ``close()``), so a crashed origin leaves no key behind for good.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        url: str | Redis,
        *,
        nodes: Sequence[str],
        flow_name: str,
        prefix: str = "penguiflow",
        capacity: int | None = None,
        block_ms: int = 1000,
        return_ttl_ms: int = 600_000,
    ) -> None:
        self._redis, self._owned = connect(url, block_ms=block_ms)
        self.nodes = tuple(nodes)
        self.keys = Keys(prefix, flow_name)
        self.capacity = capacity
        self.block_ms = block_ms
        self.return_ttl_ms = return_ttl_ms
        self.origin = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._mailboxes: dict[str, RemoteMailbox] = {}

    def __repr__(self) -> str:
        return f"RedisDeployment(flow_name={self.keys.flow_name!r}, nodes={list(self.nodes)!r})"

    def apply(self, flow: PenguiFlow) -> PenguiFlow:
        """Move the chosen nodes' mailboxes to Redis; returns ``flow``.

        Call it once, before ``flow.run()``. The origin keeps a local actor per
        distributed node, which delivers the workers' results into the flow.
        From then on the flow's keyed ``NodePolicy.rate_limit`` buckets are
        shared through Redis (``RedisRateLimiter``), unless the flow was given
        its own ``rate_limiter=``.

        Raises:
            RuntimeError: the flow is running, a chosen node has items queued
                (they would be stranded in its local mailbox), or this
                deployment was applied already.
            ValueError: a node name is missing or not unique in the flow.
        """
        if hosting.is_running(flow):
            raise RuntimeError("apply a deployment before flow.run()")
        if self._mailboxes:
            raise RuntimeError("this deployment was already applied to a flow")
        found = [hosting.node_named(flow, name) for name in self.nodes]
        # Checked for every node first, so a refused deployment changes nothing.
        snapshots = flow.mailboxes()
        for node in found:
            queued = snapshots[str(node.name)].depth
            if queued:
                raise RuntimeError(
                    f"node {node.name!r} has {queued} queued item(s); a deployment "
                    "would strand them (apply it before emitting, or once the flow is idle)"
                )
        hosting.share_rate_limiter(flow, RedisRateLimiter(self._redis, prefix=self.keys.prefix))
        for node in found:
            fan_in = sum(1 for f in flow.edges if f.target is node and f.source is not node)
            capacity = self.capacity
            if capacity is None:
                capacity = max(0, hosting.capacity(flow)) * max(1, fan_in)
            name = str(node.name)
            mailbox = RemoteMailbox(
                redis=self._redis,
                flow=flow,
                node=node,
                stream=self.keys.node_stream(name),
                reply_to=self.keys.return_stream(self.origin, name),
                cancel_channel=self.keys.cancel_channel,
                origin=self.origin,
                capacity=capacity,
                block_ms=self.block_ms,
                return_ttl_ms=self.return_ttl_ms,
            )
            mailbox.attach(hosting.replace_mailbox(flow, node, mailbox))
            self._mailboxes[name] = mailbox
        return flow

    def backlog(self) -> dict[str, int]:
        """Items each distributed node has been sent and not yet answered, by node name."""
        return {name: len(mailbox) for name, mailbox in self._mailboxes.items()}

    async def flush(self) -> None:
        """Return once every item put on a distributed node so far is in Redis."""
        for mailbox in self._mailboxes.values():
            await mailbox.flush()

    async def close(self) -> None:
        """Stop sending, delete this origin's return streams, close an owned client.

        Stop the flow first: its node actors read the return streams. Closing is
        final: afterwards a put on a distributed node raises ``RuntimeError`` and
        nothing re-creates the streams.
        """
        for mailbox in self._mailboxes.values():
            await mailbox.aclose()
        streams = [self.keys.return_stream(self.origin, name) for name in self._mailboxes]
        try:
            if streams:
                await self._redis.delete(*streams)
        except (OSError, redis_errors()) as exc:
            # Closing must not fail because Redis is gone; the streams expire with it.
            _log.warning("distributed_close_failed", error=repr(exc))
        if self._owned:
            await self._redis.aclose()

    async def __aenter__(self) -> RedisDeployment:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
