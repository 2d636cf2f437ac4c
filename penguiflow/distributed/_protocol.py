"""Key names and the records that travel between an origin flow and its workers.

Every record is a pydantic model sent as JSON in the stream field ``d``; items
inside are trees made by ``penguiflow.distributed._codec.encode``.

Keys (``<p>`` = prefix, ``<f>`` = flow name):

* ``<p>:<f>:node:<node>`` -- the node's mailbox stream; consumer group ``workers``;
* ``<p>:<f>:return:<origin>:<node>`` -- results for one origin flow and node;
* ``<p>:<f>:cancel`` -- pub/sub channel of cancelled trace ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

__all__ = ["GROUP", "ROOKERY_CODE", "CancelNotice", "Keys", "ResultEntry", "WorkEntry"]

GROUP = "workers"
"""The consumer group every worker of a node reads in."""

ROOKERY_CODE = -1
"""Output edge code meaning "deliver to Rookery as the runtime does for finals"."""


@dataclass(frozen=True, slots=True)
class Keys:
    """Redis key names of one distributed flow."""

    prefix: str
    flow_name: str

    def node_stream(self, node: str) -> str:
        """Return the stream the workers of ``node`` read."""
        return f"{self.prefix}:{self.flow_name}:node:{node}"

    def return_stream(self, origin: str, node: str) -> str:
        """Return the stream that carries ``node``'s results back to ``origin``."""
        return f"{self.prefix}:{self.flow_name}:return:{origin}:{node}"

    @property
    def cancel_channel(self) -> str:
        """The pub/sub channel that announces cancelled traces to the workers."""
        return f"{self.prefix}:{self.flow_name}:cancel"


class WorkEntry(BaseModel):
    """One item for a distributed node: which edge it came on and where to answer.

    ``ref`` is the origin's own id for the item, assigned before it is sent, so
    the origin knows what it waits for before any worker can see the entry; the
    result carries it back.
    """

    ref: str
    origin: str
    reply_to: str
    edge: int
    edge_name: str  # checked by the worker: both sides must build the same graph
    trace_id: str | None
    item: Any
    # W3C trace context of the sender's span (``traceparent``...); absent without
    # OpenTelemetry. Optional, so entries of older origins still validate.
    trace_context: dict[str, str] | None = None


class ResultEntry(BaseModel):
    """What a worker sends back for one ``WorkEntry``.

    ``ref`` is the work entry's ``ref`` (the origin delivers each ``ref`` once),
    ``deliveries`` how often the entry had been delivered, ``outputs`` the items
    the node put on its outgoing edges, in order, as ``(edge index, item)``
    (``ROOKERY_CODE`` for runtime Rookery deliveries). ``error`` is set when the
    entry could not be handled at all (undecodable item, delivery limit).
    """

    ref: str
    deliveries: int
    worker: str
    outputs: list[tuple[int, Any]]
    error: str | None = None


class CancelNotice(BaseModel):
    """Published on the cancel channel by ``flow.cancel(trace_id)`` at the origin."""

    trace_id: str
