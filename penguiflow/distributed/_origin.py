"""``RemoteMailbox``: the origin's side of a distributed node's mailbox.

It stands where the node's local mailbox was. Items the flow puts on the
node's incoming edges are encoded and appended (in put order, in batches, by
one sender task) to the node's Redis stream; producers wait while the node's
backlog -- items sent but not yet answered -- is at capacity, locally and in
Redis (unacknowledged entries counted by ``XLEN``, since workers delete what
they acknowledge).

The node's local actor still runs, but it never receives an item: its
``get()`` is the *return pump*. It reads this origin's return stream and
delivers each result as the node would have: outputs go on the node's local
outgoing edges (or Rookery), then the input item is marked finished. So the
pump lives in a supervised actor task and stops and restarts with the flow.

Delivery rules at the origin:

* each work entry's result is delivered once (a redelivered entry's second
  result finds no outstanding entry and is dropped);
* results of one trace are delivered in the order their inputs were sent
  (workers may finish them in any order);
* ``flow.cancel(trace_id)`` purges the trace here (queued and outstanding
  entries are finished at once), deletes its entries from the stream and
  publishes a cancel notice so workers abort in-flight work.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from typing import TYPE_CHECKING, Any

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
from penguiflow.distributed import _bridge
from penguiflow.distributed._codec import decode, encode
from penguiflow.distributed._redis import checkpoint, ensure_group, redis_errors
from penguiflow.distributed._wire import ROOKERY_CODE, CancelNotice, ResultEntry, WorkEntry
from penguiflow.errors import FlowError, FlowErrorCode, SerializationError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from redis.asyncio import Redis

    from penguiflow.core import PenguiFlow
    from penguiflow.node import Node

__all__ = ["RemoteMailbox"]

LOGGER_NAME = "penguiflow.distributed"
_log = get_logger(LOGGER_NAME)

# Append up to ARGV[2..] while the stream's length stays below ARGV[1] (0 = no limit);
# returns the ids added, so a batch is cut where the backlog reached capacity.
_XADD_WITHIN_CAPACITY = """
local cap = tonumber(ARGV[1])
local n = #ARGV - 1
if cap > 0 then
  local room = cap - redis.call('XLEN', KEYS[1])
  if room < n then n = room end
end
local ids = {}
for i = 1, n do ids[i] = redis.call('XADD', KEYS[1], '*', 'd', ARGV[i + 1]) end
return ids
"""

_BATCH = 128
_RETRY_S = 0.5


class _Pending:
    """One item on its way through the remote node."""

    __slots__ = ("dropped", "entry_id", "item", "lane", "result", "sent", "seq", "trace_id", "wire")

    def __init__(self, seq: int, item: Any, lane: int, wire: str) -> None:
        self.seq = seq
        self.item = item
        self.lane = lane
        self.wire = wire
        self.trace_id: str | None = getattr(item, "trace_id", None)
        self.entry_id: str | None = None
        self.result: tuple[list[tuple[int, Any]], str | None] | None = None
        self.sent = 0  # outputs already delivered (a restarted pump resumes here)
        self.dropped = False


class RemoteMailbox(Mailbox):
    """The mailbox of a node whose work happens in worker processes.

    A ``Mailbox`` subclass so the actor kernel can host the node's local actor
    on it; every method the runtime uses is overridden, and the inherited lanes
    stay empty. Taking an item (``get``, or the kernel's fast path) runs the
    return pump instead and never returns.
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
    ) -> None:
        super().__init__(0)
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
        self._edges: dict[int, int] = {}  # lane -> edge index; set by attach()
        self._edge_names: dict[int, str] = {}
        self.lanes = 1
        self._seq = itertools.count()
        self._live: dict[int, _Pending] = {}  # every pending item, in send order
        self._unsent: deque[_Pending] = deque()
        self._outstanding: dict[str, _Pending] = {}
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
        self._debug = is_debug_enabled(LOGGER_NAME)

    def attach(self, lanes: dict[int, int]) -> None:
        """Record which flow edge each lane carries (``lane -> edge index``)."""
        self._edges = lanes
        self._edge_names = {lane: str(self._flow.edges[i].name) for lane, i in lanes.items()}
        self.lanes = max(1, len(lanes))

    # -- mailbox surface used by the runtime ---------------------------------------
    def __len__(self) -> int:
        return len(self._live)

    def _at_capacity(self) -> bool:
        return self.capacity > 0 and len(self._live) + self._reserved >= self.capacity

    async def put(self, item: Any, lane: int = 0) -> None:
        """Send ``item`` to the node, waiting while its backlog is at capacity.

        Raises:
            SerializationError: ``item`` cannot cross a process boundary.
        """
        wire = self._encode(item, lane)
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
        self._enqueue(item, lane, wire)

    def put_nowait(self, item: Any, lane: int = 0) -> bool:
        """Send ``item`` unless the backlog is at capacity (then ``False``)."""
        if self._at_capacity() or self._room_waiters:
            return False
        self._enqueue(item, lane, self._encode(item, lane))
        return True

    def get_nowait(self, lanes: Sequence[int] | None = None) -> Delivery:
        """Raise ``MailboxEmpty``: data items are handled by the workers."""
        raise MailboxEmpty  # items are handled remotely, never taken here

    def put_system(self, item: Any) -> None:
        """Queue a kernel message (a stop request); the pump hands it over between reads."""
        self._system_items.append(item)

    async def get(self, lanes: Sequence[int] | None = None) -> Delivery:
        """Deliver results from the workers until a kernel message arrives, then return it.

        The node's local actor runs this: it is the return pump.
        """
        return Delivery(await self._pump(), SYSTEM_LANE)

    async def _next(self) -> Any:
        item = await self._pump()
        self._last_lane = SYSTEM_LANE
        return item

    async def _pump(self) -> Any:
        while not self._system_items:
            try:
                rows: Any = await self._redis.xread(
                    {self._reply_to: self._last_id}, count=_BATCH, block=self._block_ms
                )
                checkpoint()
            except (OSError, redis_errors()) as exc:
                _log.warning("distributed_return_retry", node=self._name, error=repr(exc))
                await asyncio.sleep(_RETRY_S)
                continue
            for _stream, entries in rows or ():
                for entry_id, fields in entries:
                    await self._on_result(fields["d"])
                    self._last_id = entry_id
                await self._redis.xdel(self._reply_to, *(e[0] for e in entries))
                checkpoint()
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
    def _encode(self, item: Any, lane: int) -> str:
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
        return WorkEntry(
            origin=self._origin,
            reply_to=self._reply_to,
            edge=self._edges.get(lane, -1),
            edge_name=self._edge_names.get(lane, ""),
            trace_id=getattr(item, "trace_id", None),
            item=tree,
            trace_context=current_carrier() or None,
        ).model_dump_json()

    def _enqueue(self, item: Any, lane: int, wire: str) -> None:
        pending = _Pending(next(self._seq), item, lane, wire)
        self._live[pending.seq] = pending
        self._unsent.append(pending)
        if pending.trace_id is not None:
            self._by_trace.setdefault(pending.trace_id, deque()).append(pending)
        self._kick()

    def _kick(self) -> None:
        self._wake.set()
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._send_loop())
            self._sender.add_done_callback(self._sender_done)

    def _sender_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._failure = task.exception()
            _log.error("distributed_sender_failed", node=self._name, error=repr(self._failure))

    async def _send_loop(self) -> None:
        group_ready = False
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._control or self._unsent:
                try:
                    if not group_ready:
                        await ensure_group(self._redis, self._stream)
                        group_ready = True
                    if self._control:
                        await self._send_control(*self._control[0])
                        self._control.popleft()
                    else:
                        await self._send_batch()
                    checkpoint()
                except (OSError, redis_errors()) as exc:
                    _log.warning("distributed_send_retry", node=self._name, error=repr(exc))
                    await asyncio.sleep(_RETRY_S)
            self._wake_flushed()

    async def _send_batch(self) -> None:
        batch = [self._unsent.popleft() for _ in range(min(_BATCH, len(self._unsent)))]
        self._sending = len(batch)
        try:
            args: list[str | int] = [self.capacity, *(p.wire for p in batch)]
            ids = await self._xadd(keys=[self._stream], args=args)
        except BaseException:
            self._unsent.extendleft(reversed([p for p in batch if not p.dropped]))
            raise
        finally:
            self._sending = 0
        for pending, entry_id in zip(batch, ids, strict=False):
            pending.entry_id = entry_id
            if pending.dropped:  # cancelled while being sent
                self._control.append(([entry_id], set()))
            else:
                self._outstanding[entry_id] = pending
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
        pending = self._outstanding.get(result.ref)
        if pending is None or pending.result is not None:
            if self._debug:
                _log.debug("distributed_duplicate_dropped", node=self._name, ref=result.ref)
            return
        error = result.error
        try:
            outputs = [(code, decode(tree)) for code, tree in result.outputs]
        except SerializationError as exc:
            outputs, error = [], str(exc)
        pending.result = (outputs, error)
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
        flow = self._flow
        for index in range(pending.sent, len(outputs)):
            code, item = outputs[index]
            try:
                if code == ROOKERY_CODE:
                    await flow._emit_to_rookery(item, source=self._node)
                else:
                    await _bridge.inject(flow, code, item)
            except (KeyError, IndexError) as exc:
                # An edge this flow does not have: the worker built another graph.
                _log.error("distributed_bad_result", node=self._name, error=repr(exc))
            if pending.dropped:
                return  # cancelled meanwhile: purge() already finished the input
            pending.sent = index + 1
        if pending.dropped:
            return
        self._forget(pending)
        await _bridge.finish(flow, pending.item)

    async def _fail(self, pending: _Pending, error: str) -> None:
        _log.error(
            "distributed_node_failed", node=self._name, trace_id=pending.trace_id, error=error
        )
        if pending.trace_id is not None and _bridge.emits_errors(self._flow):
            flow_error = FlowError(
                trace_id=pending.trace_id,
                node_name=self._name,
                node_id=self._node.node_id,
                code=FlowErrorCode.NODE_EXCEPTION,
                message=error,
            )
            await self._flow._emit_to_rookery(flow_error, source=self._node)

    def _forget(self, pending: _Pending) -> None:
        self._live.pop(pending.seq, None)
        if pending.entry_id is not None:
            self._outstanding.pop(pending.entry_id, None)
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
        """Stop the sender task (items not yet sent stay unsent)."""
        sender, self._sender = self._sender, None
        if sender is not None:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
