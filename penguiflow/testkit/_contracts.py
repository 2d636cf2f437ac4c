"""Contract suites for ``StateStore`` and ``MessageBus`` implementations.

Any implementation, ours or a third party's, runs the same checks. Each check
is a plain coroutine function raising ``AssertionError`` on a violation, so the
suites work under pytest (parametrize over ``STATE_STORE_CHECKS``) or on their
own (``await check_state_store(factory)``); pytest is not imported.

Payloads used here are JSON data, the common ground of every store.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from penguiflow.bus import BusEnvelope, MessageBus
from penguiflow.state import RemoteBinding, StateStore, StoredEvent

__all__ = [
    "MESSAGE_BUS_CHECKS",
    "STATE_STORE_CHECKS",
    "check_message_bus",
    "check_state_store",
    "check_state_store_reopen",
]

StoreCheck = Callable[[StateStore], Awaitable[None]]
BusFactory = Callable[[], MessageBus | Awaitable[MessageBus]]
StoreFactory = Callable[[], StateStore | Awaitable[StateStore]]
ReceivedFn = Callable[[Any, int], Awaitable[Sequence[BusEnvelope]]]


def _event(trace_id: str | None, n: int, kind: str = "node_success") -> StoredEvent:
    return StoredEvent(
        trace_id=trace_id,
        ts=1_700_000_000.0 + n / 8,
        kind=kind,
        node_name=f"node-{n % 3}",
        node_id=f"id-{n % 3}",
        payload={
            "event": kind,
            "trace_id": trace_id,
            "latency_ms": 1.5 * n,
            "attempt": n,
            "extra": {"nested": [1, "two", None, True], "n": n},
        },
    )


def _same(a: StoredEvent, b: StoredEvent) -> bool:
    return (a.trace_id, a.ts, a.kind, a.node_name, a.node_id, dict(a.payload)) == (
        b.trace_id,
        b.ts,
        b.kind,
        b.node_name,
        b.node_id,
        dict(b.payload),
    )


def _assert_history(actual: Sequence[StoredEvent], expected: Sequence[StoredEvent]) -> None:
    assert len(actual) == len(expected), f"expected {len(expected)} events, got {len(actual)}"
    for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
        assert _same(got, want), f"event {index} differs: {got!r} != {want!r}"


async def _build(factory: Callable[[], Any]) -> Any:
    made = factory()
    return await made if inspect.isawaitable(made) else made


async def _close(obj: object) -> None:
    close = getattr(obj, "close", None)
    if callable(close):
        result = close()
        if inspect.isawaitable(result):
            await result


# --- state store checks -------------------------------------------------------------


async def store_satisfies_protocol(store: StateStore) -> None:
    """The store is a ``StateStore`` (structurally)."""
    assert isinstance(store, StateStore), f"{store!r} lacks a StateStore method"


async def unknown_trace_has_empty_history(store: StateStore) -> None:
    """``load_history`` of a trace never saved returns an empty sequence."""
    assert list(await store.load_history("contract-unknown")) == []


async def saved_event_round_trips(store: StateStore) -> None:
    """Every field of a saved event (payload included) reads back equal."""
    event = _event("contract-rt", 1)
    await store.save_event(event)
    _assert_history(await store.load_history("contract-rt"), [event])


async def history_keeps_save_order_per_trace(store: StateStore) -> None:
    """Interleaved traces each read back their own events, in save order."""
    a = [_event("contract-a", n) for n in range(5)]
    b = [_event("contract-b", n + 10) for n in range(5)]
    for ea, eb in zip(a, b, strict=True):
        await store.save_event(ea)
        await store.save_event(eb)
    _assert_history(await store.load_history("contract-a"), a)
    _assert_history(await store.load_history("contract-b"), b)


async def duplicate_event_is_stored_once(store: StateStore) -> None:
    """Saving the same event twice keeps one copy (the runtime may re-deliver)."""
    event = _event("contract-dup", 3)
    await store.save_event(event)
    await store.save_event(_event("contract-dup", 3))
    _assert_history(await store.load_history("contract-dup"), [event])


async def traceless_event_is_accepted(store: StateStore) -> None:
    """An event without a trace (``node_cancelled``) saves and joins no trace."""
    await store.save_event(_event(None, 4, kind="node_cancelled"))
    assert list(await store.load_history("None")) == []


async def concurrent_saves_are_all_kept(store: StateStore) -> None:
    """Saves issued concurrently are all stored, none lost or merged."""
    events = [_event("contract-conc", n) for n in range(40)]
    await asyncio.gather(*(store.save_event(e) for e in events))
    history = await store.load_history("contract-conc")
    assert sorted(int(e.payload["attempt"]) for e in history) == list(range(40))


async def history_is_a_snapshot(store: StateStore) -> None:
    """Changing a loaded history (or the saved payload) does not change the store."""
    event = _event("contract-snap", 5)
    payload = dict(event.payload)
    event.payload = payload
    await store.save_event(event)
    payload["attempt"] = -1
    loaded = list(await store.load_history("contract-snap"))
    assert loaded[0].payload["attempt"] == 5
    loaded.clear()
    assert len(await store.load_history("contract-snap")) == 1


async def remote_binding_is_accepted(store: StateStore) -> None:
    """Bindings save (twice is fine); ``load_remote_bindings``, if offered, reads them once."""
    first = RemoteBinding("contract-bind", "ctx-1", "task-1", "http://agent.test")
    second = RemoteBinding("contract-bind", "ctx-1", "task-2", "http://agent.test")
    await store.save_remote_binding(first)
    await store.save_remote_binding(
        RemoteBinding("contract-bind", "ctx-1", "task-1", first.agent_url)
    )
    await store.save_remote_binding(second)
    load = getattr(store, "load_remote_bindings", None)
    if load is not None:
        assert list(await load("contract-bind")) == [first, second]
        assert list(await load("contract-other")) == []


async def planner_state_round_trips(store: StateStore) -> None:
    """Planner state, if the store offers it: the last save wins, a missing token is None."""
    save = getattr(store, "save_planner_state", None)
    load = getattr(store, "load_planner_state", None)
    if save is None or load is None:
        return

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        result = fn(*args)
        return await result if inspect.isawaitable(result) else result

    await call(save, "contract-token", {"trajectory": {"query": "q"}, "reason": "await_input"})
    await call(save, "contract-token", {"trajectory": {"query": "q2"}, "reason": "approval"})
    assert await call(load, "contract-token") == {
        "trajectory": {"query": "q2"},
        "reason": "approval",
    }
    assert await call(load, "contract-missing") is None


STATE_STORE_CHECKS: Mapping[str, StoreCheck] = {
    fn.__name__: fn
    for fn in (
        store_satisfies_protocol,
        unknown_trace_has_empty_history,
        saved_event_round_trips,
        history_keeps_save_order_per_trace,
        duplicate_event_is_stored_once,
        traceless_event_is_accepted,
        concurrent_saves_are_all_kept,
        history_is_a_snapshot,
        remote_binding_is_accepted,
        planner_state_round_trips,
    )
}
"""Every state store check by name, each taking a fresh, empty store.

.. versionadded:: 3.0
"""


async def check_state_store(make_store: StoreFactory) -> None:
    """Run every check of ``STATE_STORE_CHECKS``, each on a fresh store from ``make_store``.

    ``make_store`` may be sync or async and must return an empty store; the store
    is closed afterwards if it has a ``close`` method. Raises ``AssertionError``
    naming the failed check.

    .. versionadded:: 3.0
    """
    for name, check in STATE_STORE_CHECKS.items():
        store = await _build(make_store)
        try:
            await check(store)
        except AssertionError as exc:
            raise AssertionError(f"state store contract {name!r} failed: {exc}") from exc
        finally:
            await _close(store)


async def check_state_store_reopen(make_store: StoreFactory) -> None:
    """A persistent store: what one instance saved, a new instance on the same storage reads.

    ``make_store`` must return stores over the same backing storage each time.

    .. versionadded:: 3.0
    """
    first = await _build(make_store)
    events = [_event("contract-reopen", n) for n in range(3)]
    binding = RemoteBinding("contract-reopen", "ctx", "task", "http://agent.test")
    try:
        for event in events:
            await first.save_event(event)
        await first.save_remote_binding(binding)
    finally:
        await _close(first)
    second = await _build(make_store)
    try:
        _assert_history(await second.load_history("contract-reopen"), events)
        load = getattr(second, "load_remote_bindings", None)
        if load is not None:
            assert list(await load("contract-reopen")) == [binding]
    finally:
        await _close(second)


# --- message bus checks -------------------------------------------------------------


def _envelopes(n: int) -> list[BusEnvelope]:
    return [
        BusEnvelope(
            edge=f"a->{'Rookery' if i % 2 else 'b'}",
            source="a",
            target="Rookery" if i % 2 else "b",
            trace_id=f"contract-bus-{i % 3}",
            payload={"i": i, "text": "hello"},
            headers={"tenant": "acme", "topic": None, "priority": 0},
            meta={"i": i},
        )
        for i in range(n)
    ]


async def check_message_bus(make_bus: BusFactory, *, received: ReceivedFn | None = None) -> None:
    """Check a ``MessageBus``: it accepts envelopes one by one and concurrently.

    If ``received(bus, count)`` is given, it must return the first ``count``
    envelopes that reached the bus's consumer side, and delivery is checked
    too: same edges, endpoints, trace ids, headers, meta and payload, and the
    order of one producer kept.

    .. versionadded:: 3.0
    """
    for name, check in MESSAGE_BUS_CHECKS.items():
        bus = await _build(make_bus)
        try:
            await check(bus, received)
        except AssertionError as exc:
            raise AssertionError(f"message bus contract {name!r} failed: {exc}") from exc
        finally:
            await _close(bus)


async def bus_satisfies_protocol(bus: MessageBus, received: ReceivedFn | None) -> None:
    """The bus is a ``MessageBus`` (structurally)."""
    assert isinstance(bus, MessageBus), f"{bus!r} lacks publish()"


async def bus_keeps_publish_order(bus: MessageBus, received: ReceivedFn | None) -> None:
    """Envelopes published one after another arrive unchanged, in order."""
    sent = _envelopes(6)
    for envelope in sent:
        await bus.publish(envelope)
    if received is not None:
        got = list(await received(bus, len(sent)))[: len(sent)]
        assert [_fields(e) for e in got] == [_fields(e) for e in sent]


async def bus_accepts_concurrent_publishes(bus: MessageBus, received: ReceivedFn | None) -> None:
    """Concurrent publishes all arrive (in any order)."""
    sent = _envelopes(20)
    await asyncio.gather(*(bus.publish(e) for e in sent))
    if received is not None:
        got = list(await received(bus, len(sent)))[: len(sent)]
        key = repr
        assert sorted(map(key, map(_fields, got))) == sorted(map(key, map(_fields, sent)))


async def bus_accepts_trace_less_items(bus: MessageBus, received: ReceivedFn | None) -> None:
    """A bare payload with no trace, headers or meta is published like any other."""
    envelope = BusEnvelope("*->b", None, "b", None, "bare", None, None)
    await bus.publish(envelope)
    if received is not None:
        (got,) = list(await received(bus, 1))[:1]
        assert _fields(got) == _fields(envelope)


def _fields(envelope: BusEnvelope) -> tuple[Any, ...]:
    return (
        envelope.edge,
        envelope.source,
        envelope.target,
        envelope.trace_id,
        envelope.payload,
        None if envelope.headers is None else dict(envelope.headers),
        None if envelope.meta is None else dict(envelope.meta),
    )


MESSAGE_BUS_CHECKS: Mapping[str, Callable[[MessageBus, ReceivedFn | None], Awaitable[None]]] = {
    fn.__name__: fn
    for fn in (
        bus_satisfies_protocol,
        bus_keeps_publish_order,
        bus_accepts_concurrent_publishes,
        bus_accepts_trace_less_items,
    )
}
"""Every message bus check by name, each taking ``(bus, received)``.

.. versionadded:: 3.0
"""
