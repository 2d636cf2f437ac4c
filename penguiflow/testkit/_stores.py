"""In-memory ``StateStore`` and ``MessageBus`` fakes for tests.

Both pass the shipped contract suites (``penguiflow.testkit._contracts``), keep
what they received for assertions, offer ``wait_for_*`` helpers that await a
condition instead of sleeping, and can be told to fail (``fail_with``) to test
that a failing store or bus never breaks a flow.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from penguiflow.bus import BusEnvelope
from penguiflow.state import RemoteBinding, StoredEvent
from penguiflow.stores.encoding import dumps_payload, event_key

__all__ = ["InMemoryMessageBus", "InMemoryStateStore"]


class _Waiters:
    """Futures resolved once a predicate over the recorded items holds."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    async def wait(self, ready: Callable[[], bool]) -> None:
        if ready():
            return
        # The future belongs to the caller's loop, so a fake built outside any
        # loop (or reused across test loops) still works.
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (ready, future)
        self._waiting.append(entry)
        try:
            await future
        finally:
            if entry in self._waiting:
                self._waiting.remove(entry)

    def notify(self) -> None:
        for ready, future in list(self._waiting):
            if not future.done() and ready():
                future.set_result(None)


def _copy_event(event: StoredEvent) -> StoredEvent:
    return dataclasses.replace(event, payload=dict(event.payload))


class InMemoryStateStore:
    """A ``StateStore`` that keeps everything in lists (one per store instance).

    Attributes:
        save_calls: every event handed to ``save_event``, duplicates included
            (the history itself stores a re-saved event once).
        fail_with: when set, ``save_event`` and ``save_remote_binding`` raise it.

    .. versionadded:: 3.0
    """

    def __init__(self) -> None:
        self.save_calls: list[StoredEvent] = []
        self.fail_with: BaseException | None = None
        self._events: list[StoredEvent] = []
        self._keys: set[str] = set()
        self._bindings: list[RemoteBinding] = []
        self._planner: dict[str, dict[str, Any]] = {}
        self._waiters = _Waiters()

    @property
    def events(self) -> tuple[StoredEvent, ...]:
        """Every stored event of every trace, in save order."""
        return tuple(self._events)

    @property
    def bindings(self) -> tuple[RemoteBinding, ...]:
        """Every stored remote binding, in save order."""
        return tuple(self._bindings)

    def kinds(self, trace_id: str | None = None) -> list[str]:
        """The stored event kinds, optionally of one trace only."""
        return [e.kind for e in self._events if trace_id is None or e.trace_id == trace_id]

    async def save_event(self, event: StoredEvent) -> None:
        """Store ``event`` once (an event equal in every field is a duplicate)."""
        self.save_calls.append(event)
        if self.fail_with is not None:
            raise self.fail_with
        key = event_key(event, dumps_payload(event.payload))
        if key not in self._keys:
            self._keys.add(key)
            self._events.append(_copy_event(event))
            self._waiters.notify()

    async def load_history(self, trace_id: str) -> list[StoredEvent]:
        """Return copies of the events of ``trace_id`` in save order."""
        return [_copy_event(e) for e in self._events if e.trace_id == trace_id]

    async def save_remote_binding(self, binding: RemoteBinding) -> None:
        """Store ``binding`` once."""
        if self.fail_with is not None:
            raise self.fail_with
        if binding not in self._bindings:
            self._bindings.append(dataclasses.replace(binding))
            self._waiters.notify()

    async def load_remote_bindings(self, trace_id: str) -> list[RemoteBinding]:
        """Return the bindings of ``trace_id`` in save order."""
        return [dataclasses.replace(b) for b in self._bindings if b.trace_id == trace_id]

    async def save_planner_state(self, token: str, payload: Mapping[str, Any]) -> None:
        """Keep a planner pause record (the last save wins)."""
        self._planner[token] = dict(payload)

    async def load_planner_state(self, token: str) -> dict[str, Any] | None:
        """Return the record saved under ``token``, or ``None``."""
        payload = self._planner.get(token)
        return None if payload is None else dict(payload)

    async def wait_for_event(
        self, kind: str, *, trace_id: str | None = None, count: int = 1
    ) -> list[StoredEvent]:
        """Wait until ``count`` events of ``kind`` (of ``trace_id`` if given) are stored.

        Returns those events. Callers bound the wait with ``asyncio.timeout``.
        """

        def matching() -> list[StoredEvent]:
            return [
                e
                for e in self._events
                if e.kind == kind and (trace_id is None or e.trace_id == trace_id)
            ]

        await self._waiters.wait(lambda: len(matching()) >= count)
        return matching()

    async def wait_for_binding(self, trace_id: str) -> RemoteBinding:
        """Wait until a binding for ``trace_id`` is stored and return the first one."""

        def first() -> RemoteBinding | None:
            return next((b for b in self._bindings if b.trace_id == trace_id), None)

        await self._waiters.wait(lambda: first() is not None)
        binding = first()
        assert binding is not None
        return binding


class InMemoryMessageBus:
    """A ``MessageBus`` that records every published envelope, in order.

    Attributes:
        published: the envelopes received so far.
        fail_with: when set, ``publish`` raises it (after recording nothing).

    .. versionadded:: 3.0
    """

    def __init__(self) -> None:
        self.published: list[BusEnvelope] = []
        self.fail_with: BaseException | None = None
        self._waiters = _Waiters()

    async def publish(self, envelope: BusEnvelope) -> None:
        """Record ``envelope``."""
        if self.fail_with is not None:
            raise self.fail_with
        self.published.append(envelope)
        self._waiters.notify()

    def edges(self, trace_id: str | None = None) -> list[str]:
        """The edges of the published envelopes, optionally of one trace only."""
        return [e.edge for e in self.published if trace_id is None or e.trace_id == trace_id]

    async def wait_for(self, count: int, *, edge: str | None = None) -> list[BusEnvelope]:
        """Wait until ``count`` envelopes (on ``edge`` if given) were published; return them."""

        def matching() -> list[BusEnvelope]:
            return [e for e in self.published if edge is None or e.edge == edge]

        await self._waiters.wait(lambda: len(matching()) >= count)
        return matching()
