"""Feeding and draining a flow: OpenSea ``emit*`` and Rookery ``fetch*`` (runtime.md §5)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.graph import OPEN_SEA, ROOKERY
from penguiflow._runtime.tracing import Carried, trace_id_of
from penguiflow.actors import Mailbox
from penguiflow.types import WM, Message, StreamChunk

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context, Target
    from penguiflow._runtime.tracing import TraceBook
    from penguiflow._runtime.transport import Transport
    from penguiflow.node import Node

__all__ = ["FlowIO", "RookeryDelivery"]

_NOTHING = Mailbox.NOTHING


@dataclass(frozen=True, slots=True)
class RookeryDelivery:
    """An item fetched from Rookery and the trace that produced it (``fetch_traced``).

    .. versionadded:: 3.0
    """

    item: Any
    trace_id: str | None


class FlowIO:
    """The part of ``PenguiFlow`` that talks to OpenSea and Rookery."""

    _contexts: dict[Any, Context]
    _traces: TraceBook
    _io: Transport
    _failure: BaseException | None
    _fetch_failure: BaseException | None
    _open_sea_ctx: Context
    _rookery_ctx: Context

    def _wm_duplicate(self, msg: Any) -> bool:
        if isinstance(msg, Message) and isinstance(msg.payload, WM):
            memo = self._traces.memo.get(msg.trace_id)
            # <= rather than ==: the loop may run ahead of a caller re-emitting hops.
            return memo is not None and msg.payload.hops <= memo
        return False

    async def emit(self, msg: Any, to: Target | Sequence[Target] | None = None) -> None:
        """Feed ``msg`` to the ingress nodes (or the ``to`` ones), waiting on full edges.

        Raises:
            KeyError: a target is not an ingress node.
            Escalated: the run failed (see ``failure``); nothing would take it.
        """
        if self._failure is not None:
            raise self._failure
        # No memo, no duplicate: the memo is only filled by WM streaming.
        if self._traces.memo and self._wm_duplicate(msg):
            return
        # Context.emit inlined: an emitter waiting on a full edge holds one
        # coroutine frame less (10k concurrent emitters: megabytes).
        ctx = self._open_sea_ctx
        if not ctx._outgoing:
            return
        io = self._io
        floes = ctx._out_list if to is None else ctx._targets(to)
        if len(floes) == 1:
            # One ingress (the usual flow): no tuple iterator held while waiting.
            floe = floes[0]
            floes = ()
            if not io.offer(floe, msg):
                await io.send(floe, msg)
            return
        for floe in floes:
            if not io.offer(floe, msg):
                await io.send(floe, msg)

    def emit_nowait(self, msg: Any, to: Target | Sequence[Target] | None = None) -> None:
        """Like ``emit`` without waiting; ``asyncio.QueueFull`` if an edge is full."""
        if self._failure is not None:
            raise self._failure
        if self._wm_duplicate(msg):
            return
        self._contexts[OPEN_SEA].emit_nowait(msg, to)

    async def emit_chunk(
        self,
        *,
        parent: Message,
        text: str,
        stream_id: str | None = None,
        seq: int | None = None,
        done: bool = False,
        meta: dict[str, Any] | None = None,
        to: Target | Sequence[Target] | None = None,
    ) -> StreamChunk:
        """``Context.emit_chunk`` run from OpenSea (delivers to ingress nodes)."""
        return await self._contexts[OPEN_SEA].emit_chunk(
            parent=parent, text=text, stream_id=stream_id, seq=seq, done=done, meta=meta, to=to
        )

    async def fetch(self, from_: Target | Sequence[Target] | None = None) -> Any:
        """Wait for and return the next item delivered to Rookery.

        Raises:
            KeyError: ``from_`` is not an egress node.
            RuntimeError: Rookery has no incoming edges and nothing buffered.
            Escalated: the run failed (see ``failure``) and nothing is left to fetch.
        """
        # Context.fetch inlined for Rookery: one coroutine frame less per fetch.
        ctx = self._rookery_ctx
        mailbox = ctx._in_mailbox
        if (
            from_ is None
            and self._fetch_failure is None
            and mailbox is not None
            and (ctx._incoming or len(mailbox))
        ):
            # The usual call: every lane, a healthy run (what _lanes/_mailbox check).
            # An item already queued is taken synchronously (no Delivery record);
            # get() handles the rest (system/self lanes first, waiting, closed).
            item = mailbox.poll()
            if item is _NOTHING:
                item = (await mailbox.get(None)).item
        else:
            lanes = ctx._lanes(from_)
            if self._fetch_failure is None:
                delivery = await ctx._mailbox().get(lanes)
            else:
                delivery = await ctx._take(lanes)
            item = delivery.item
        # Fetching from Rookery ends the item's life for trace accounting; the
        # common case of TraceBook.done (other items of the trace are still out,
        # nobody waits for capacity) in place.
        if type(item) is Message:
            traces = self._traces
            counts = traces.counts
            left = counts.get(item.trace_id, 0) - 1
            if left > 0 and not traces.waiters:
                counts[item.trace_id] = left
                return item
        elif type(item) is Carried:
            return item.item  # a bare payload: never counted, nothing to settle
        io = self._io
        finished = io.settle(item)
        if finished is not None:
            await io.cancel_finished(finished)
        return item

    async def fetch_any(self, from_: Target | Sequence[Target] | None = None) -> Any:
        """Like ``fetch``: the first item on any selected Rookery edge."""
        return await self._contexts[ROOKERY].fetch_any(from_)

    async def fetch_traced(self, from_: Target | Sequence[Target] | None = None) -> RookeryDelivery:
        """Like ``fetch``, and also say which trace produced the item.

        ``trace_id`` is the item's own ``trace_id``, or for a trace-less item (a
        bare payload a node returned) the trace it carries: the trace of the item
        the producing node was handling, handed on from hop to hop however many
        bare payloads follow the traced ``Message``. ``None`` only for an item
        with no trace anywhere on its way (e.g. a bare payload emitted from
        outside any node). Used by servers that share one flow between concurrent
        requests.

        .. versionadded:: 3.0
        """
        ctx = self._rookery_ctx
        delivery = await ctx._take(ctx._lanes(from_))
        item = delivery.item
        if type(item) is Carried:
            return RookeryDelivery(item=item.item, trace_id=item.trace)
        await self._io.finish(item)
        return RookeryDelivery(item=item, trace_id=trace_id_of(item))

    async def _emit_to_rookery(self, item: Any, *, source: Node | None = None) -> None:
        """Deliver any object to Rookery as the runtime does for finals (compat)."""
        await self._io.to_rookery(item, source=source)
