"""``NodeHost``: a worker process's share of one or more distributed nodes.

For each hosted node the host builds ``concurrency`` copies of the flow (one
call of the user's ``build_flow`` each) and runs each copy normally, so the
node's actor keeps its ``NodePolicy`` (retries, timeout, backoff) and its
supervision. A copy handles one stream entry at a time -- the node's
concurrency is 1 per copy, as in a single process:

1. read an entry (``XREADGROUP``), or claim one a dead worker left idle for
   ``claim_idle_ms`` (``XAUTOCLAIM``);
2. put the decoded item on the edge it came on, wait until the copy is idle,
   while a heartbeat keeps the entry from being claimed;
3. in one transaction: append the collected outputs to the origin's return
   stream, ``XACK`` and ``XDEL`` the entry.

A worker dying between 2 and 3 means another worker redoes the entry: delivery
is at least once, and the origin drops the second result.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from penguiflow._logging import get_logger
from penguiflow._tracecontext import expect_remote_parent
from penguiflow.distributed import _bridge
from penguiflow.distributed._codec import decode, encode
from penguiflow.distributed._redis import checkpoint, ensure_group, redis_errors
from penguiflow.distributed._wire import (
    GROUP,
    ROOKERY_CODE,
    CancelNotice,
    Keys,
    ResultEntry,
    WorkEntry,
)
from penguiflow.errors import SerializationError

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from penguiflow.core import PenguiFlow

__all__ = ["FlowFactory", "NodeHost"]

_log = get_logger("penguiflow.distributed")

FlowFactory = Callable[[], Any]
"""Builds the flow: returns a ``PenguiFlow`` or ``(PenguiFlow, registry)``."""

_CANCEL_TTL_S = 600.0


class NodeHost:
    """Hosts distributed nodes of one flow in this process.

    Args:
        redis: a client created with ``decode_responses=True``.
        keys: the flow's key names (same prefix and flow name as the origin).
        build: the flow factory (called once per copy).
        nodes: names of the nodes to host.
        concurrency: copies per node, i.e. entries handled at once per node.
        worker_id: unique name of this worker (consumer names derive from it).
        claim_idle_ms: entries idle longer than this are taken from their consumer.
        block_ms: how long one stream read blocks.
        max_deliveries: an entry delivered more often is answered with an error.
        prefetch: entries one copy reads at once (more saves round trips; entries
            read but waiting are not available to other workers).
    """

    def __init__(
        self,
        redis: Redis,
        *,
        keys: Keys,
        build: FlowFactory,
        nodes: Sequence[str],
        concurrency: int = 1,
        worker_id: str,
        claim_idle_ms: int = 30_000,
        block_ms: int = 1000,
        max_deliveries: int = 5,
        prefetch: int = 1,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._build = build
        self._nodes = tuple(nodes)
        self._concurrency = max(1, concurrency)
        self.worker_id = worker_id
        self._claim_idle_ms = claim_idle_ms
        self._block_ms = block_ms
        self._max_deliveries = max_deliveries
        self._prefetch = max(1, prefetch)
        self._flows: list[PenguiFlow] = []
        self._cancelled: dict[str, float] = {}
        self.processed = 0
        self._progress = asyncio.Condition()
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; the entry in hand is finished first."""
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._keys.cancel_channel)
        try:
            slots = []
            for name in self._nodes:
                await ensure_group(self._redis, self._keys.node_stream(name))
                slots += [self._start_slot(name, index) for index in range(self._concurrency)]
            async with asyncio.TaskGroup() as group:
                group.create_task(self._listen(pubsub, stop))
                for flow, node, collector, consumer in slots:
                    group.create_task(self._serve(flow, node, collector, consumer, stop))
                self.ready.set()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _start_slot(self, name: str, index: int) -> tuple[PenguiFlow, Any, Any, str]:
        built = self._build()
        flow, registry = built if isinstance(built, tuple) else (built, None)
        node = _bridge.find_node(flow, name)
        collector = _bridge.mount_worker(flow, node)
        flow.run(registry=registry)
        self._flows.append(flow)
        return flow, node, collector, f"{self.worker_id}-{name}-{index}"

    # -- cancellation ---------------------------------------------------------------
    async def _listen(self, pubsub: Any, stop: asyncio.Event) -> None:
        while not stop.is_set():
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            checkpoint()
            if message is None:
                continue
            trace_id = CancelNotice.model_validate_json(message["data"]).trace_id
            now = time.monotonic()
            self._cancelled = {t: at for t, at in self._cancelled.items() if at > now}
            self._cancelled[trace_id] = now + _CANCEL_TTL_S
            for flow in self._flows:
                await flow.cancel(trace_id)  # False when the copy has nothing of it

    def _is_cancelled(self, trace_id: str | None) -> bool:
        return trace_id is not None and trace_id in self._cancelled

    # -- serving --------------------------------------------------------------------
    async def _serve(
        self, flow: PenguiFlow, node: Any, collector: Any, consumer: str, stop: asyncio.Event
    ) -> None:
        stream = self._keys.node_stream(node.name)
        held: dict[str, None] = {}  # entries read and not yet answered (heartbeat keeps them)
        next_claim = 0.0
        try:
            async with asyncio.TaskGroup() as group:
                beat = group.create_task(self._heartbeat(stream, consumer, held))
                try:
                    while not stop.is_set():
                        batch = []
                        if time.monotonic() >= next_claim:
                            next_claim = time.monotonic() + self._claim_idle_ms / 2000
                            batch = await self._claim(stream, consumer)
                        if not batch:
                            batch = await self._read(stream, consumer)
                        checkpoint()
                        held.update(dict.fromkeys(entry_id for entry_id, _, _ in batch))
                        # Entries in hand are answered even when stopping: none is left
                        # to wait for the idle timeout of a worker that said goodbye.
                        for entry_id, data, deliveries in batch:
                            await self._handle(
                                flow, collector, stream, consumer, entry_id, data, deliveries
                            )
                            del held[entry_id]
                finally:
                    beat.cancel()
        finally:
            await flow.stop()

    async def _claim(self, stream: str, consumer: str) -> list[tuple[str, str, int]]:
        reply: Any = await self._redis.xautoclaim(
            stream, GROUP, consumer, min_idle_time=self._claim_idle_ms, count=1
        )
        claimed = [(entry_id, fields) for entry_id, fields in reply[1] if fields is not None]
        if not claimed:
            return []
        entry_id, fields = claimed[0]
        info: Any = await self._redis.xpending_range(stream, GROUP, entry_id, entry_id, 1)
        deliveries = int(info[0]["times_delivered"]) if info else 1
        _log.info("distributed_entry_claimed", stream=stream, entry=entry_id, deliveries=deliveries)
        return [(entry_id, fields["d"], deliveries)]

    async def _read(self, stream: str, consumer: str) -> list[tuple[str, str, int]]:
        rows: Any = await self._redis.xreadgroup(
            GROUP, consumer, {stream: ">"}, count=self._prefetch, block=self._block_ms
        )
        return [
            (entry_id, fields["d"], 1)
            for _stream, entries in rows or ()
            for entry_id, fields in entries
        ]

    async def _handle(
        self,
        flow: PenguiFlow,
        collector: Any,
        stream: str,
        consumer: str,
        entry_id: str,
        data: str,
        deliveries: int,
    ) -> None:
        work = WorkEntry.model_validate_json(data)
        if self._is_cancelled(work.trace_id):
            await self._ack(stream, entry_id)
            return
        if deliveries > self._max_deliveries:
            outputs: list[tuple[int, Any]] = []
            error: str | None = f"entry {entry_id} was delivered {deliveries} times; giving up"
        else:
            expect_remote_parent(work.trace_id, work.trace_context)
            outputs, error = await self._run(flow, collector, work)
        if self._is_cancelled(work.trace_id):
            await self._ack(stream, entry_id)
            return
        try:
            encoded = [(code, encode(item)) for code, item in outputs]
        except SerializationError as exc:
            encoded, error = [], f"an output cannot cross a process boundary: {exc}"
        result = ResultEntry(
            ref=entry_id, deliveries=deliveries, worker=consumer, outputs=encoded, error=error
        ).model_dump_json()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xadd(work.reply_to, {"d": result})
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()
        await self._count()

    async def _run(
        self, flow: PenguiFlow, collector: Any, work: WorkEntry
    ) -> tuple[list[tuple[int, Any]], str | None]:
        """Run one entry through this copy; return its outputs, or an error text."""
        here = _bridge.edge_name(flow, work.edge)
        if here != work.edge_name:
            return [], (
                f"the worker's flow differs from the origin's: edge {work.edge} is "
                f"{here!r} here and {work.edge_name!r} there"
            )
        try:
            item = decode(work.item)
        except SerializationError as exc:
            return [], f"cannot rebuild the item: {exc}"
        try:
            await _bridge.inject(flow, work.edge, item)
            await flow.wait_idle()
        except Exception as exc:  # a runtime failure, not the node's (policy handles those)
            _log.exception("distributed_entry_failed", edge=work.edge_name, error=repr(exc))
            collector.take()
            return [], f"handling failed in the worker: {exc!r}"
        outputs: list[tuple[int, Any]] = collector.take()
        outputs += [(ROOKERY_CODE, x) for x in _bridge.take_rookery_buffer(flow)]
        return outputs, None

    async def _ack(self, stream: str, entry_id: str) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            await pipe.execute()
        await self._count()

    async def _count(self) -> None:
        async with self._progress:
            self.processed += 1
            self._progress.notify_all()

    async def wait_processed(self, count: int) -> None:
        """Return once ``count`` entries were answered or dropped by this host."""
        async with self._progress:
            await self._progress.wait_for(lambda: self.processed >= count)

    async def _heartbeat(self, stream: str, consumer: str, held: dict[str, None]) -> None:
        # Re-claiming the entries in hand resets their idle time, so a slow handler
        # (or a prefetched entry waiting its turn) is not mistaken for a dead worker.
        period = self._claim_idle_ms / 3000
        while True:
            await asyncio.sleep(period)
            if not held:
                continue
            try:
                await self._redis.xclaim(stream, GROUP, consumer, 0, list(held), justid=True)
                checkpoint()
            except redis_errors() as exc:
                _log.warning("distributed_heartbeat_failed", stream=stream, error=repr(exc))
