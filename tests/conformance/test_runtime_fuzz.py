"""Conformance: random DAGs keep §5 delivery and §10 accounting (nothing lost or duplicated)."""

from __future__ import annotations

import asyncio
from typing import Any

from conformance_support import msg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from penguiflow import Node, NodePolicy, create

NONE = NodePolicy(validate="none")


async def echo(item: Any, ctx: Any) -> Any:
    return item


@st.composite
def dags(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]]]:
    size = draw(st.integers(min_value=1, max_value=6))
    edges = [(i, j) for i in range(size) for j in range(i + 1, size) if draw(st.booleans())]
    return size, edges


def paths_to_rookery(size: int, edges: list[tuple[int, int]]) -> int:
    """Number of OpenSea -> Rookery paths: how many copies one emitted item yields."""
    succ: dict[int, list[int]] = {i: [] for i in range(size)}
    pred: dict[int, int] = dict.fromkeys(range(size), 0)
    for i, j in edges:
        succ[i].append(j)
        pred[j] += 1
    ways: dict[int, int] = {}
    for i in reversed(range(size)):
        ways[i] = 1 if not succ[i] else sum(ways[j] for j in succ[i])
    return sum(ways[i] for i in range(size) if pred[i] == 0)


async def run_dag(size: int, edges: list[tuple[int, int]], count: int, maxsize: int) -> None:
    nodes = [Node(echo, name=f"n{i}", policy=NONE) for i in range(size)]
    adjacency = [nodes[i].to(*[nodes[j] for i2, j in edges if i2 == i]) for i in range(size)]
    flow = create(*adjacency, queue_maxsize=maxsize)
    flow.run()
    expected = paths_to_rookery(size, edges) * count
    sent = [msg(i) for i in range(count)]
    try:
        async with asyncio.timeout(5):

            async def produce() -> None:
                for m in sent:
                    await flow.emit(m)

            producer = asyncio.create_task(produce())
            got = [await flow.fetch() for _ in range(expected)]
            await producer
        assert sorted(g.payload for g in got) == sorted(
            m.payload for m in sent for _ in range(expected // count)
        )
        assert all(any(g is m for m in sent) for g in got)
    finally:
        await flow.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag=dags(), count=st.integers(min_value=1, max_value=4), maxsize=st.sampled_from([1, 2, 64]))
def test_random_dag_delivers_every_path_exactly_once(
    dag: tuple[int, list[tuple[int, int]]], count: int, maxsize: int
) -> None:
    size, edges = dag
    asyncio.run(run_dag(size, edges, count, maxsize))


async def run_cancel_mix(length: int, turns: list[int], cancel: list[bool], wait: int) -> None:
    from conformance_support import EventLog

    from penguiflow.core import ROOKERY

    async def work(item: Any, ctx: Any) -> Any:
        for _ in range(item.payload):
            await asyncio.sleep(0)
        return item

    nodes = [Node(work, name=f"n{i}", policy=NONE) for i in range(length)]
    adjacency = [nodes[i].to(nodes[i + 1]) for i in range(length - 1)] + [nodes[-1].to()]
    log = EventLog()
    flow = create(*adjacency, middlewares=[log])
    flow.run()
    sent = [msg(t) for t in turns]
    doomed = {m.trace_id for m, c in zip(sent, cancel, strict=True) if c}
    try:
        async with asyncio.timeout(5):
            for m in sent:
                await flow.emit(m)
            for _ in range(wait):
                await asyncio.sleep(0)
            for trace_id in doomed:
                assert await flow.cancel(trace_id) is True
            kept = [m for m in sent if m.trace_id not in doomed]
            got = [await flow.fetch() for _ in kept]
            await log.wait_for("trace_cancel_finish", len(doomed))
        assert sorted(id(g) for g in got) == sorted(id(m) for m in kept)
        finishes = [e.trace_id for e in log.of("trace_cancel_finish")]
        assert sorted(finishes) == sorted(doomed)
        for trace_id in doomed:
            kinds = log.kinds(trace_id)
            assert kinds[-1] == "trace_cancel_finish"
            assert kinds.count("trace_cancel_start") == 1
        try:
            stray = flow._contexts[ROOKERY].fetch_nowait()
        except asyncio.QueueEmpty:
            stray = None
        assert stray is None
        for trace_id in doomed:  # finished: trace_cancel_finish was emitted at count 0
            assert await flow.cancel(trace_id) is False
    finally:
        await flow.stop()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    length=st.integers(min_value=1, max_value=3),
    plan=st.lists(
        st.tuples(st.integers(min_value=0, max_value=3), st.booleans()), min_size=1, max_size=6
    ),
    wait=st.integers(min_value=0, max_value=12),
)
def test_random_cancellations_keep_other_traces_and_leave_nothing(
    length: int, plan: list[tuple[int, bool]], wait: int
) -> None:
    turns = [t for t, _ in plan]
    cancel = [c for _, c in plan]
    asyncio.run(run_cancel_mix(length, turns, cancel, wait))


async def run_retry_mix(failures: list[int], retries: int) -> None:
    from conformance_support import EventLog

    from penguiflow import FlowError

    seen: dict[str, int] = {}

    async def flaky(item: Any, ctx: Any) -> Any:
        count = seen.get(item.trace_id, 0)
        seen[item.trace_id] = count + 1
        if count < item.payload:
            raise ValueError(f"fail {count}")
        return item

    log = EventLog()
    policy = NodePolicy(validate="none", max_retries=retries, backoff_base=0.0)
    flow = create(
        Node(flaky, name="flaky", policy=policy).to(),
        middlewares=[log],
        emit_errors_to_rookery=True,
    )
    flow.run()
    sent = [msg(f) for f in failures]
    try:
        async with asyncio.timeout(5):
            for m in sent:
                await flow.emit(m)
            got = [await flow.fetch() for _ in sent]
            successes = sum(1 for f in failures if f <= retries)
            if successes:
                await log.wait_for("node_success", successes)
            if len(failures) - successes:
                await log.wait_for("node_failed", len(failures) - successes)
        by_trace = {getattr(g, "trace_id", None): g for g in got}
        for m in sent:
            f = m.payload
            attempts = min(f, retries) + 1
            expected: list[tuple[str, int]] = []
            for attempt in range(attempts):
                expected.append(("node_start", attempt))
                if attempt < f:
                    expected.append(("node_error", attempt))
                    if attempt < retries:
                        expected.append(("node_retry", attempt + 1))
            if f <= retries:
                expected.append(("node_success", f))
                assert by_trace[m.trace_id] is m
            else:
                expected.append(("node_failed", retries))
                err = by_trace[m.trace_id]
                assert isinstance(err, FlowError)
                assert err.metadata["attempt"] == retries
                assert str(err.unwrap()) == f"fail {retries}"
            actual = [(e.event_type, e.attempt) for e in log.events if e.trace_id == m.trace_id]
            assert actual == expected
    finally:
        await flow.stop()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    failures=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=5),
    retries=st.integers(min_value=0, max_value=2),
)
def test_random_failures_follow_the_event_grammar(failures: list[int], retries: int) -> None:
    asyncio.run(run_retry_mix(failures, retries))
