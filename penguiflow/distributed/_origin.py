"""``RemoteMailbox``: the origin's side of a distributed node's mailbox.

It stands where the node's local mailbox was. Items the flow puts on the
node's incoming edges are encoded and appended (in put order, in batches, by
one sender task) to the node's Redis stream; producers wait while the node's
backlog -- items sent but not yet answered -- is at capacity, locally and in
Redis (unacknowledged entries counted by ``XLEN``, since workers delete what
they acknowledge). The same append script creates this origin's return stream
if needed and refreshes its TTL, and the sender refreshes it while the mailbox
is open: workers only append to a return stream that exists, so a closed or
long-dead origin's stream is never re-created.

The node's local actor still runs, but it never receives an item: its
``get()`` is the *return pump*. It reads this origin's return stream and
delivers each result as the node would have: outputs go on the node's local
outgoing edges (or Rookery), then the input item is marked finished. So the
pump lives in a supervised actor task and stops and restarts with the flow.

Delivery rules at the origin:

* every item gets an origin-side ``ref`` (its sequence number) *before* it is
  sent; the entry carries it and its result answers with it, so a result can
  never arrive for an item the origin does not know it is waiting for;
* each item's result is delivered once: a second result for a ``ref`` is a
  duplicate (a redelivered entry, or an append whose reply was lost and was
  sent again) and is dropped; a ``ref`` this origin never issued is logged;
* results of one trace are delivered in the order their inputs were sent
  (workers may finish them in any order);
* ``flow.cancel(trace_id)`` purges the trace here (queued and outstanding
  entries are finished at once), deletes its entries from the stream and
  publishes a cancel notice so workers abort in-flight work; a bare payload
  (``Carried``) counts as an item of the trace it carries;
* a return stream this origin made once and must make again (expired, or lost
  with a Redis restart without persistence) means results may be lost: every
  item sent and not answered is sent again (its ``ref`` unchanged);
* ``aclose()`` is final: nothing is sent, read or re-created afterwards.

One module, though long: sending, the return pump and cancellation share the
pending-item bookkeeping whose ordering is what keeps results from being lost.

It stays one module past ~400 lines because the sender, the return pump and the
delivery rules share one piece of bookkeeping (the outstanding ``ref`` table):
split, each half would need the other's invariants.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from penguiflow import hosting
from penguiflow._carried import Carried
from penguiflow._logging import get_logger, is_debug_enabled
from penguiflow._tracecontext import current_carrier
from penguiflow.actors import (
    SELF_LANE,
    SYSTEM_LANE,
    Delivery,
    Mailbox,
    MailboxEmpty,
    MailboxStatistics,
)
from penguiflow.distributed._codec import decode, encode
from penguiflow.distributed._protocol import ROOKERY_CODE, CancelNotice, ResultEntry, WorkEntry
from penguiflow.distributed._redis import checkpoint, ensure_group, redis_errors
from penguiflow.errors import FlowError, FlowErrorCode, SerializationError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from redis.asyncio import Redis

    from penguiflow.core import PenguiFlow
    from penguiflow.node import Node

__all__ = ["RemoteMailbox"]

LOGGER_NAME = "penguiflow.distributed"
_log = get_logger(LOGGER_NAME)

# Make sure the return stream KEYS[2] exists (an empty stream: MAXLEN 0) and
# expires ARGV[1] ms from now; workers refuse to append to a missing one.
# ``made`` is 1 when it had to be created: if this origin had made it before,
# it expired or Redis lost it, and results may have been refused or lost.
_ENSURE_RETURN_BODY = """
local made = 0
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '0', '*', 'o', '')
  made = 1
end
redis.call('PEXPIRE', KEYS[2], ARGV[1])
"""
_ENSURE_RETURN = _ENSURE_RETURN_BODY + "return made\n"

# Then append up to ARGV[3..] to KEYS[1] while its length stays below ARGV[2]
# (0 = no limit); returns ``{made, ids}`` with the ids added, so a batch is cut
# where the backlog reached capacity. The return stream exists before any entry
# can be read.
_XADD_WITHIN_CAPACITY = (
    _ENSURE_RETURN_BODY
    + """
local cap = tonumber(ARGV[2])
local n = #ARGV - 2
if cap > 0 then
  local room = cap - redis.call('XLEN', KEYS[1])
  if room < n then n = room end
end
local ids = {}
for i = 1, n do ids[i] = redis.call('XADD', KEYS[1], '*', 'd', ARGV[i + 2]) end
return {made, ids}
"""
)

_BATCH = 128
_RETRY_S = 0.5


def _trace_of(item: Any) -> str | None:
    """The trace ``item`` belongs to: its own, or the one a bare payload carries."""
    if isinstance(item, Carried):
        return item.trace
    return getattr(item, "trace_id", None)


def _seq_of(ref: str) -> int | None:
    """The sequence number a ref stands for, or ``None`` if it is not one of ours."""
    return int(ref) if ref.isdigit() else None


class _Pending:
    """One item on its way through the remote node."""

    __slots__ = ("dropped", "entry_id", "item", "lane", "result", "sent", "seq", "trace_id", "wire")

    def __init__(self, seq: int, item: Any, lane: int, wire: str) -> None:
        self.seq = seq
        self.item = item
        self.lane = lane
        self.wire = wire
        self.trace_id: str | None = _trace_of(item)
        self.entry_id: str | None = None
        self.result: tuple[list[tuple[int, Any]], str | None] | None = None
        self.sent = 0  # outputs already delivered (a restarted pump resumes here)
        self.dropped = False


class RemoteMailbox:
    """The mailbox of a node whose work happens in worker processes.

    Implements ``penguiflow.actors.MailboxLike``: the actor kernel hosts the
    node's local actor on it, and the flow puts the node's items on it
    (``penguiflow.hosting.replace_mailbox``). Putting an item sends it to the
    workers; taking one (``get``, ``next``) runs the return pump instead, which
    delivers the workers' results into the flow and returns only a kernel
    message; ``poll`` never takes one. It has no self lane: the node's own
    controller loop runs in the worker.
    """

    def __init__(
        self,
        *,
        redis: Redis,
        flow: PenguiFlow,
        node: Node,
        stream: str,
        reply_to: str,
        cancel_channel: str,
        origin: str,
        capacity: int,
        block_ms: int,
        return_ttl_ms: int = 600_000,
    ) -> None:
        self._redis = redis
        self._flow = flow
        self._node = node
        self._name = str(node.name)
        self._stream = stream
        self._reply_to = reply_to
        self._cancel_channel = cancel_channel
        self._origin = origin
        self.capacity = capacity
        self._block_ms = block_ms
        self._return_ttl_ms = max(1, return_ttl_ms)
        self._edges: dict[int, int] = {}  # lane -> edge index; set by attach()
        self._edge_names: dict[int, str] = {}
        self.lanes = 1
        self.last_lane = SYSTEM_LANE  # next() only ever returns kernel messages
        self._closed = False
        self._next_seq = 0  # the next ref; every lower one was issued (sent or not)
        self._live: dict[int, _Pending] = {}  # every unanswered item by ref, in send order
        self._unsent: deque[_Pending] = deque()
        self._by_trace: dict[str, deque[_Pending]] = {}
        self._room_waiters: deque[asyncio.Future[None]] = deque()
        self._reserved = 0
        self._idle_waiters: list[asyncio.Future[None]] = []
        self._flushed: list[asyncio.Future[None]] = []
        self._system_items: deque[Any] = deque()
        self._sending = 0  # items of the batch being appended right now
        self._control: deque[tuple[list[str], set[str]]] = deque()
        self._wake = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self._failure: BaseException | None = None
        self._last_id = "0-0"
        self._xadd = redis.register_script(_XADD_WITHIN_CAPACITY)
        self._ensure_return = redis.register_script(_ENSURE_RETURN)
        self._refresh_due = False
        self._refresh_timer: asyncio.TimerHandle | None = None
        self._group_ready = False
        self._made_return = False  # this origin created its return stream once
        self._closed = False  # aclose() ran: nothing is sent or read again
        self._system_ready = asyncio.Event()
        self._debug = is_debug_enabled(LOGGER_NAME)

    def attach(self, lanes: dict[int, int]) -> None:
        """Record which flow edge each lane carries (``lane -> edge index``)."""
        self._edges = lanes
        self._edge_names = {lane: str(self._flow.edges[i].name) for lane, i in lanes.items()}
        self.lanes = max(1, len(lanes))

    # -- mailbox surface used by the runtime ---------------------------------------
    def __len__(self) -> int:
        return len(self._live)

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called (the local actor stopped for good)."""
        return self._closed

    def put_self(self, item: Any) -> None:
        """Refuse: a distributed node's self-edge runs in the worker, never here.

        Raises:
            RuntimeError: always.
        """
        raise RuntimeError(f"node {self._name!r} is distributed: it has no local self lane")

    def requeue_front(self, item: Any, lane: int = 0) -> None:
        """Put a kernel message back in front (the only kind ``next`` hands out)."""
        self._system_items.appendleft(item)

    def _at_capacity(self) -> bool:
        return self.capacity > 0 and len(self._live) + self._reserved >= self.capacity

    async def put(self, item: Any, lane: int = 0) -> None:
        """Send ``item`` to the node, waiting while its backlog is at capacity.

        Raises:
            SerializationError: ``item`` cannot cross a process boundary.
        """
        seq, wire = self._encode(item, lane)
        if self._at_capacity() or self._room_waiters:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._room_waiters.append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut in self._room_waiters:
                    self._room_waiters.remove(fut)
                elif not fut.cancelled():
                    self._reserved -= 1  # granted but not used: hand it on
                    self._wake_room()
                raise
            self._reserved -= 1
        self._enqueue(seq, wire, item, lane)

    def put_nowait(self, item: Any, lane: int = 0) -> bool:
        """Send ``item`` unless the backlog is at capacity (then ``False``)."""
        if self._at_capacity() or self._room_waiters:
            return False
        self._enqueue(*self._encode(item, lane), item, lane)
        return True

    def get_nowait(self, lanes: Sequence[int] | None = None) -> Delivery:
        """Raise ``MailboxEmpty``: data items are handled by the workers."""
        raise MailboxEmpty  # items are handled remotely, never taken here

    def put_system(self, item: Any) -> None:
        """Queue a kernel message (a stop request); the pump hands it over between reads."""
        self._system_items.append(item)
        self._system_ready.set()

    async def get(self, lanes: Sequence[int] | None = None) -> Delivery:
        """Deliver results from the workers until a kernel message arrives, then return it.

        The node's local actor runs this: it is the return pump.
        """
        return Delivery(await self._pump(), SYSTEM_LANE)

    def poll(self) -> Any:
        """Return ``Mailbox.NOTHING``: there is never an item to take without the pump."""
        return Mailbox.NOTHING

    async def next(self) -> Any:
        """Run the return pump until a kernel message arrives, then return it."""
        item = await self._pump()
        self.last_lane = SYSTEM_LANE
        return item

    async def _pump(self) -> Any:
        while not self._system_items:
            if self._closed:
                # Closed: the return stream is deleted; reading it again would only
                # wait for nothing. Hand over the next kernel message when it comes.
                self._system_ready.clear()
                await self._system_ready.wait()
                continue
            try:
                rows: Any = await self._redis.xread(
                    {self._reply_to: self._last_id}, count=_BATCH, block=self._block_ms
                )
                checkpoint()
                if not rows and self._made_return and self._live:
                    # Waiting for results and none came: a vanished return stream
                    # (expired, or lost by Redis) would mean none ever will.
                    if not await self._redis.exists(self._reply_to):
                        self._check_return()
                    checkpoint()
            except (OSError, redis_errors()) as exc:
                _log.warning("distributed_return_retry", node=self._name, error=repr(exc))
                # Redis may have restarted without its data: the sender checks the
                # return stream as soon as Redis answers again (_on_return_made).
                self._check_return()
                await asyncio.sleep(_RETRY_S)
                continue
            for _stream, entries in rows or ():
                for entry_id, fields in entries:
                    await self._on_result(fields["d"])
                    self._last_id = entry_id
                try:
                    await self._redis.xdel(self._reply_to, *(e[0] for e in entries))
                    checkpoint()
                except (OSError, redis_errors()) as exc:
                    # Already delivered (reads go on from _last_id): a leftover entry
                    # is only space, freed when the stream is deleted or expires.
                    _log.warning("distributed_return_retry", node=self._name, error=repr(exc))
        return self._system_items.popleft()

    def purge(
        self, predicate: Callable[[Any], bool], *, lanes: Sequence[int] | None = None
    ) -> list[Delivery]:
        """Drop the matching items (a trace cancel); workers are told to abort them.

        ``lanes`` restricts the purge to those lanes (``None``: every lane).
        """
        dropped = [
            p
            for p in self._live.values()
            if (lanes is None or p.lane in lanes) and predicate(p.item)
        ]
        if not dropped:
            return []
        for pending in dropped:
            pending.dropped = True
            self._forget(pending)
        self._unsent = deque(p for p in self._unsent if not p.dropped)
        ids = [p.entry_id for p in dropped if p.entry_id is not None]
        traces = {p.trace_id for p in dropped if p.trace_id is not None}
        self._control.append((ids, traces))
        self._kick()
        return [Delivery(p.item, p.lane) for p in dropped]

    def close(self) -> list[Delivery]:
        """Return no leftovers: queued entries stay in Redis for the workers."""
        self._closed = True
        return []

    def snapshot(self, lane: int | None = None) -> tuple[Any, ...]:
        """Return the items sent to the workers and not yet answered (``lane``: one edge)."""
        if lane == SELF_LANE:
            return ()
        return tuple(p.item for p in self._live.values() if lane is None or p.lane == lane)

    def depth(self, lane: int | None = None) -> int:
        """Count the items sent to the workers and not yet answered (``lane``: one edge)."""
        if lane is None:
            return len(self._live)
        return sum(1 for p in self._live.values() if p.lane == lane)

    def statistics(self) -> MailboxStatistics:
        """Return a frozen ``MailboxStatistics`` of the unanswered backlog."""
        return MailboxStatistics(
            depths=tuple(self.depth(lane) for lane in range(self.lanes)),
            capacity=self.capacity,
            system_depth=0,
            self_depth=0,
            waiting_producers=len(self._room_waiters),
            waiting_consumers=0,
            closed=False,
        )

    async def wait_empty(self) -> None:
        """Return once every sent item's result was delivered (or purged)."""
        while self._live:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._idle_waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self._idle_waiters:
                    self._idle_waiters.remove(fut)

    # -- sending ------------------------------------------------------------------------
    def _encode(self, item: Any, lane: int) -> tuple[int, str]:
        """Encode ``item`` as a work entry with a fresh ref; return ``(ref, json)``."""
        if self._closed:
            raise RuntimeError(
                f"the deployment of node {self._name!r} is closed: nothing more can be sent"
            )
        if self._failure is not None:
            raise RuntimeError(f"sending to node {self._name!r} failed") from self._failure
        try:
            tree = encode(item)
        except SerializationError as exc:
            raise SerializationError(
                f"cannot send to distributed node {self._name!r}: {exc}",
                path=exc.path,
                type_name=exc.type_name,
            ) from exc
        seq = self._next_seq
        self._next_seq += 1
        return seq, WorkEntry(
            ref=str(seq),
            origin=self._origin,
            reply_to=self._reply_to,
            edge=self._edges.get(lane, -1),
            edge_name=self._edge_names.get(lane, ""),
            trace_id=_trace_of(item),
            item=tree,
            trace_context=current_carrier() or None,
        ).model_dump_json()

    def _enqueue(self, seq: int, wire: str, item: Any, lane: int) -> None:
        pending = _Pending(seq, item, lane, wire)
        self._live[pending.seq] = pending
        self._unsent.append(pending)
        if pending.trace_id is not None:
            self._by_trace.setdefault(pending.trace_id, deque()).append(pending)
        self._kick()

    def _kick(self) -> None:
        if self._closed:
            return  # closing is final: no sender (and no stream) comes back
        self._wake.set()
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_loop())
            self._sender.add_done_callback(self._sender_done)
            self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        # The return stream's TTL is refreshed at a third of its length while the
        # sender lives (even with the flow stopped: results may still come back).
        self._refresh_timer = asyncio.get_running_loop().call_later(
            self._return_ttl_ms / 3000, self._on_refresh_due
        )

    def _on_refresh_due(self) -> None:
        if self._closed:
            return
        self._refresh_due = True
        self._wake.set()
        self._schedule_refresh()

    def _check_return(self) -> None:
        """Have the sender make sure the return stream exists (after a Redis error)."""
        if self._sender is not None and not self._closed:
            self._refresh_due = True
            self._wake.set()

    def _sender_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._failure = task.exception()
            _log.error("distributed_sender_failed", node=self._name, error=repr(self._failure))

    async def _send_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._control or self._unsent or self._refresh_due:
                try:
                    if not self._group_ready:
                        await ensure_group(self._redis, self._stream)
                        self._group_ready = True
                    if self._refresh_due:
                        made = await self._ensure_return(
                            keys=[self._stream, self._reply_to], args=[self._return_ttl_ms]
                        )
                        self._refresh_due = False
                        self._on_return_made(bool(made), ())
                    elif self._control:
                        await self._send_control(*self._control[0])
                        self._control.popleft()
                    else:
                        await self._send_batch()
                    checkpoint()
                except (OSError, redis_errors()) as exc:
                    _log.warning("distributed_send_retry", node=self._name, error=repr(exc))
                    self._refresh_due = True  # Redis may come back empty: check first
                    await asyncio.sleep(_RETRY_S)
            self._wake_flushed()

    def _on_return_made(self, made: bool, batch: Sequence[_Pending]) -> None:
        """Note that the return stream exists; if it had to be re-created, resend.

        A return stream this origin made before and found missing expired (its
        refresh came too late) or was lost with a Redis restart without
        persistence: results appended to it, or refused while it was missing,
        are gone, and so may be the node stream's entries. Every item sent and
        not answered (except ``batch``, just appended) is sent again; a result
        that does arrive twice is dropped by ref.
        """
        if not made:
            self._made_return = True
            return
        if not self._made_return:
            self._made_return = True  # the first creation
            return
        just_sent = {p.seq for p in batch}
        # An item with an entry id was appended and is not queued to send.
        lost = [
            p
            for p in self._live.values()
            if p.entry_id is not None
            and p.result is None
            and not p.dropped
            and p.seq not in just_sent
        ]
        _log.warning(
            "distributed_return_lost",
            node=self._name,
            resent=len(lost),
            hint="return stream expired or lost with Redis data; resending unanswered items",
        )
        self._last_id = "0-0"  # a new stream: its ids start over
        self._group_ready = False  # the node stream's group may be gone too
        for pending in lost:
            pending.entry_id = None
        self._unsent.extendleft(reversed(lost))

    async def _send_batch(self) -> None:
        batch: list[_Pending] = []
        while self._unsent and len(batch) < _BATCH:
            pending = self._unsent.popleft()
            # An item answered already was in a batch whose reply was lost: its
            # first copy reached the workers, so it is not sent again.
            if pending.seq in self._live:
                batch.append(pending)
        if not batch:
            return
        self._sending = len(batch)
        try:
            args: list[str | int] = [
                self._return_ttl_ms,
                self.capacity,
                *(p.wire for p in batch),
            ]
            made, ids = await self._xadd(keys=[self._stream, self._reply_to], args=args)
        except BaseException:
            # The reply may be lost after Redis appended the batch: sending it again
            # may duplicate entries, and their second results are dropped by ref.
            self._unsent.extendleft(reversed([p for p in batch if not p.dropped]))
            raise
        finally:
            self._sending = 0
        for pending, entry_id in zip(batch, ids, strict=False):
            # The item may already be answered (its result can arrive before this
            # reply): the entry id only serves to delete a cancelled item's entry.
            pending.entry_id = entry_id
            if pending.dropped:  # cancelled while being sent
                self._control.append(([entry_id], set()))
        self._on_return_made(bool(made), batch[: len(ids)])
        rest = [p for p in batch[len(ids) :] if not p.dropped]
        if rest:
            # The stream is at capacity (other origins share it): wait for workers.
            self._unsent.extendleft(reversed(rest))
            await asyncio.sleep(0.01)

    async def _send_control(self, ids: list[str], traces: set[str]) -> None:
        if ids:
            await self._redis.xdel(self._stream, *ids)
        for trace_id in traces:
            notice = CancelNotice(trace_id=trace_id).model_dump_json()
            await self._redis.publish(self._cancel_channel, notice)

    # -- results ------------------------------------------------------------------------
    async def _on_result(self, data: str) -> None:
        try:
            result = ResultEntry.model_validate_json(data)
        except ValueError as exc:
            # Not ours to crash on: a stray entry must not stop every later result.
            _log.error("distributed_bad_result", node=self._name, error=repr(exc))
            return
        seq = _seq_of(result.ref)
        pending = self._live.get(seq) if seq is not None else None
        if pending is None:
            if seq is not None and seq < self._next_seq:
                # Issued here and finished since (answered or cancelled): provably
                # a second result for the same item.
                if self._debug:
                    _log.debug("distributed_duplicate_dropped", node=self._name, ref=result.ref)
            else:
                _log.warning("distributed_unknown_result", node=self._name, ref=result.ref)
            return
        if pending.result is None:
            error = result.error
            try:
                outputs = [(code, decode(tree)) for code, tree in result.outputs]
            except SerializationError as exc:
                outputs, error = [], str(exc)
            pending.result = (outputs, error)
        elif self._debug:
            # A duplicate of a result held back or interrupted: the drain below
            # resumes an interrupted delivery where it stopped (pending.sent).
            _log.debug("distributed_duplicate_dropped", node=self._name, ref=result.ref)
        if pending.trace_id is None:
            await self._deliver_result(pending)
            return
        # Results of one trace leave in send order: deliver from the head while ready.
        queue = self._by_trace.get(pending.trace_id)
        while queue and queue[0].result is not None:
            await self._deliver_result(queue[0])
            queue = self._by_trace.get(pending.trace_id)

    async def _deliver_result(self, pending: _Pending) -> None:
        assert pending.result is not None
        outputs, error = pending.result
        if error is not None:
            await self._fail(pending, error)
            pending.result = (outputs, None)  # reported once, even if delivery resumes
        flow = self._flow
        for index in range(pending.sent, len(outputs)):
            code, item = outputs[index]
            try:
                if code == ROOKERY_CODE:
                    await hosting.deliver_to_rookery(flow, item, source=self._node)
                else:
                    await hosting.inject(flow, code, item)
            except (KeyError, IndexError) as exc:
                # An edge this flow does not have: the worker built another graph.
                _log.error("distributed_bad_result", node=self._name, error=repr(exc))
            if pending.dropped:
                return  # cancelled meanwhile: purge() already finished the input
            pending.sent = index + 1
        if pending.dropped:
            return
        self._forget(pending)
        await hosting.finish(flow, pending.item)

    async def _fail(self, pending: _Pending, error: str) -> None:
        _log.error(
            "distributed_node_failed", node=self._name, trace_id=pending.trace_id, error=error
        )
        if pending.trace_id is not None and hosting.emits_errors(self._flow):
            flow_error = FlowError(
                trace_id=pending.trace_id,
                node_name=self._name,
                node_id=self._node.node_id,
                code=FlowErrorCode.NODE_EXCEPTION,
                message=error,
            )
            await hosting.deliver_to_rookery(self._flow, flow_error, source=self._node)

    def _forget(self, pending: _Pending) -> None:
        self._live.pop(pending.seq, None)
        if pending.trace_id is not None:
            queue = self._by_trace.get(pending.trace_id)
            if queue is not None:
                queue.remove(pending)
                if not queue:
                    del self._by_trace[pending.trace_id]
        self._wake_room()
        if not self._live:
            waiters, self._idle_waiters = self._idle_waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    def _wake_room(self) -> None:
        while self._room_waiters and not self._at_capacity():
            fut = self._room_waiters.popleft()
            if not fut.done():
                self._reserved += 1
                fut.set_result(None)

    # -- lifecycle ----------------------------------------------------------------------
    async def flush(self) -> None:
        """Return once every item put so far is in Redis (and cancels were sent)."""
        while self._unsent or self._control or self._sending:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._flushed.append(fut)
            await fut

    def _wake_flushed(self) -> None:
        if not self._unsent and not self._control:
            waiters, self._flushed = self._flushed, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def aclose(self) -> None:
        """Stop sending and reading for good (items not yet sent stay unsent).

        Closing is final: a later put raises ``RuntimeError`` and nothing
        re-creates this origin's streams.
        """
        self._closed = True
        self._system_ready.set()  # a pump waiting on Redis stops reading at once
        sender, self._sender = self._sender, None
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
            self._refresh_timer = None
        if sender is not None:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
