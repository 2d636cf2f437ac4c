"""``Context``: what a node receives as ``ctx`` (emit, fetch, streaming, playbooks).

Each node, OpenSea and Rookery has one context for the life of the flow. Its
edges are lanes of mailboxes: ``_outgoing`` maps successors to the edges this
owner sends on, ``_incoming`` maps predecessors to the edges it reads from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.graph import ROOKERY, Endpoint, Floe
from penguiflow._runtime.tracing import Carried
from penguiflow.actors import SELF_LANE, Delivery, MailboxEmpty
from penguiflow.errors import DurabilityError, InterruptUnavailable
from penguiflow.node import Node
from penguiflow.types import Message, StreamChunk

if TYPE_CHECKING:
    from penguiflow._runtime.flow import PenguiFlow
    from penguiflow._runtime.playbook import PlaybookFactory
    from penguiflow._runtime.run_state import RunState
    from penguiflow._runtime.transport import Transport
    from penguiflow.actors import MailboxLike

__all__ = ["Context"]

Target = Node | Endpoint
# The models' own validators (both are complete at import: no deferred build).
_validate_chunk = StreamChunk.__pydantic_validator__.validate_python
_validate_message = Message.__pydantic_validator__.validate_python
_DETACHED = "Context is not attached to a running flow"
_NO_INCOMING = "context has no incoming floes to fetch from"
_NO_DURABLE_FETCH = (
    "a node of a durable flow cannot fetch from its own edges (the journal consumes an "
    "entry only as the step of the item the node was given)"
)


class Context:
    """The handle a node uses to talk to its flow.

    Args:
        owner: the ``Node`` (or ``Endpoint``) this context belongs to.
        runtime: the owning ``PenguiFlow``; ``None`` for a detached context (for
            unit-testing ``Node.invoke``), on which ``emit`` raises ``RuntimeError``.
    """

    def __init__(self, owner: Node | Endpoint, runtime: PenguiFlow | None = None) -> None:
        self._owner = owner
        self._runtime = runtime
        self._outgoing: dict[Target, Floe] = {}
        self._incoming: dict[Target, Floe] = {}
        self._out_list: tuple[Floe, ...] = ()
        self._in_mailbox: MailboxLike | None = None
        self._self_floe: Floe | None = None
        self._stream_seq: dict[str, int] = {}
        self._io: Transport | None = None
        self._run: RunState | None = None
        self._is_rookery = False

    def _wire(
        self,
        incoming: dict[Target, Floe],
        outgoing: dict[Target, Floe],
        mailbox: MailboxLike | None,
        run: RunState,
    ) -> None:
        """Attach the edges (called once, by ``wiring.wire``)."""
        self._run = run
        self._io = run.io
        self._is_rookery = self._owner == ROOKERY
        self._incoming = incoming
        self._outgoing = outgoing
        self._out_list = tuple(outgoing.values())
        self._in_mailbox = mailbox
        self._self_floe = incoming.get(self._owner)

    @property
    def owner(self) -> Node | Endpoint:
        """The ``Node`` or ``Endpoint`` this context belongs to."""
        return self._owner

    @property
    def runtime(self) -> PenguiFlow | None:
        """The owning flow, or ``None`` when detached."""
        return self._runtime

    # -- sending ------------------------------------------------------------------
    def _targets(self, to: Target | Sequence[Target] | None) -> tuple[Floe, ...]:
        if to is None:
            return self._out_list
        targets = [to] if isinstance(to, Node | Endpoint | str) else list(to)
        floes = []
        for target in targets:
            floe = self._outgoing.get(target)
            if floe is None:
                name = getattr(target, "name", target)
                raise KeyError(f"Unknown target {name} for {self._owner.name}")
            floes.append(floe)
        return tuple(floes)

    async def emit(self, msg: Any, to: Target | Sequence[Target] | None = None) -> None:
        """Send ``msg`` on every outgoing edge, or only to the ``to`` target(s).

        Waits while a target edge is full. All targets are resolved first.

        Raises:
            KeyError: a target is not a successor of this context's owner.
            RuntimeError: the context is detached.
        """
        if self._runtime is None:
            raise RuntimeError(_DETACHED)
        io = self._io
        if io is None or not self._outgoing:
            return
        for floe in self._targets(to):
            if not io.offer(floe, msg):  # no coroutine unless the edge is full
                await io.send(floe, msg)

    def emit_nowait(self, msg: Any, to: Target | Sequence[Target] | None = None) -> None:
        """Like ``emit`` without waiting; ``asyncio.QueueFull`` if an edge is full.

        Targets earlier in the list may already have received ``msg``.
        """
        if self._runtime is None:
            raise RuntimeError(_DETACHED)
        io = self._io
        if io is None or not self._outgoing:
            return
        for floe in self._targets(to):
            io.send_nowait(floe, msg)

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
        """Emit one ``StreamChunk`` of a stream, wrapped in a new ``Message``.

        Sequence numbers count from 0 per stream id (``stream_id`` or the
        parent's trace id) and restart after ``done=True``. Every chunk but the
        first of a stream waits for per-trace capacity first.

        Returns:
            The chunk (not its envelope).
        """
        run = self._run
        if run is None:
            raise RuntimeError(_DETACHED)
        trace_id = parent.trace_id
        sid = stream_id or trace_id
        seqs = self._stream_seq
        last = seqs.get(sid)
        if seq is None:
            seq = 0 if last is None else last + 1
        # A done chunk ends the stream: its number is forgotten below, after the
        # emit (a failed emit leaves it recorded, as before).
        seqs[sid] = seq
        # What StreamChunk(...) and Message(...) do, minus BaseModel.__init__'s
        # frame and keyword packing (same validator, same checks and errors).
        # Validating a dict field builds a new dict, so a plain dict is not
        # copied first: the chunk and envelope never share the caller's dicts.
        if type(meta) is not dict:
            meta = dict(meta or {})
        parent_meta = parent.meta
        if type(parent_meta) is not dict:
            parent_meta = dict(parent_meta)
        chunk: StreamChunk = _validate_chunk(
            {"stream_id": sid, "seq": seq, "text": text, "done": done, "meta": meta}
        )
        message = _validate_message(
            {
                "payload": chunk,
                "headers": parent.headers,
                "trace_id": trace_id,
                "deadline_s": parent.deadline_s,
                "meta": parent_meta,
            }
        )
        traces = run.traces
        counts = traces.counts
        if last is not None:
            maxsize = run.queue_maxsize
            # wait_capacity's test first: no coroutine while the stream has room.
            if maxsize > 0 and counts.get(sid, 0) - 1 >= maxsize:
                await traces.wait_capacity(sid, maxsize)
        # self.emit(message, to=to) inlined: one coroutine less per chunk, and a
        # shallower stack to resume when the edge is full.
        io = self._io
        if io is not None and self._outgoing:
            trace_id = message.trace_id
            for floe in self._out_list if to is None else self._targets(to):
                # Transport.offer inlined for a Message (no bus, a data lane with
                # room, no producer waiting): counted after the put, as offer does.
                lane = floe.lane
                mailbox = floe.mailbox
                if (
                    io.direct
                    and lane >= 0
                    and mailbox is not None
                    and mailbox.put_nowait(message, lane)
                ):
                    if trace_id is not None:
                        counts[trace_id] = counts.get(trace_id, 0) + 1
                else:
                    await io.send(floe, message)
        if done:
            seqs.pop(sid, None)
        return chunk

    # -- receiving ----------------------------------------------------------------
    def _lanes(self, from_: Target | Sequence[Target] | None) -> list[int] | None:
        if from_ is None:
            if self._is_rookery:
                return None  # Rookery: buffer (self lane) first, then every edge
            return [f.lane for f in self._incoming.values() if f.lane != SELF_LANE]
        sources = [from_] if isinstance(from_, Node | Endpoint | str) else list(from_)
        lanes = []
        for source in sources:
            floe = self._incoming.get(source)
            if floe is None:
                name = getattr(source, "name", source)
                raise KeyError(f"Unknown target {name} for {self._owner.name}")
            lanes.append(floe.lane)
        return lanes

    def _mailbox(self) -> MailboxLike:
        mailbox = self._in_mailbox
        if mailbox is None or (not self._incoming and not len(mailbox)):
            raise RuntimeError(_NO_INCOMING)
        return mailbox

    async def fetch(self, from_: Target | Sequence[Target] | None = None) -> Any:
        """Wait for and return the next item on this context's incoming edges.

        Raises:
            KeyError: a ``from_`` source is not a predecessor.
            RuntimeError: there are no incoming edges.
            DurabilityError: a node's context on a durable flow.
        """
        io = self._io
        if io is not None and io.durable:
            if not self._is_rookery:
                raise DurabilityError(_NO_DURABLE_FETCH)
            # A durable flow's Rookery: marked delivered first (DurableTransport.fetch).
            return (await io.fetch(self._lanes(from_)))[0]  # type: ignore[attr-defined]
        delivery = await self._take(self._lanes(from_))
        item = delivery.item
        if type(item) is Carried:
            return item.item  # the caller gets what was sent; it was never counted
        if self._is_rookery and io is not None:
            # Fetching from Rookery ends the item's life for trace accounting.
            finished = io.settle(item)
            if finished is not None:
                await io.cancel_finished(finished)
        return item

    async def _take(self, lanes: list[int] | None) -> Delivery:
        """The next item on ``lanes``; on a failed run, only what is already queued."""
        mailbox = self._mailbox()
        run = self._run
        failure = run.fetch_failure if run is not None else None
        if failure is None:
            return await mailbox.get(lanes)
        try:
            return mailbox.get_nowait(lanes)
        except MailboxEmpty:
            raise failure from None

    async def fetch_any(self, from_: Target | Sequence[Target] | None = None) -> Any:
        """Return the first item available on any selected incoming edge."""
        return await self.fetch(from_)

    def fetch_nowait(self, from_: Target | Sequence[Target] | None = None) -> Any:
        """Return a waiting item now; ``asyncio.QueueEmpty`` when there is none.

        Raises:
            DurabilityError: this is a durable flow's Rookery (marking an item
                delivered waits for the journal: ``await fetch()``).
        """
        if self._io is not None and self._io.durable:
            if not self._is_rookery:
                raise DurabilityError(_NO_DURABLE_FETCH)
            raise DurabilityError(
                "fetch_nowait cannot mark a Rookery item delivered without waiting; on "
                "a durable flow use 'await flow.fetch()'"
            )
        mailbox = self._in_mailbox
        if mailbox is None:
            raise asyncio.QueueEmpty("no messages available")
        try:
            delivery = mailbox.get_nowait(self._lanes(from_))
        except MailboxEmpty:
            raise asyncio.QueueEmpty("no messages available") from None
        item = delivery.item
        if type(item) is Carried:
            return item.item
        if self._is_rookery and self._io is not None:
            self._io.finish_nowait(item)
        return item

    # -- waiting for outside input -------------------------------------------------
    async def interrupt(self, payload: Any = None) -> Any:
        """Park this trace until ``flow.resume(token, value)``; return ``value``.

        Rookery receives a ``penguiflow.Interrupt`` (``trace_id``, ``node``,
        ``payload``, ``token``). While the trace waits the node goes on with
        other items; the trace stays outstanding. See docs/interrupts.md for
        what cancel, stop and ``timeout_s`` do to a parked trace.

        Raises:
            InterruptUnavailable: not called inside a node invocation of this
                running flow.
            CancelledError: the trace was cancelled, or the flow stopped.

        .. versionadded:: 3.0
        """
        run = self._run
        parking = run.parking if run is not None else None
        if parking is None:
            name = str(getattr(self._owner, "name", self._owner))
            raise InterruptUnavailable(
                f"ctx.interrupt needs a node invocation of a running flow ({name!r} has none here)",
                node=name,
            )
        return await parking.interrupt(self, payload)

    # -- inspection ---------------------------------------------------------------
    def outgoing_count(self) -> int:
        """Number of outgoing edges (successors, plus Rookery for egress nodes)."""
        return len(self._outgoing)

    def successors(self) -> tuple[Target, ...]:
        """The targets this context sends to: successor nodes, and ``ROOKERY`` for egress.

        .. versionadded:: 3.0
        """
        return tuple(self._outgoing)

    def queue_depth_in(self) -> int:
        """Items waiting on this context's incoming edges."""
        mailbox = self._in_mailbox
        if mailbox is None:
            return 0
        depth = mailbox.depth()
        if self._self_floe is not None:
            depth += self._self_floe.queue.qsize()
        return depth

    def queue_depth_out(self) -> int:
        """Items waiting on this context's outgoing edges."""
        # A loop, not sum(<genexpr>): every event with a listener computes this.
        depth = 0
        for floe in self._out_list:
            depth += floe.queue.qsize()
        return depth

    async def call_playbook(
        self, playbook: PlaybookFactory, parent_msg: Any, *, timeout: float | None = None
    ) -> Any:
        """Run a subflow for ``parent_msg`` (see ``penguiflow.core.call_playbook``)."""
        from penguiflow._runtime.playbook import call_playbook

        return await call_playbook(playbook, parent_msg, timeout=timeout, runtime=self._runtime)

    def __repr__(self) -> str:
        return f"Context(owner={self._owner!r})"
