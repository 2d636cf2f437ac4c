"""The push-notification sender: POSTs task updates to the clients' webhooks.

Delivery is at least once and in order per (task, config): each config has
its own bounded queue and at most one worker draining it, so a retried
update holds back the later ones of that config only. Every update carries
an id (``X-A2A-Notification-Id``, the same on every retry) and a per-config
sequence number (``X-A2A-Notification-Sequence``) so a receiver can drop
duplicates and notice gaps. Failures (connection errors, timeouts, 408,
425, 429 and 5xx) are retried with capped exponential backoff on the
clock seam; other statuses, redirects (never followed) and a URL the SSRF
guard now refuses drop the update. A full queue drops its oldest update
(the newest, which is the final one at the end of a task, is kept). Every
drop is counted in ``PushSender.stats`` and logged (at the 1st, 2nd, 4th...
drop of a config, so a receiver that stays down cannot flood the log).

Bodies: a config registered over 1.0 gets one ``StreamResponse`` JSON per
update (``{"task": ...}`` first, then ``{"statusUpdate": ...}`` and
``{"artifactUpdate": ...}``); a 0.3 config gets the ``Task`` object on
registration and on every status change (artifacts ride inside it).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from penguiflow._logging import get_logger
from penguiflow._time import SYSTEM_CLOCK, Clock

from .codec import V0_3, V1_0
from .push_config import PushConfig
from .push_guard import WebhookGuard, WebhookRefused
from .tasks import StatusEvent, TaskEvent, TaskRecord

if TYPE_CHECKING:
    import aiohttp

__all__ = ["Notification", "PushSender", "PushSettings", "PushStats"]

_log = get_logger("penguiflow_a2a.push")

_RETRY_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class PushSettings:
    """Limits of push delivery.

    Args:
        max_concurrency: POSTs in flight at once, over all webhooks.
        queue_size: updates waiting per (task, config); the oldest is dropped
            beyond it.
        max_attempts: tries per update (1 = no retry).
        backoff_s: the wait after the first failed try; doubled each time.
        backoff_cap_s: the longest wait between tries.
        timeout_s: the limit of one POST (connect to response).
        max_configs_per_task: configs one task may hold.
    """

    max_concurrency: int = 8
    queue_size: int = 64
    max_attempts: int = 5
    backoff_s: float = 0.5
    backoff_cap_s: float = 30.0
    timeout_s: float = 10.0
    max_configs_per_task: int = 10

    def __post_init__(self) -> None:
        for name in ("max_concurrency", "queue_size", "max_attempts", "max_configs_per_task"):
            if getattr(self, name) < 1:
                raise ValueError(f"PushSettings.{name} must be at least 1")
        if self.backoff_s < 0 or self.backoff_cap_s < 0 or self.timeout_s <= 0:
            raise ValueError("PushSettings backoff must be >= 0 and timeout_s > 0")

    def backoff(self, attempt: int) -> float:
        """The wait after failed try number ``attempt`` (1-based)."""
        return float(min(self.backoff_cap_s, self.backoff_s * 2 ** (attempt - 1)))


@dataclass(slots=True)
class PushStats:
    """Counters of the sender (read them; the sender alone writes them)."""

    delivered: int = 0
    retries: int = 0
    dropped: int = 0
    dropped_by_reason: dict[str, int] = field(default_factory=dict)

    def drop(self, reason: str, count: int = 1) -> None:
        """Count ``count`` dropped updates for ``reason``."""
        self.dropped += count
        self.dropped_by_reason[reason] = self.dropped_by_reason.get(reason, 0) + count


@dataclass(frozen=True, slots=True)
class Notification:
    """One update for one webhook: its dedupe id, sequence number and JSON body."""

    id: str
    sequence: int
    body: dict[str, Any]


@dataclass(eq=False, slots=True)
class _Channel:
    config: PushConfig
    queue: deque[Notification] = field(default_factory=deque)
    sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    worker: asyncio.Task[None] | None = None
    # closed: the task ended, nothing more will be queued; deleted: the client
    # removed the config, so even the update in flight is given up.
    closed: bool = False
    deleted: bool = False
    dropped: int = 0
    next_log: int = 1


class PushSender:
    """Owns the webhook deliveries of one app: queues, workers and the HTTP session.

    Args:
        guard: the SSRF policy, checked again before every POST.
        settings: the delivery limits.
        clock: where backoff waits (``penguiflow.testkit.FakeClock`` in tests).
    """

    def __init__(
        self,
        guard: WebhookGuard,
        *,
        settings: PushSettings | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.guard = guard
        self.settings = settings or PushSettings()
        self.stats = PushStats()
        self._clock = clock
        self._channels: dict[tuple[str, str], _Channel] = {}
        # Every worker, also of deleted configs: stop() owns and ends them all.
        self._workers: set[asyncio.Task[None]] = set()
        self._semaphore = asyncio.BoundedSemaphore(self.settings.max_concurrency)
        self._session: aiohttp.ClientSession | None = None
        self._stopped = False

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP session (one for every delivery); idempotent."""
        if self._session is not None or self._stopped:
            return
        import aiohttp

        from ._push_http import GuardedResolver

        connector = aiohttp.TCPConnector(resolver=GuardedResolver(self.guard))
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s),
        )

    async def stop(self) -> None:
        """Stop every worker and close the session; pending updates are dropped (counted)."""
        self._stopped = True
        channels = list(self._channels.values())
        self._channels.clear()
        workers = list(self._workers)
        pending = sum(len(c.queue) for c in channels) + len(workers)
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        if pending:
            self.stats.drop("shutdown", pending)
            _log.warning("a2a_push_dropped_on_shutdown", count=pending)
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    @property
    def pending(self) -> int:
        """Updates queued or being delivered."""
        return sum(len(c.queue) for c in self._channels.values()) + len(self._workers)

    async def idle(self) -> None:
        """Wait until no delivery is queued or running (tests, graceful drains)."""
        while self._workers:
            await asyncio.wait(list(self._workers))

    # -- configs -------------------------------------------------------------------------

    def register(self, record: TaskRecord, config: PushConfig) -> None:
        """Attach ``config`` to ``record`` and queue the task as it is now."""
        record.push_configs[config.id] = config
        key = (record.id, config.id)
        channel = self._channels.get(key)
        if channel is None or channel.closed:
            channel = _Channel(config)
            self._channels[key] = channel
        else:
            channel.config = config
        # A finished task sends nothing more: the channel goes once drained.
        channel.closed = record.terminal
        codec = V0_3 if config.version == "0.3" else V1_0
        body = codec.task(record) if config.version == "0.3" else codec.stream_task(record)
        self._enqueue(channel, body)

    def unregister(self, record: TaskRecord, config_id: str) -> bool:
        """Detach a config; its undelivered updates are dropped (counted). ``False``: unknown."""
        if record.push_configs.pop(config_id, None) is None:
            return False
        channel = self._channels.pop((record.id, config_id), None)
        if channel is not None:
            channel.closed = channel.deleted = True
            if channel.queue:
                self._drop(channel, "config_deleted", len(channel.queue))
                channel.queue.clear()
        return True

    def notify(self, record: TaskRecord, event: TaskEvent) -> None:
        """Queue ``event`` for every config of ``record`` (called for every task event)."""
        if not record.push_configs or self._stopped:
            return
        v10_body: dict[str, Any] | None = None
        v03_body: dict[str, Any] | None = None
        for config in record.push_configs.values():
            channel = self._channels.get((record.id, config.id))
            if channel is None:
                continue
            if config.version == "0.3":
                if not isinstance(event, StatusEvent):
                    continue
                v03_body = v03_body or V0_3.task(record)
                self._enqueue(channel, v03_body)
            else:
                v10_body = v10_body or V1_0.stream_event(event)
                self._enqueue(channel, v10_body)
        if record.terminal:
            # No more events: the channels go away once drained.
            for config in record.push_configs.values():
                channel = self._channels.get((record.id, config.id))
                if channel is not None:
                    channel.closed = True

    # -- delivery ------------------------------------------------------------------------

    def _enqueue(self, channel: _Channel, body: dict[str, Any]) -> None:
        if self._stopped:
            self._drop(channel, "shutdown")
            return
        note = Notification(uuid.uuid4().hex, next(channel.sequence), body)
        if len(channel.queue) >= self.settings.queue_size:
            oldest = channel.queue.popleft()
            self._drop(channel, "queue_full", sequence=oldest.sequence)
        channel.queue.append(note)
        if channel.worker is None:
            worker = asyncio.get_running_loop().create_task(
                self._drain(channel),
                name=f"penguiflow-a2a-push-{channel.config.task_id}-{channel.config.id}",
            )
            channel.worker = worker
            self._workers.add(worker)
            worker.add_done_callback(self._workers.discard)

    def _drop(
        self, channel: _Channel, reason: str, count: int = 1, *, sequence: int | None = None
    ) -> None:
        self.stats.drop(reason, count)
        channel.dropped += count
        if channel.dropped < channel.next_log:
            return
        # Logged at the 1st, 2nd, 4th, 8th... drop of a config: a receiver that
        # stays down costs a few lines, not one per update.
        channel.next_log = channel.dropped * 2
        _log.warning(
            "a2a_push_dropped",
            reason=reason,
            count=count,
            dropped_for_config=channel.dropped,
            task_id=channel.config.task_id,
            config_id=channel.config.id,
            sequence=sequence,
        )

    async def _drain(self, channel: _Channel) -> None:
        try:
            while channel.queue:
                note = channel.queue.popleft()
                await self._deliver(channel, note)
        finally:
            channel.worker = None
            key = (channel.config.task_id, channel.config.id)
            if channel.closed and not channel.queue and self._channels.get(key) is channel:
                del self._channels[key]

    async def _deliver(self, channel: _Channel, note: Notification) -> None:
        settings = self.settings
        for attempt in range(1, settings.max_attempts + 1):
            if channel.deleted:
                self._drop(channel, "config_deleted", sequence=note.sequence)
                return
            config = channel.config
            try:
                await self.guard.check(config.url)
            except WebhookRefused as exc:
                self._drop(channel, "refused", sequence=note.sequence)
                _log.warning("a2a_push_refused", url=config.url, reason=exc.reason)
                return
            async with self._semaphore:
                outcome = await self._post(config, note)
            if outcome == "ok":
                self.stats.delivered += 1
                return
            if outcome != "retry":
                self._drop(channel, outcome, sequence=note.sequence)
                return
            if attempt < settings.max_attempts:
                self.stats.retries += 1
                await self._clock.sleep(settings.backoff(attempt))
        self._drop(channel, "retries_exhausted", sequence=note.sequence)

    async def _post(self, config: PushConfig, note: Notification) -> str:
        """POST once; ``"ok"``, ``"retry"`` or the reason to drop."""
        import aiohttp

        if self._session is None:
            await self.start()
        session = self._session
        if session is None:  # stopped meanwhile
            return "shutdown"
        headers = {
            **config.headers(),
            "X-A2A-Notification-Id": note.id,
            "X-A2A-Notification-Sequence": str(note.sequence),
        }
        try:
            async with session.post(
                config.url, json=note.body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            _log.info("a2a_push_attempt_failed", url=config.url, exception=repr(exc))
            return "retry"
        if 200 <= status < 300:
            return "ok"
        _log.info("a2a_push_attempt_failed", url=config.url, status=status)
        if status in _RETRY_STATUSES or status >= 500:
            return "retry"
        if 300 <= status < 400:
            return "redirect_refused"
        return "rejected"
