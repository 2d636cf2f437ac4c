"""``RedisStateStore``: event history, remote bindings and planner state in Redis.

Layout under one key prefix (``namespace``, default ``penguiflow``):

* ``<ns>:history:<trace_id>`` -- a list of JSON events in save order;
* ``<ns>:history-seen:<trace_id>`` -- a set of event digests, so a re-saved event
  is stored once (``penguiflow.stores.encoding.event_key``, as the SQLite store);
* ``<ns>:traceless`` (+ ``-seen``) -- events without a trace id;
* ``<ns>:bindings:<trace_id>`` (+ ``-seen``) -- remote bindings in save order;
* ``<ns>:planner`` -- a hash ``token -> JSON`` of paused planner records;
* ``<ns>:a2a-tasks`` -- a hash ``task id -> JSON`` of a durable A2A server's tasks;
* ``<ns>:journal:*`` -- the journal of durable flows (``penguiflow.distributed.journal``).

The check-and-append is one Lua script, so concurrent savers (several worker
processes) never duplicate or lose an event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from penguiflow.distributed._lease import DEFAULT_LEASE_S, JournalLease
from penguiflow.distributed._redis import connect
from penguiflow.distributed.journal import RedisJournal
from penguiflow.state import RemoteBinding, StoredEvent
from penguiflow.stores.encoding import dumps_payload, event_key

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisStateStore"]

# KEYS[1] = seen set, KEYS[2] = list; ARGV[1] = digest, ARGV[2] = record.
_APPEND_ONCE = """
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
end
return 1
"""


class RedisStateStore:
    """A ``StateStore`` kept in Redis, shareable by every process of a deployment.

    Args:
        url: a ``redis://`` URL, or an existing ``redis.asyncio.Redis`` client
            created with ``decode_responses=True`` (not closed by ``close()``).
        namespace: prefix of every key this store writes.
        journal_lease_s: how long the owner lease of the journal outlives its
            holder's last call: the most a durable flow restarted after a crash
            waits for the crashed one's (see docs/durability.md). *versionadded 3.0*

    Also offers ``load_remote_bindings`` and ``save_planner_state`` /
    ``load_planner_state`` (the planner's pause/resume records), and keeps the
    journal of durable flows (``journal``; see docs/durability.md) and the task
    records of a durable A2A server (``save_a2a_task``, ``load_a2a_tasks``,
    ``delete_a2a_tasks``; see docs/a2a.md).

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        url: str | Redis,
        *,
        namespace: str = "penguiflow",
        journal_lease_s: float = DEFAULT_LEASE_S,
    ) -> None:
        JournalLease(journal_lease_s)  # a bad value fails here, not at first use
        self._redis, self._owned = connect(url)
        self.namespace = namespace
        self._journal_lease_s = journal_lease_s
        self._append = self._redis.register_script(_APPEND_ONCE)
        self._journal: RedisJournal | None = None

    def __repr__(self) -> str:
        return f"RedisStateStore(namespace={self.namespace!r})"

    async def close(self) -> None:
        """Close the connection pool (only if this store created it)."""
        if self._owned:
            await self._redis.aclose()

    async def __aenter__(self) -> RedisStateStore:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def journal(self) -> RedisJournal:
        """The journal of durable flows under this store's namespace (one per store).

        .. versionadded:: 3.0
        """
        if self._journal is None:
            self._journal = RedisJournal(
                self._redis, namespace=self.namespace, lease_s=self._journal_lease_s
            )
        return self._journal

    def _key(self, *parts: str) -> str:
        return ":".join((self.namespace, *parts))

    async def save_event(self, event: StoredEvent) -> None:
        """Append ``event`` to its trace's history unless the same event is stored."""
        payload = dumps_payload(event.payload)
        record = json.dumps(
            [event.trace_id, event.ts, event.kind, event.node_name, event.node_id, payload],
            separators=(",", ":"),
        )
        if event.trace_id is None:
            keys = [self._key("traceless-seen"), self._key("traceless")]
        else:
            keys = [self._key("history-seen", event.trace_id), self._key("history", event.trace_id)]
        await self._append(keys=keys, args=[event_key(event, payload), record])

    async def load_history(self, trace_id: str) -> list[StoredEvent]:
        """Return the stored events of ``trace_id`` in save order (a fresh copy)."""
        rows = await self._redis.lrange(self._key("history", trace_id), 0, -1)
        events = []
        for row in rows:
            tid, ts, kind, node_name, node_id, payload = json.loads(row)
            events.append(StoredEvent(tid, ts, kind, node_name, node_id, json.loads(payload)))
        return events

    async def save_remote_binding(self, binding: RemoteBinding) -> None:
        """Record which remote task serves a trace (a repeated binding is kept once)."""
        record = json.dumps(
            [binding.trace_id, binding.context_id, binding.task_id, binding.agent_url],
            separators=(",", ":"),
        )
        keys = [
            self._key("bindings-seen", binding.trace_id),
            self._key("bindings", binding.trace_id),
        ]
        await self._append(keys=keys, args=[record, record])

    async def load_remote_bindings(self, trace_id: str) -> list[RemoteBinding]:
        """Return the bindings of ``trace_id`` in save order."""
        rows = await self._redis.lrange(self._key("bindings", trace_id), 0, -1)
        return [RemoteBinding(*json.loads(row)) for row in rows]

    async def save_planner_state(self, token: str, payload: Mapping[str, Any]) -> None:
        """Store a paused planner's record under ``token`` (the last save wins)."""
        await self._redis.hset(self._key("planner"), token, dumps_payload(payload))

    async def load_planner_state(self, token: str) -> dict[str, Any] | None:
        """Return the record saved under ``token``, or ``None``."""
        row = await self._redis.hget(self._key("planner"), token)
        if row is None:
            return None
        result: dict[str, Any] = json.loads(row)
        return result

    async def save_a2a_task(self, task_id: str, record: Mapping[str, Any]) -> None:
        """Store the A2A task record ``task_id`` (the last save wins).

        .. versionadded:: 3.0
        """
        await self._redis.hset(self._key("a2a-tasks"), task_id, dumps_payload(record))

    async def load_a2a_tasks(self) -> list[dict[str, Any]]:
        """Every stored A2A task record (in no particular order).

        .. versionadded:: 3.0
        """
        rows = await self._redis.hvals(self._key("a2a-tasks"))
        return [json.loads(row) for row in rows]

    async def delete_a2a_tasks(self, task_ids: Sequence[str]) -> None:
        """Forget the A2A task records ``task_ids`` (unknown ids are ignored).

        .. versionadded:: 3.0
        """
        if task_ids:
            await self._redis.hdel(self._key("a2a-tasks"), *task_ids)

    async def clear(self) -> int:
        """Delete every key of this store's namespace; returns how many were deleted."""
        deleted = 0
        async for key in self._redis.scan_iter(match=f"{self.namespace}:*", count=500):
            deleted += await self._redis.delete(key)
        return deleted
