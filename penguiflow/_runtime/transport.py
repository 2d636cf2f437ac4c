"""Putting items on edges: trace counting, message-bus publishing, Rookery delivery.

Every item placed on an edge goes through ``Transport``: it is counted for its
trace *before* the put (a consumer may take it before the producer resumes) and
uncounted if the put fails, then published to the bus (awaited for waiting
sends, in a tracked background task for ``send_nowait``).

A trace-less item (a bare payload) sent while a trace is known (``PRODUCING_TRACE``:
the trace of the item the node in hand is handling, or the one it carries) goes on
the edge as ``Carried(item, trace)``, so the next node, and ``fetch_traced`` at
Rookery, know its trace however many bare hops follow. An item sent from outside
any node (no producing trace) goes as it is. ``Message`` items never pay for this.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.events import LOGGER
from penguiflow._runtime.graph import ROOKERY, Endpoint, Floe
from penguiflow._runtime.tracing import PRODUCING_TRACE, Carried, Journaled, trace_id_of
from penguiflow.actors import SELF_LANE
from penguiflow.types import Message

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context
    from penguiflow._runtime.events import EventPipeline
    from penguiflow._runtime.tracing import TraceBook
    from penguiflow.actors import Mailbox
    from penguiflow.node import Node

__all__ = ["Transport"]


class Transport:
    """Sends items along the edges of one flow and keeps trace counts in step."""

    __slots__ = (
        "_background",
        "_events",
        "_rookery",
        "_rookery_ctx",
        "_traces",
        "bus",
        "direct",
        "muted",
    )

    #: A durable flow's transport (``durable.DurableTransport``) journals every put.
    durable = False

    def __init__(
        self,
        *,
        traces: TraceBook,
        events: EventPipeline,
        bus: Any,
        rookery: Mailbox,
        rookery_ctx: Context,
    ) -> None:
        self._traces = traces
        self._events = events
        #: The message bus every edge put is published to (``None``: no bus).
        self.bus = bus
        #: No bus and not durable: a node may put a result straight on a lane
        #: (``NodeActor.receive``, ``Context.emit_chunk``). Kept by ``disable_bus``.
        self.direct = bus is None and not self.durable
        #: Edges whose puts are not published (``hosting.disable_bus``).
        self.muted: frozenset[Floe] = frozenset()
        self._rookery = rookery
        self._rookery_ctx = rookery_ctx
        # Tasks the flow owns and awaits in stop(): nowait bus publishes, late events.
        self._background: set[asyncio.Task[None]] = set()

    # -- sending ------------------------------------------------------------------
    async def send(self, floe: Floe, item: Any) -> None:
        """Put ``item`` on ``floe``, waiting while the edge is full."""
        trace_id = trace_id_of(item)
        if trace_id is None:
            item = _carry(item)
        if self.bus is not None and floe not in self.muted:
            await self._publish(floe.source, floe.target, item)
        if trace_id is not None:
            self._traces.add(trace_id)
        mailbox = floe.mailbox
        assert mailbox is not None  # runtime edges are always attached
        lane = floe.lane
        if lane == SELF_LANE:
            mailbox.put_self(item)  # never blocks: a controller cannot deadlock on itself
            return
        try:
            await mailbox.put(item, lane)
        except BaseException:
            if trace_id is not None:
                self._traces.done(trace_id)
            raise

    def offer(self, floe: Floe, item: Any) -> bool:
        """``send`` without waiting, if that is possible now; False if not done.

        The hot path of node-to-node traffic: no coroutine, no bus, a data lane
        with room and no producer waiting (FIFO: never overtakes one). Counting
        after the put is safe here: nothing can run between the two. When this
        returns False nothing happened and the caller awaits ``send``.

        Raises:
            MailboxClosed: the edge's mailbox was closed.
        """
        lane = floe.lane
        if lane < 0 or (self.bus is not None and floe not in self.muted):
            return False
        mailbox = floe.mailbox
        assert mailbox is not None  # runtime edges are always attached
        trace_id = item.trace_id if type(item) is Message else trace_id_of(item)
        if trace_id is None:
            item = _carry(item)
        if not mailbox.put_nowait(item, lane):
            return False
        if trace_id is not None:
            counts = self._traces.counts
            counts[trace_id] = counts.get(trace_id, 0) + 1
        return True

    def send_nowait(self, floe: Floe, item: Any) -> None:
        """Put ``item`` on ``floe`` now; ``asyncio.QueueFull`` if the edge is full."""
        trace_id = trace_id_of(item)
        if trace_id is None:
            item = _carry(item)
        mailbox = floe.mailbox
        assert mailbox is not None
        lane = floe.lane
        if lane == SELF_LANE:
            mailbox.put_self(item)
        elif not mailbox.put_nowait(item, lane):
            raise asyncio.QueueFull
        if trace_id is not None:
            self._traces.add(trace_id)
        if self.bus is not None and floe not in self.muted:
            self.spawn(self._publish(floe.source, floe.target, item))

    async def to_rookery(self, item: Any, *, source: Node | Endpoint | None = None) -> None:
        """Deliver ``item`` to Rookery as the runtime does for finals and errors.

        Uses ``source``'s own Rookery edge, else the first Rookery edge, else the
        Rookery buffer (read first by ``fetch``).
        """
        incoming = self._rookery_ctx._incoming
        floe = incoming.get(source) if source is not None else None
        if floe is None and incoming:
            floe = next(iter(incoming.values()))
        if floe is not None:
            await self.send(floe, item)
            return
        trace_id = trace_id_of(item)
        if trace_id is None:
            item = _carry(item)
        if self.bus is not None:
            await self._publish(source, ROOKERY, item)
        if trace_id is not None:
            self._traces.add(trace_id)
        self._rookery.put_self(item)

    # -- finishing ----------------------------------------------------------------
    def settle(self, item: Any) -> str | None:
        """Mark ``item`` finished for trace accounting (any outcome), synchronously.

        Returns the trace id if this ended a cancelled trace: the caller then
        awaits ``cancel_finished`` (``trace_cancel_finish``). Split from
        ``finish`` so hot paths pay no coroutine when no event is due.
        """
        trace_id = item.trace_id if type(item) is Message else trace_id_of(item)
        if trace_id is None:
            return None  # trace-less (a Carried item too): never counted
        return trace_id if self._traces.done(trace_id) else None

    async def finish(self, item: Any) -> None:
        """Mark ``item`` finished for trace accounting (any outcome)."""
        finished = self.settle(item)
        if finished is not None:
            await self.cancel_finished(finished)

    def finish_nowait(self, item: Any) -> None:
        """``finish`` from synchronous code; a due event is emitted by a tracked task."""
        # Only Rookery fetches call finish_nowait.
        finished = self.settle(item)
        if finished is not None:
            self.spawn(self.cancel_finished(finished))

    async def cancel_finished(self, trace_id: str) -> None:
        """Emit ``trace_cancel_finish`` for a cancelled trace whose count reached 0."""
        await self._events.emit("trace_cancel_finish", self._rookery_ctx, trace_id)

    # -- background work ----------------------------------------------------------
    def spawn(self, coro: Any) -> None:
        """Run ``coro`` as a task the flow owns and awaits in ``stop()``."""
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for every background task (``stop()`` calls this)."""
        while self._background:
            await asyncio.gather(*tuple(self._background), return_exceptions=True)

    async def _publish(self, source: Node | Endpoint | None, target: Any, item: Any) -> None:
        from penguiflow.bus import BusEnvelope  # contract C; loaded only with a bus

        source_name = source.name if source is not None else None
        if type(item) is Journaled:
            item = item.item  # the bus sees what the edge carries, not the journal's id
        target_name = target.name if target is not None else None
        if type(item) is Carried:
            # The bus sees the item that was sent, and the trace it belongs to.
            trace_id: str | None = item.trace
            item = item.item
        else:
            trace_id = trace_id_of(item)
        is_message = isinstance(item, Message)
        edge = f"{source_name or '*'}->{target_name or '*'}"
        envelope = BusEnvelope(
            edge=edge,
            source=source_name,
            target=target_name,
            trace_id=trace_id,
            payload=item,
            headers=item.headers.model_dump() if is_message else None,
            meta=dict(item.meta) if is_message else None,
        )
        try:
            await self.bus.publish(envelope)
        except Exception as exc:
            LOGGER.exception(
                "message_bus_publish_failed",
                extra={
                    "event": "message_bus_publish_failed",
                    "edge": edge,
                    "trace_id": trace_id,
                    "exception": repr(exc),
                },
            )


def _carry(item: Any) -> Any:
    """``item`` as it goes on an edge: with the producing trace, if one is known.

    ``item`` has no ``trace_id`` of its own. An item already ``Carried`` (handed
    back to the runtime by a deployment, say) keeps the trace it carries.
    """
    kind = type(item)
    if kind is Carried or kind is Journaled:
        return item
    trace_id = PRODUCING_TRACE.get()
    return item if trace_id is None else Carried(item, trace_id)
