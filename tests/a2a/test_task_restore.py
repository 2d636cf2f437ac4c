"""TaskManager with a task store: what is written when, and how a read-back task goes on."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from penguiflow._time import SYSTEM_CLOCK
from penguiflow.interrupts import Interrupt
from penguiflow.types import Headers, Message, StreamChunk
from penguiflow_a2a.principals import UnpersistablePrincipal
from penguiflow_a2a.task_store import InMemoryTaskStore, StoredTask
from penguiflow_a2a.tasks import RESTART_LOST_TEXT, StatusEvent, TaskManager

USER = {"messageId": "m", "role": "user", "parts": [{"text": "hi"}]}


class Session:
    """A stand-in ``TraceSession``: its trace yields what the test puts in ``items``."""

    def __init__(self, trace_id: str = "t") -> None:
        self.trace_id = self.task_id = self.context_id = trace_id
        self.message = Message(payload="hi", headers=Headers(tenant="acme"), trace_id=trace_id)
        self.items: asyncio.Queue[Any] = asyncio.Queue()
        self.started = asyncio.Event()
        self.closed = False
        self.flow = self

    async def start(self) -> None:
        self.started.set()

    async def next_item(self) -> Any:
        return await self.items.get()

    async def resume(self, token: str, value: Any) -> None:
        self.items.put_nowait({"answer": value})

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.close()


class FailingStore(InMemoryTaskStore):
    """Refuses every write after the first ``keep`` (and every delete)."""

    def __init__(self, keep: int = 0) -> None:
        super().__init__()
        self.keep = keep

    async def save(self, task_id: str, record: Any) -> None:
        if self.keep <= 0:
            raise OSError("disk full")
        self.keep -= 1
        await super().save(task_id, record)

    async def delete(self, task_ids: Any) -> None:
        raise OSError("disk full")


def manager(store: InMemoryTaskStore) -> TaskManager:
    return TaskManager(clock=SYSTEM_CLOCK, store=store)


async def settle(record: Any) -> None:
    async with asyncio.timeout(5):
        await record.done.wait()


def stored(store: InMemoryTaskStore, task_id: str = "t") -> StoredTask:
    return StoredTask.from_json(store.records[task_id])


async def test_a_launched_task_is_written_submitted_before_its_runner_starts() -> None:
    store = InMemoryTaskStore()
    session = Session()
    record = await manager(store).launch(session, user_message=USER, metadata={})  # type: ignore[arg-type]
    assert stored(store).state == "submitted"
    assert stored(store).message == session.message
    assert not session.started.is_set()
    session.items.put_nowait({"ok": 1})
    await settle(record)
    assert stored(store).state == "completed"
    assert stored(store).artifacts[-1]["parts"] == [{"data": {"ok": 1}}]


async def test_a_store_that_refuses_the_launch_starts_nothing() -> None:
    tasks = manager(FailingStore())
    with pytest.raises(OSError, match="disk full"):
        await tasks.launch(Session(), user_message=USER, metadata={})  # type: ignore[arg-type]
    assert len(tasks) == 0


async def test_a_principal_without_a_stable_form_cannot_launch_a_durable_task() -> None:
    tasks = manager(InMemoryTaskStore())
    with pytest.raises(UnpersistablePrincipal):
        await tasks.launch(Session(), user_message=USER, metadata={}, principal=1.5)  # type: ignore[arg-type]
    assert len(tasks) == 0


async def test_stopping_the_server_writes_nothing_for_an_unfinished_task() -> None:
    store = InMemoryTaskStore()
    tasks = manager(store)
    session = Session()
    record = await tasks.launch(session, user_message=USER, metadata={})  # type: ignore[arg-type]
    queue = record.subscribe()
    async with asyncio.timeout(5):
        working = await queue.get()
    assert isinstance(working, StatusEvent)
    await tasks.stop()
    assert stored(store).state == "working"


async def test_a_status_is_written_before_a_subscriber_sees_it() -> None:
    store = InMemoryTaskStore()
    seen: list[tuple[str, str]] = []

    def on_event(record: Any, event: Any) -> None:  # called as subscribers get the event
        if isinstance(event, StatusEvent):
            seen.append((event.status["state"], stored(store).state))

    tasks = TaskManager(clock=SYSTEM_CLOCK, store=store, on_event=on_event)
    session = Session()
    record = await tasks.launch(session, user_message=USER, metadata={})  # type: ignore[arg-type]
    session.items.put_nowait({"ok": 1})
    await settle(record)
    assert seen == [("working", "working"), ("completed", "completed")]


async def restore(
    store: InMemoryTaskStore, *, state: str, status: str | None, interrupt: Any = None
) -> tuple[Any, Session, TaskManager]:
    """Write a task in ``state``, then read it back into a new manager."""
    first = manager(store)
    session = Session()
    record = await first.launch(session, user_message=USER, metadata={})  # type: ignore[arg-type]
    await first.stop()
    data = store.records["t"]
    data["state"] = state
    data["resumeToken"] = "old" if state == "input-required" else None
    second = manager(store)
    (task,) = await second.load()
    again = Session()
    restored = await second.restore(task, again, status=status, interrupt=interrupt)  # type: ignore[arg-type]
    assert restored.id == record.id
    return restored, again, second


async def test_a_finished_task_is_kept_as_it_was() -> None:
    store = InMemoryTaskStore()
    restored, session, _ = await restore(store, state="completed", status="finished")
    assert restored.state == "completed"
    assert restored.done.is_set()
    assert session.closed


async def test_a_task_whose_result_was_fetched_by_the_dead_process_fails_as_lost() -> None:
    store = InMemoryTaskStore()
    restored, _, _ = await restore(store, state="working", status="finished")
    assert restored.state == "failed"
    assert restored.status_message["parts"] == [{"text": RESTART_LOST_TEXT}]
    assert stored(store).state == "failed"


async def test_a_task_whose_trace_was_cancelled_is_canceled() -> None:
    store = InMemoryTaskStore()
    restored, _, _ = await restore(store, state="working", status="cancelled")
    assert restored.state == "canceled"
    assert stored(store).state == "canceled"


async def test_a_task_without_its_request_fails_as_lost() -> None:
    store = InMemoryTaskStore()
    first = manager(store)
    await first.launch(Session(), user_message=USER, metadata={})  # type: ignore[arg-type]
    await first.stop()
    second = manager(store)
    (task,) = await second.load()
    restored = await second.restore(task, None, status=None)
    assert restored.state == "failed"


async def test_a_parked_trace_makes_the_task_wait_with_the_journals_token() -> None:
    store = InMemoryTaskStore()
    interrupt = Interrupt(trace_id="t", node="work", payload={"q": "?"}, token="fresh")
    restored, _, tasks = await restore(store, state="working", status="parked", interrupt=interrupt)
    assert (restored.state, restored.resume_token) == ("input-required", "fresh")
    assert restored.settled.is_set()
    assert stored(store).resume_token == "fresh"
    assert restored.status_message["parts"] == [{"data": {"q": "?"}}]
    await tasks.resume(restored, USER, "yes")
    await settle(restored)
    assert restored.state == "completed"


async def test_an_answer_journaled_before_the_crash_lets_the_task_run_on() -> None:
    store = InMemoryTaskStore()
    restored, session, _ = await restore(store, state="input-required", status="running")
    assert (restored.state, restored.resume_token) == ("working", None)
    session.items.put_nowait({"answer": "yes"})
    await settle(restored)
    assert restored.state == "completed"


async def test_a_running_task_goes_on_without_announcing_itself_again() -> None:
    store = InMemoryTaskStore()
    restored, session, _ = await restore(store, state="working", status="running")
    queue = restored.subscribe()
    async with asyncio.timeout(5):
        await session.started.wait()
    session.items.put_nowait({"ok": 2})
    await settle(restored)
    states = []
    while (event := queue.get_nowait()) is not None:
        if isinstance(event, StatusEvent):
            states.append(event.status["state"])
    assert states == ["completed"]


async def test_an_unreadable_record_is_skipped() -> None:
    store = InMemoryTaskStore()
    store.records["bad"] = {"format": 1}
    assert await manager(store).load() == []


async def test_a_store_failing_mid_task_ends_the_runner_with_the_last_written_state() -> None:
    store = FailingStore(keep=2)  # submitted, working
    tasks = manager(store)
    session = Session()
    record = await tasks.launch(session, user_message=USER, metadata={})  # type: ignore[arg-type]
    session.items.put_nowait({"ok": 1})
    await settle(record)
    assert stored(store).state == "working"
    assert session.closed


async def test_a_store_failing_while_the_task_is_cancelled_still_cancels_the_runner() -> None:
    store = FailingStore(keep=2)
    tasks = manager(store)
    session = Session()
    record = await tasks.launch(session, user_message=USER, metadata={})  # type: ignore[arg-type]
    queue = record.subscribe()
    async with asyncio.timeout(5):
        await queue.get()  # working
    (runner,) = [t for t in asyncio.all_tasks() if t.get_name() == "penguiflow-a2a-task-t"]
    runner.cancel()
    await settle(record)
    assert runner.cancelled()


async def test_an_answer_the_store_refuses_leaves_the_task_waiting() -> None:
    store = FailingStore(keep=3)  # submitted, working, input-required
    tasks = manager(store)
    session = Session()
    record = await tasks.launch(session, user_message=USER, metadata={})  # type: ignore[arg-type]
    record.session = session  # type: ignore[assignment]
    queue = record.subscribe()
    session.items.put_nowait(Interrupt(trace_id="t", node="work", payload="?", token="tok"))
    async with asyncio.timeout(5):
        while await queue.get() is not None:
            pass
    assert record.interrupted
    with pytest.raises(OSError, match="disk full"):
        await tasks.resume(record, USER, "yes")
    assert (record.state, record.resume_token) == ("input-required", "tok")


async def test_an_evicted_task_is_deleted_from_the_store() -> None:
    store = InMemoryTaskStore()
    tasks = TaskManager(clock=SYSTEM_CLOCK, store=store, max_tasks=1)
    first = Session("a")
    record = await tasks.launch(first, user_message=USER, metadata={})  # type: ignore[arg-type]
    first.items.put_nowait({"ok": 1})
    await settle(record)
    second = Session("b")
    await tasks.launch(second, user_message=USER, metadata={})  # type: ignore[arg-type]
    assert list(store.records) == ["b"]
    await tasks.stop()


async def test_a_store_refusing_a_delete_does_not_fail_the_new_task() -> None:
    store = FailingStore(keep=10)
    tasks = TaskManager(clock=SYSTEM_CLOCK, store=store, max_tasks=1)
    first = Session("a")
    record = await tasks.launch(first, user_message=USER, metadata={})  # type: ignore[arg-type]
    first.items.put_nowait({"ok": 1})
    await settle(record)
    kept = await tasks.launch(Session("b"), user_message=USER, metadata={})  # type: ignore[arg-type]
    assert tasks.get(kept.id, kept.principal) is kept
    assert set(store.records) == {"a", "b"}
    await tasks.stop()


async def test_a_manager_without_a_store_loads_nothing() -> None:
    assert await TaskManager(clock=SYSTEM_CLOCK).load() == []


async def test_a_restored_stream_artifact_goes_on_with_later_chunks() -> None:
    store = InMemoryTaskStore()
    first = manager(store)
    session = Session()
    record = await first.launch(session, user_message=USER, metadata={})  # type: ignore[arg-type]
    session.items.put_nowait(StreamChunk(stream_id="s", seq=0, text="ab"))
    session.items.put_nowait(Interrupt(trace_id="t", node="work", payload="?", token="tok"))
    queue = record.subscribe()
    async with asyncio.timeout(5):
        while await queue.get() is not None:
            pass
    await first.stop()
    second = manager(store)
    (task,) = await second.load()
    again = Session()
    restored = await second.restore(task, again, status="running")  # type: ignore[arg-type]
    again.items.put_nowait(StreamChunk(stream_id="s", seq=1, text="cd"))
    again.items.put_nowait({"ok": 1})
    await settle(restored)
    stream = next(a for a in restored.artifacts if a["name"] == "stream")
    assert stream["parts"] == [{"text": "abcd"}]
