"""``hosting.observe_attempts`` and ``hosting.observe_events``: watching a flow cheaply."""

from __future__ import annotations

import asyncio
from typing import Any

from core_support import fetch, idle, message

from penguiflow import hosting
from penguiflow.core import PenguiFlow, create
from penguiflow.metrics import FlowEvent
from penguiflow.node import Node, NodePolicy

NONE = NodePolicy(validate="none")


async def echo(msg: Any, ctx: Any) -> Any:
    return msg


class Attempts:
    """Records on_attempt/on_attempt_end; the token is the start's index in the log."""

    def __init__(self, name: str, log: list[tuple[Any, ...]]) -> None:
        self.name = name
        self.log = log

    def on_attempt(self, node: Any, trace_id: str | None, attempt: int) -> Any:
        self.log.append((self.name, "start", node.name, trace_id, attempt))
        return len(self.log)

    def on_attempt_end(self, token: Any, outcome: str, exc: BaseException | None) -> None:
        self.log.append((self.name, "end", token, outcome, type(exc).__name__))


def started(flows: list[PenguiFlow], *adjacencies: Any) -> PenguiFlow:
    flow = create(*adjacencies)
    flows.append(flow)
    return flow


async def test_every_attempt_is_started_and_ended_around_the_node(
    flows: list[PenguiFlow],
) -> None:
    log: list[tuple[Any, ...]] = []
    a = Node(echo, name="a", policy=NONE)
    b = Node(echo, name="b", policy=NONE)
    flow = started(flows, a.to(b), b.to())
    hosting.observe_attempts(flow, Attempts("o", log))
    flow.run()
    msg = message()
    await flow.emit(msg)
    await fetch(flow)
    assert log == [
        ("o", "start", "a", msg.trace_id, 0),
        ("o", "end", 1, "success", "NoneType"),
        ("o", "start", "b", msg.trace_id, 0),
        ("o", "end", 3, "success", "NoneType"),
    ]


async def test_a_retried_attempt_ends_as_error_then_the_retry_as_success(
    flows: list[PenguiFlow],
) -> None:
    log: list[tuple[Any, ...]] = []
    calls = 0

    async def flaky(msg: Any, ctx: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("first time")
        return msg

    policy = NodePolicy(validate="none", max_retries=1, backoff_base=0.0)
    flow = started(flows, Node(flaky, name="f", policy=policy).to())
    hosting.observe_attempts(flow, Attempts("o", log))
    flow.run()
    await flow.emit(message())
    await fetch(flow)
    assert [(e[2], e[-1]) if e[1] == "start" else (e[3], e[4]) for e in log] == [
        ("f", 0),
        ("error", "ValueError"),
        ("f", 1),
        ("success", "NoneType"),
    ]


async def test_a_timeout_error_is_the_timeout_outcome(flows: list[PenguiFlow]) -> None:
    log: list[tuple[Any, ...]] = []

    async def late(msg: Any, ctx: Any) -> Any:
        raise TimeoutError("too slow")

    flow = started(flows, Node(late, name="late", policy=NONE).to())
    hosting.observe_attempts(flow, Attempts("o", log))
    flow.run()
    await flow.emit(message())
    await idle(flow)
    assert log[-1][3:] == ("timeout", "TimeoutError")


async def test_a_cancelled_trace_ends_its_attempt_as_cancelled(flows: list[PenguiFlow]) -> None:
    log: list[tuple[Any, ...]] = []
    entered = asyncio.Event()

    async def park(msg: Any, ctx: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()

    flow = started(flows, Node(park, name="park", policy=NONE).to())
    hosting.observe_attempts(flow, Attempts("o", log))
    flow.run()
    msg = message()
    await flow.emit(msg)
    async with asyncio.timeout(5):
        await entered.wait()
    assert await flow.cancel(msg.trace_id) is True
    await idle(flow)
    assert log[-1][1:4] == ("end", 1, "cancelled")


async def test_a_stop_ends_the_attempt_under_way_as_cancelled(flows: list[PenguiFlow]) -> None:
    log: list[tuple[Any, ...]] = []
    entered = asyncio.Event()

    async def park(msg: Any, ctx: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()

    flow = create(Node(park, name="park", policy=NONE).to())
    hosting.observe_attempts(flow, Attempts("o", log))
    flow.run()
    await flow.emit(message())
    async with asyncio.timeout(5):
        await entered.wait()
    async with asyncio.timeout(5):
        await flow.stop()
    assert log[-1][1:4] == ("end", 1, "cancelled")


async def test_observers_end_in_reverse_order_and_unobserve_stops_new_attempts(
    flows: list[PenguiFlow],
) -> None:
    log: list[tuple[Any, ...]] = []
    first, second = Attempts("first", log), Attempts("second", log)
    flow = started(flows, Node(echo, name="a", policy=NONE).to())
    hosting.observe_attempts(flow, first)
    hosting.observe_attempts(flow, second)
    hosting.observe_attempts(flow, second)  # twice: still once
    flow.run()
    await flow.emit(message())
    await fetch(flow)
    hosting.unobserve_attempts(flow, first)
    hosting.unobserve_attempts(flow, Attempts("stranger", log))
    await flow.emit(message())
    await fetch(flow)
    assert [(e[0], e[1]) for e in log] == [
        ("first", "start"),
        ("second", "start"),
        ("second", "end"),
        ("first", "end"),
        ("second", "start"),
        ("second", "end"),
    ]


async def test_an_event_listener_hears_failures_but_not_the_per_hop_events(
    flows: list[PenguiFlow],
) -> None:
    seen: list[str] = []

    async def fail(msg: Any, ctx: Any) -> Any:
        raise ValueError("no")

    def listen(event: FlowEvent) -> None:
        seen.append(event.event_type)

    flow = started(flows, Node(echo, name="a", policy=NONE).to(), Node(fail, name="f").to())
    hosting.observe_events(flow, listen)
    hosting.observe_events(flow, listen)  # twice: still once
    flow.run()
    await flow.emit(message(), to=hosting.node_named(flow, "a"))
    await fetch(flow)
    assert seen == []
    await flow.emit(message(), to=hosting.node_named(flow, "f"))
    await idle(flow)
    assert seen == ["node_error", "node_failed"]
    hosting.unobserve_events(flow, listen)
    hosting.unobserve_events(flow, listen)  # not listening: ignored
    await flow.emit(message(), to=hosting.node_named(flow, "f"))
    await idle(flow)
    assert seen == ["node_error", "node_failed"]


async def test_a_failing_listener_is_logged_and_the_flow_goes_on(
    flows: list[PenguiFlow], caplog: Any
) -> None:
    async def fail(msg: Any, ctx: Any) -> Any:
        raise ValueError("no")

    def broken(event: FlowEvent) -> None:
        raise RuntimeError("listener bug")

    flow = started(flows, Node(fail, name="f", policy=NONE).to())
    hosting.observe_events(flow, broken)
    flow.run()
    await flow.emit(message())
    await idle(flow)
    assert "listener_error" in [r.getMessage() for r in caplog.records]


def test_an_attempt_recorder_is_an_attempt_observer() -> None:
    assert isinstance(Attempts("o", []), hosting.AttemptObserver)
