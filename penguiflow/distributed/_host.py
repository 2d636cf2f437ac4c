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
3. in one script: append the collected outputs to the origin's return stream
   (only if it exists: a closed origin's stream is not re-created), ``XACK`` and
   ``XDEL`` the entry.

A worker dying between 2 and 3 means another worker redoes the entry: delivery
is at least once, and the origin drops the second result.

Redis errors that may pass (connection loss, timeouts, a restarting or loading
server, a stream or group that vanished with a restart) are retried with a
capped backoff and logged at WARNING (``distributed_worker_retry``); the slots
stay up. Anything else ends the worker. A slot that stops cleanly deletes its
consumer when it holds nothing, and each worker deletes the consumers that
other workers left idle (nothing pending) past ``stale_consumer_ms``.

The module is long because reading, answering, claiming, sweeping and their
retries are one protocol over the same stream and group: split, each half
would need the other's invariants.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from penguiflow import hosting
from penguiflow._logging import get_logger
from penguiflow._tracecontext import expect_remote_parent
from penguiflow.distributed._codec import decode, encode
from penguiflow.distributed._collector import edge_name, mount_worker
from penguiflow.distributed._protocol import (
    GROUP,
    ROOKERY_CODE,
    CancelNotice,
    Keys,
    ResultEntry,
    WorkEntry,
)
from penguiflow.distributed._redis import checkpoint, ensure_group, redis_errors
from penguiflow.distributed.ratelimit import RedisRateLimiter
from penguiflow.errors import SerializationError

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from penguiflow.core import PenguiFlow

__all__ = ["FlowFactory", "NodeHost", "transient"]

_log = get_logger("penguiflow.distributed")

FlowFactory = Callable[[], Any]
"""Builds the flow: returns a ``PenguiFlow`` or ``(PenguiFlow, registry)``."""

_CANCEL_TTL_S = 600.0
_BACKOFF_FIRST_S = 0.05
_BACKOFF_MAX_S = 5.0

# KEYS: return stream, node stream; ARGV: group, entry id, result. The result is
# appended only to a return stream that exists (its origin created it and keeps
# it alive); the ack and delete cannot fail the script (pcall): after a Redis
# restart the group may be gone while the result is still worth delivering.
_ANSWER = """
local appended = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('XADD', KEYS[1], '*', 'd', ARGV[3])
  appended = 1
end
redis.pcall('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.pcall('XDEL', KEYS[2], ARGV[2])
return appended
"""

# KEYS: node stream; ARGV: group, consumer. Deletes the consumer (1) only if it
# holds no entry (else 0): a deleted consumer's pending entries could never be
# claimed again.
_DELETE_IDLE_CONSUMER = """
local held = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #held > 0 then return 0 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# KEYS: node stream; ARGV: group, consumer, entry ids. The heartbeat: resets the
# idle time of the entries this consumer still owns, and returns them. An entry
# another worker claimed meanwhile (this one was frozen past the claim idle time)
# is left to it: claiming it back would pass it back and forth between two live
# workers. Nothing is claimed with a min idle time of 0 unless it is ours.
_REFRESH_HELD = """
local kept = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p > 0 and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    kept[#kept + 1] = ARGV[i]
  end
end
return kept
"""


def transient(exc: BaseException) -> bool:
    """Whether a Redis call that raised ``exc`` may succeed if tried again later."""
    from redis.exceptions import (
        AuthenticationError,
        AuthorizationError,
        ConnectionError,
        ResponseError,
        TimeoutError,
    )

    if isinstance(exc, AuthenticationError | AuthorizationError):
        return False
    if isinstance(exc, OSError | ConnectionError | TimeoutError):
        return True  # also BusyLoadingError: a restarted server loading its data
    if isinstance(exc, ResponseError):
        # UNBLOCKED: the stream was deleted under a blocked read (its group with it).
        return str(exc).startswith(("NOGROUP", "UNBLOCKED", "LOADING", "TRYAGAIN", "MASTERDOWN"))
    return False


def _no_such_key(exc: BaseException) -> bool:
    from redis.exceptions import ResponseError

    return isinstance(exc, ResponseError) and "no such key" in str(exc)


def _lost_group(exc: BaseException) -> bool:
    return str(exc).startswith(("NOGROUP", "UNBLOCKED"))


class _Backoff:
    """Capped exponential waits between retries of a failing Redis call."""

    def __init__(self, stop: asyncio.Event) -> None:
        self._stop = stop
        self._delay = 0.0

    def reset(self) -> None:
        self._delay = 0.0

    async def wait(self, what: str, exc: BaseException, **fields: Any) -> None:
        """Log the failure at WARNING and wait (less if the worker is stopped)."""
        self._delay = min(_BACKOFF_MAX_S, max(_BACKOFF_FIRST_S, self._delay * 2))
        _log.warning(
            "distributed_worker_retry", call=what, error=repr(exc), retry_in_s=self._delay, **fields
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._delay):
                await self._stop.wait()


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
        stale_consumer_ms: another worker's consumer idle this long with nothing
            pending is deleted (default: twice ``claim_idle_ms``).
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
        stale_consumer_ms: int | None = None,
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
        self._stale_consumer_ms = (
            2 * claim_idle_ms if stale_consumer_ms is None else stale_consumer_ms
        )
        self._rate_limiter = RedisRateLimiter(redis, prefix=keys.prefix)
        self._answer_script = redis.register_script(_ANSWER)
        self._delete_consumer = redis.register_script(_DELETE_IDLE_CONSUMER)
        self._refresh_held = redis.register_script(_REFRESH_HELD)
        self.refused = 0  # results not appended: their origin's return stream is gone
        self._flows: list[PenguiFlow] = []
        self._cancelled: dict[str, float] = {}
        self.processed = 0
        self._progress = asyncio.Condition()
        self.ready = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set; the entry in hand is finished first.

        Raises:
            redis.exceptions.RedisError: a Redis error that retrying cannot cure
                (refused credentials, a key of the wrong type...).
        """
        pubsub = self._redis.pubsub()
        try:
            backoff = _Backoff(stop)
            while True:  # a worker may start before its Redis does
                try:
                    await pubsub.subscribe(self._keys.cancel_channel)
                    for name in self._nodes:
                        await ensure_group(self._redis, self._keys.node_stream(name))
                    break
                except Exception as exc:
                    if not transient(exc) or stop.is_set():
                        raise
                    await backoff.wait("start", exc)
            slots = []
            for name in self._nodes:
                slots += [self._start_slot(name, index) for index in range(self._concurrency)]
            async with asyncio.TaskGroup() as group:
                group.create_task(self._listen(pubsub, stop))
                for name in self._nodes:
                    group.create_task(self._sweep(self._keys.node_stream(name), stop))
                for flow, node, collector, consumer in slots:
                    group.create_task(self._serve(flow, node, collector, consumer, stop))
                self.ready.set()
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed in redis 8.2

    def _start_slot(self, name: str, index: int) -> tuple[PenguiFlow, Any, Any, str]:
        built = self._build()
        flow, registry = built if isinstance(built, tuple) else (built, None)
        node = hosting.node_named(flow, name)
        collector = mount_worker(flow, node)
        hosting.share_rate_limiter(flow, self._rate_limiter)
        # The caller resumes on the origin, which never sees this copy's tokens.
        hosting.refuse_interrupts(flow, "nodes run by a distributed worker cannot park")
        flow.run(registry=registry)
        self._flows.append(flow)
        return flow, node, collector, f"{self.worker_id}-{name}-{index}"

    # -- cancellation ---------------------------------------------------------------
    async def _listen(self, pubsub: Any, stop: asyncio.Event) -> None:
        backoff = _Backoff(stop)
        while not stop.is_set():
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
                checkpoint()
            except Exception as exc:
                if not transient(exc):
                    raise
                await backoff.wait("cancel listener", exc)
                continue  # the client subscribes again when it reconnects
            backoff.reset()
            if message is None:
                continue
            try:
                trace_id = CancelNotice.model_validate_json(message["data"]).trace_id
            except ValueError as exc:  # a stray publish must not end the worker
                _log.error("distributed_bad_cancel", error=repr(exc))
                continue
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
        backoff = _Backoff(stop)
        try:
            async with asyncio.TaskGroup() as group:
                beat = group.create_task(self._heartbeat(stream, consumer, held))
                try:
                    while not stop.is_set():
                        try:
                            batch = []
                            if time.monotonic() >= next_claim:
                                batch = await self._claim(stream, consumer)
                                # Claim again at once while a dead worker's entries are left.
                                next_claim = (
                                    0.0 if batch else time.monotonic() + self._claim_idle_ms / 2000
                                )
                            if not batch:
                                batch = await self._read(stream, consumer)
                            checkpoint()
                        except Exception as exc:
                            await self._recover(stream, exc, backoff)
                            continue
                        backoff.reset()
                        held.update(dict.fromkeys(entry_id for entry_id, _, _ in batch))
                        # Entries in hand are answered even when stopping: none is left
                        # to wait for the idle timeout of a worker that said goodbye.
                        for entry_id, data, deliveries in batch:
                            if await self._handle(
                                flow, collector, stream, consumer, entry_id, data, deliveries, stop
                            ):
                                held.pop(entry_id, None)
                finally:
                    beat.cancel()
        finally:
            await flow.stop()
            await self._leave(stream, consumer, held)

    async def _recover(self, stream: str, exc: Exception, backoff: _Backoff) -> None:
        """Wait out a transient Redis error (re-creating a lost group); re-raise others."""
        if not transient(exc):
            raise exc
        await backoff.wait("read", exc, stream=stream)
        if _lost_group(exc):  # Redis restarted without its data: the group is gone
            with contextlib.suppress(Exception):
                await ensure_group(self._redis, stream)

    async def _leave(self, stream: str, consumer: str, held: dict[str, None]) -> None:
        """Delete this slot's consumer on the way out, unless it still holds entries."""
        if held:
            return  # left for another worker to claim; swept later
        try:
            await self._delete_consumer(keys=[stream], args=[GROUP, consumer])
        except Exception as exc:  # Redis is gone: a stale consumer is swept later
            _log.warning("distributed_consumer_delete_failed", consumer=consumer, error=repr(exc))

    async def _sweep(self, stream: str, stop: asyncio.Event) -> None:
        """Delete other workers' consumers idle past the threshold that hold nothing."""
        mine = f"{self.worker_id}-"
        while not stop.is_set():
            try:
                for info in await self._redis.xinfo_consumers(stream, GROUP):
                    name = str(info["name"])
                    idle = int(info["idle"])
                    if name.startswith(mine) or info["pending"] or idle < self._stale_consumer_ms:
                        continue
                    if await self._delete_consumer(keys=[stream], args=[GROUP, name]):
                        _log.info("distributed_consumer_deleted", consumer=name, idle_ms=idle)
                checkpoint()
            except Exception as exc:
                # "no such key": the stream is gone (a Redis restart without its
                # data); the serve loop re-creates it, nothing is left to sweep.
                if not (transient(exc) or _no_such_key(exc)):
                    raise
                _log.warning("distributed_sweep_failed", stream=stream, error=repr(exc))
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.05, self._claim_idle_ms / 1000)):
                    await stop.wait()

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
        stop: asyncio.Event,
    ) -> bool:
        """Run one entry and answer it; ``False`` if the answer could not be written."""
        try:
            work = WorkEntry.model_validate_json(data)
        except ValueError as exc:
            # Nowhere to answer (another version's origin, a stray writer): drop it
            # loudly rather than end the worker or loop on it.
            _log.error("distributed_bad_entry", stream=stream, entry=entry_id, error=repr(exc))
            return await self._answer(stream, entry_id, None, None, stop)
        if self._is_cancelled(work.trace_id):
            return await self._answer(stream, entry_id, work, None, stop)
        if deliveries > self._max_deliveries:
            outputs: list[tuple[int, Any]] = []
            error: str | None = f"entry {entry_id} was delivered {deliveries} times; giving up"
        else:
            expect_remote_parent(work.trace_id, work.trace_context)
            outputs, error = await self._run(flow, collector, work)
        if self._is_cancelled(work.trace_id):
            return await self._answer(stream, entry_id, work, None, stop)
        try:
            encoded = [(code, encode(item)) for code, item in outputs]
        except SerializationError as exc:
            encoded, error = [], f"an output cannot cross a process boundary: {exc}"
        result = ResultEntry(
            ref=work.ref, deliveries=deliveries, worker=consumer, outputs=encoded, error=error
        ).model_dump_json()
        return await self._answer(stream, entry_id, work, result, stop)

    async def _answer(
        self,
        stream: str,
        entry_id: str,
        work: WorkEntry | None,
        result: str | None,
        stop: asyncio.Event,
    ) -> bool:
        """Append ``result`` (if any) to the origin's return stream and ack the entry, atomically.

        Retried through transient errors: a second run after a lost reply appends a
        duplicate result, which the origin drops by ref. Given up (``False``) once
        the worker is stopping: the entry stays pending and another worker redoes it.
        """
        backoff = _Backoff(stop)
        while True:
            try:
                if work is None or result is None:
                    async with self._redis.pipeline(transaction=True) as pipe:
                        pipe.xack(stream, GROUP, entry_id)
                        pipe.xdel(stream, entry_id)
                        await pipe.execute()
                else:
                    keys = [work.reply_to, stream]
                    appended = await self._answer_script(keys=keys, args=[GROUP, entry_id, result])
                    if not appended:
                        self.refused += 1
                        _log.info("distributed_result_refused", reply_to=work.reply_to)
                break
            except Exception as exc:
                if not transient(exc):
                    raise
                if stop.is_set():
                    _log.warning("distributed_answer_abandoned", entry=entry_id, error=repr(exc))
                    return False
                await backoff.wait("answer", exc, stream=stream, entry=entry_id)
        await self._count()
        return True

    async def _run(
        self, flow: PenguiFlow, collector: Any, work: WorkEntry
    ) -> tuple[list[tuple[int, Any]], str | None]:
        """Run one entry through this copy; return its outputs, or an error text."""
        here = edge_name(flow, work.edge)
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
            await hosting.inject(flow, work.edge, item)
            await flow.wait_idle()
        except Exception as exc:  # a runtime failure, not the node's (policy handles those)
            _log.exception("distributed_entry_failed", edge=work.edge_name, error=repr(exc))
            collector.take()
            return [], f"handling failed in the worker: {exc!r}"
        outputs: list[tuple[int, Any]] = collector.take()
        outputs += [(ROOKERY_CODE, x) for x in hosting.take_rookery_buffer(flow)]
        return outputs, None

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
        # Only entries still ours: one another worker claimed while this one was
        # frozen stays with it (this one still answers it if it gets there first:
        # the origin drops the second result by ref), and is forgotten here so it
        # does not keep this slot's consumer from being deleted.
        period = self._claim_idle_ms / 3000
        while True:
            await asyncio.sleep(period)
            if not held:
                continue
            try:
                ids = list(held)
                kept = set(await self._refresh_held(keys=[stream], args=[GROUP, consumer, *ids]))
                checkpoint()
                for entry_id in ids:
                    if entry_id not in kept:
                        held.pop(entry_id, None)
                        _log.info("distributed_entry_lost", stream=stream, entry=entry_id)
            except (OSError, redis_errors()) as exc:
                _log.warning("distributed_heartbeat_failed", stream=stream, error=repr(exc))
