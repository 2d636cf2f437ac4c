"""A trace is retired when its last activity ends, whichever ends last (runtime.md §10)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from core_support import Recorder, message, run_state

from penguiflow._runtime.tracing import TraceBook
from penguiflow.core import PenguiFlow
from penguiflow.node import Node

MakeFlow = Callable[..., PenguiFlow]


async def test_cancelled_trace_retires_when_its_last_invocation_ends(
    make_flow: MakeFlow, recorder: Recorder
) -> None:
    """The item in hand is not counted (stop() forgot it): the invocation ends the trace."""
    started = asyncio.Event()

    async def hold(msg: Any, ctx: Any) -> Any:
        started.set()
        await asyncio.get_running_loop().create_future()  # until cancelled

    flow = make_flow(Node(hold, name="hold").to())
    flow.run()
    first = message("first")
    await flow.emit(first)
    await flow.emit(message("second", trace_id=first.trace_id))
    async with asyncio.timeout(5):
        await started.wait()
    await flow.stop()  # drops "first", keeps "second" queued, forgets every count
    started.clear()
    flow.run()
    async with asyncio.timeout(5):
        await started.wait()
    traces = run_state(flow).traces
    assert traces.counts == {}
    assert traces.invoking(first.trace_id) == 1
    assert await flow.cancel(first.trace_id)
    async with asyncio.timeout(5):
        await recorder.wait_for("trace_cancel_finish")
        await flow.wait_idle()
    assert [e.trace_id for e in recorder.of("trace_cancel_finish")] == [first.trace_id]
    assert (traces.counts, traces.invoking(first.trace_id), traces.events) == ({}, 0, {})


class FakeInvoker:
    """A node actor as TraceBook sees it."""

    def __init__(self, trace_id: str | None) -> None:
        self._invoking = trace_id is not None
        self._trace_id = trace_id


def test_end_invocation_retires_a_trace_whose_items_all_finished() -> None:
    book = TraceBook()
    first, second = FakeInvoker("t"), FakeInvoker("t")
    book.handlers.update({"a": first, "b": second, "c": FakeInvoker("other")})
    book.add("t")
    book.ensure_event("t").set()
    book.memo["t"] = 3
    assert book.invoking("t") == 2
    assert book.done("t") is False  # invocations still run: the trace stays active
    assert book.active("t")
    first._invoking = False
    assert book.end_invocation("t") is False  # one of two
    second._invoking = False
    assert book.end_invocation("t") is True  # the last: a cancelled trace ends here
    assert (book.counts, book.invoking("t"), book.events, book.memo) == ({}, 0, {}, {})
    assert not book.active("t")


def test_end_invocation_leaves_a_trace_with_outstanding_items() -> None:
    book = TraceBook()
    book.add("t")
    assert book.end_invocation("t") is False
    assert book.active("t")
