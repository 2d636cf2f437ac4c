"""The stream bounds: a full inbox or subscriber queue ends its stream, frees it, cancels."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from penguiflow._time import SYSTEM_CLOCK
from penguiflow.types import Message, StreamChunk
from penguiflow_a2a import A2AMessagePayload, A2AServerAdapter, create_a2a_app
from penguiflow_a2a._routing import OVERFLOW, RookeryRouter
from penguiflow_a2a.adapter import STREAM_OVERFLOW_MESSAGE
from penguiflow_a2a.models import A2ARequestError
from penguiflow_a2a.tasks import STREAM_OVERFLOW_TEXT, StatusEvent, TaskManager


class Record:
    def __init__(self, item: Any, trace_id: str) -> None:
        self.item = item
        self.trace_id = trace_id


class CancellableFlow:
    """``fetch_traced`` from a queue the test fills; ``cancel`` is recorded."""

    def __init__(self, *, cancel_error: Exception | None = None) -> None:
        self.queue: asyncio.Queue[Record] = asyncio.Queue()
        self.cancelled: asyncio.Queue[str] = asyncio.Queue()
        self._cancel_error = cancel_error

    async def fetch_traced(self) -> Record:
        return await self.queue.get()

    async def cancel(self, trace_id: str) -> bool:
        self.cancelled.put_nowait(trace_id)
        if self._cancel_error is not None:
            raise self._cancel_error
        return True


CARD = {"name": "bursts", "description": "streams in bursts"}


async def get(queue: asyncio.Queue[Any]) -> Any:
    async with asyncio.timeout(5):
        return await queue.get()


@pytest.fixture
async def router_flow() -> Any:
    flow = CancellableFlow()
    router = RookeryRouter(flow, inbox_limit=3)
    router.start()
    yield router, flow
    await router.stop()


async def test_full_inbox_is_emptied_signalled_and_its_trace_cancelled(router_flow: Any) -> None:
    router, flow = router_flow
    slow = router.register("slow")
    for index in range(4):
        flow.queue.put_nowait(Record(index, "slow"))
    assert await get(flow.cancelled) == "slow"
    assert slow.qsize() == 1
    assert slow.get_nowait() is OVERFLOW


async def test_items_after_an_overflow_are_discarded(router_flow: Any) -> None:
    router, flow = router_flow
    slow, other = router.register("slow"), router.register("other")
    for index in range(4):
        flow.queue.put_nowait(Record(index, "slow"))
    await get(flow.cancelled)
    flow.queue.put_nowait(Record("late", "slow"))
    flow.queue.put_nowait(Record("mine", "other"))
    assert await get(other) == "mine"
    assert [slow.get_nowait()] == [OVERFLOW]
    assert slow.empty()


async def test_other_inboxes_are_untouched_by_an_overflow(router_flow: Any) -> None:
    router, flow = router_flow
    slow, other = router.register("slow"), router.register("other")
    flow.queue.put_nowait(Record("a", "other"))
    for index in range(4):
        flow.queue.put_nowait(Record(index, "slow"))
    await get(flow.cancelled)
    assert other.get_nowait() == "a"
    assert slow.get_nowait() is OVERFLOW


async def test_inbox_at_the_limit_keeps_every_item(router_flow: Any) -> None:
    router, flow = router_flow
    inbox = router.register("t")
    for index in range(3):
        flow.queue.put_nowait(Record(index, "t"))
    assert [await get(inbox) for _ in range(3)] == [0, 1, 2]
    assert flow.cancelled.empty()


async def test_reregistered_trace_is_served_again_after_an_overflow(router_flow: Any) -> None:
    router, flow = router_flow
    router.register("t")
    for index in range(4):
        flow.queue.put_nowait(Record(index, "t"))
    await get(flow.cancelled)
    router.unregister("t")
    inbox = router.register("t")
    flow.queue.put_nowait(Record("again", "t"))
    assert await get(inbox) == "again"


async def test_failing_cancel_is_logged_and_the_dispatcher_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flow = CancellableFlow(cancel_error=RuntimeError("PenguiFlow is not running"))
    router = RookeryRouter(flow, inbox_limit=1)
    router.start()
    try:
        router.register("slow")
        other = router.register("other")
        with caplog.at_level(logging.WARNING, logger="penguiflow_a2a.routing"):
            flow.queue.put_nowait(Record(0, "slow"))
            flow.queue.put_nowait(Record(1, "slow"))
            flow.queue.put_nowait(Record("still", "other"))
            assert await get(other) == "still"
        assert "a2a_overflow_cancel_failed" in caplog.text
    finally:
        await router.stop()


# -- task subscribers ----------------------------------------------------------------------------


class ChunkSession:
    """A stand-in ``TraceSession`` yielding chunks until a gate opens, then a result."""

    def __init__(self, chunks: int) -> None:
        self.trace_id = self.task_id = self.context_id = "t"
        self.message = None
        self.cancelled: list[str] = []
        self.flow = self
        self._chunks = chunks
        self._sent = 0

    async def cancel(self, trace_id: str) -> bool:
        self.cancelled.append(trace_id)
        return True

    async def start(self) -> None:
        return None

    async def next_item(self) -> Any:
        await asyncio.sleep(0)  # let readers run between chunks, as a real inbox does
        if self._sent < self._chunks:
            self._sent += 1
            return StreamChunk(stream_id="s", seq=self._sent, text="x")
        return {"final": True}

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


async def launch(manager: TaskManager, session: ChunkSession) -> Any:
    return await manager.launch(
        session,  # type: ignore[arg-type]
        user_message={"messageId": "m", "role": "user", "parts": []},
        metadata={},
    )


async def drain(queue: asyncio.Queue[Any]) -> list[Any]:
    events = []
    async with asyncio.timeout(5):
        while (event := await queue.get()) is not None:
            events.append(event)
    return events


async def test_slow_subscriber_fails_the_task_and_gets_only_the_final_status() -> None:
    manager = TaskManager(clock=SYSTEM_CLOCK, max_buffered=8)
    session = ChunkSession(1000)
    record = await launch(manager, session)
    slow = record.subscribe()
    reader = asyncio.ensure_future(drain(record.subscribe()))
    async with asyncio.timeout(5):
        await record.done.wait()
    assert record.state == "failed"
    assert record.status_message["parts"] == [{"text": STREAM_OVERFLOW_TEXT}]
    assert session.cancelled == ["t"]
    assert session._sent < 1000
    slow_events = [slow.get_nowait() for _ in range(slow.qsize())]
    assert slow_events[-1] is None
    [final] = slow_events[:-1]
    assert isinstance(final, StatusEvent)
    assert (final.final, final.status["state"]) == (True, "failed")
    read = await reader
    assert read[-1] == final
    assert len(read) > 8


async def test_subscribers_that_keep_up_see_the_task_complete() -> None:
    manager = TaskManager(clock=SYSTEM_CLOCK, max_buffered=8)
    session = ChunkSession(200)
    record = await launch(manager, session)
    events = await drain(record.subscribe())
    assert record.state == "completed"
    assert session.cancelled == []
    assert events[-1].status["state"] == "completed"


# -- the adapter's requests ----------------------------------------------------------------------


class BurstFlow:
    """A duck-typed flow answering each message with a burst of chunks, all at once.

    The dispatcher fetches the whole burst before the request runs again, so
    an inbox bound below the burst overflows deterministically.
    """

    def __init__(self, burst: int) -> None:
        self.rookery: asyncio.Queue[Any] = asyncio.Queue()
        self.cancelled: list[str] = []
        self._burst = burst
        self._flags: dict[str, asyncio.Event] = {}

    def run(self, *, registry: Any = None) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def emit(self, message: Message, to: Any = None) -> None:
        for seq in range(self._burst):
            chunk = StreamChunk(stream_id=message.trace_id, seq=seq, text="x")
            self.rookery.put_nowait(message.model_copy(update={"payload": chunk}))
        self.rookery.put_nowait(message.model_copy(update={"payload": {"done": True}}))

    async def fetch(self) -> Any:
        return await self.rookery.get()

    async def cancel(self, trace_id: str) -> bool:
        self.cancelled.append(trace_id)
        return True

    async def save_remote_binding(self, binding: Any) -> None:
        return None

    def ensure_trace_event(self, trace_id: str) -> asyncio.Event:
        return self._flags.setdefault(trace_id, asyncio.Event())


REQUEST = A2AMessagePayload(payload="hi", headers={"tenant": "t"})


async def test_send_whose_inbox_overflows_answers_503_and_cancels_the_trace() -> None:
    flow = BurstFlow(burst=5)
    adapter = A2AServerAdapter(flow, agent_card=CARD, agent_url="u", max_buffered_events=2)
    await adapter.start()
    try:
        with pytest.raises(A2ARequestError) as caught:
            async with asyncio.timeout(5):
                await adapter.handle_send(REQUEST)
        assert (caught.value.status_code, caught.value.detail) == (503, STREAM_OVERFLOW_MESSAGE)
        assert len(flow.cancelled) == 1
    finally:
        await adapter.stop()


async def test_legacy_stream_whose_inbox_overflows_ends_with_stream_overflow() -> None:
    flow = BurstFlow(burst=5)
    adapter = A2AServerAdapter(flow, agent_card=CARD, agent_url="u", max_buffered_events=2)
    await adapter.start()
    try:
        events, _, _ = await adapter.stream(REQUEST)
        async with asyncio.timeout(5):
            frames = [frame.decode() async for frame in events]
        assert frames[-2].startswith("event: error")
        assert '"code": "STREAM_OVERFLOW"' in frames[-2]
        assert STREAM_OVERFLOW_MESSAGE in frames[-2]
        assert frames[-1].startswith("event: done")
        assert not any(frame.startswith("event: chunk") for frame in frames)
    finally:
        await adapter.stop()


async def test_burst_within_the_bound_is_served_whole() -> None:
    flow = BurstFlow(burst=5)
    adapter = A2AServerAdapter(flow, agent_card=CARD, agent_url="u", max_buffered_events=6)
    await adapter.start()
    try:
        async with asyncio.timeout(5):
            reply = await adapter.handle_send(REQUEST)
        assert (reply["status"], reply["output"]) == ("succeeded", {"done": True})
        assert flow.cancelled == []
    finally:
        await adapter.stop()


def test_create_a2a_app_refuses_a_bound_below_one() -> None:
    adapter = A2AServerAdapter(BurstFlow(1), agent_card=CARD, agent_url="u")
    with pytest.raises(ValueError, match="max_buffered_events"):
        create_a2a_app(adapter, max_buffered_events=0)


def test_create_a2a_app_hands_the_bound_to_the_adapter() -> None:
    adapter = A2AServerAdapter(BurstFlow(1), agent_card=CARD, agent_url="u")
    create_a2a_app(adapter, max_buffered_events=7)
    assert adapter.max_buffered_events == 7


class UncancellableSession(ChunkSession):
    async def cancel(self, trace_id: str) -> bool:
        raise RuntimeError("PenguiFlow is not running")


async def test_overflowing_task_fails_even_when_its_trace_cannot_be_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    manager = TaskManager(clock=SYSTEM_CLOCK, max_buffered=2)
    record = await launch(manager, UncancellableSession(100))
    record.subscribe()
    with caplog.at_level(logging.WARNING, logger="penguiflow_a2a.tasks"):
        async with asyncio.timeout(5):
            await record.done.wait()
    assert record.state == "failed"
    assert "a2a_overflow_cancel_failed" in caplog.text
