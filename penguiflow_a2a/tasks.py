"""Version-neutral A2A tasks: records, a bounded in-memory store and their runners.

A task is one trace of the served flow (task id = trace id, as in 2.2.5).
Its runner drives a ``TraceSession`` and turns Rookery items into task state:
stream chunks append to a ``stream`` artifact, the result becomes a
``result`` artifact and ``completed``, a ``FlowError`` ``failed``, a cancel
``canceled``. A node's ``ctx.interrupt`` (a ``penguiflow.Interrupt``) puts the
task in ``input-required`` with the payload in the status message; the runner
keeps going, and a message naming the task resumes the trace (``resume``).
Streams end after the ``input-required`` update, as after a terminal one.
Records use the A2A 1.0 JSON shapes with lowercase states and roles; the
JSON-RPC and REST codecs (``codec``) render them per version.

Visibility: every task belongs to the principal that created it
(``penguiflow_a2a.principals``), and the store is the one place that decides
who sees it. Every lookup takes the caller's principal:
``TaskManager.get(task_id, principal)`` returns ``None`` for a task of
another principal exactly as for an unknown id, and
``TaskManager.records(principal)`` lists only that principal's tasks. Handlers
(GetTask, CancelTask, SubscribeToTask, ListTasks, a message continuing a task,
push-notification configs) get records only through these two methods.

Slow subscribers: a subscriber queue holds at most ``max_buffered`` events a
client has not read. One more and the runner stops the task: it cancels the
trace, drops what that client had not read, and ends the task ``failed``
with ``STREAM_OVERFLOW_TEXT`` (every subscriber receives that final status).

Durable tasks: with a ``task_store.TaskStore`` (a durable flow's) every
status change is written to the store before any client can see it (the
record in memory, its events, a blocking send's reply); an artifact is
written with the status change that follows it (a result with
``completed``), so ``stream`` chunks between two status changes are not
written on their own. A task's runner that stops because the server stops
writes nothing: the task carries on in the next process (``restore``).

It stays one module past ~400 lines: the store and the runner of its
records change together (the records themselves are in ``task_record``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from penguiflow._logging import get_logger
from penguiflow._time import Clock
from penguiflow.interrupts import Interrupt

from ._session import (
    SessionCancelled,
    SessionOverflow,
    SessionShutdown,
    TraceSession,
    chunk_of,
    is_flow_error,
    payload_of,
)
from ._strict_json import NotJsonError, check_text, strict_value
from .principals import SHARED_PRINCIPAL, Principal
from .push_config import PushConfig
from .task_record import (
    INPUT_REQUIRED,
    TERMINAL_STATES,
    ArtifactEvent,
    StatusEvent,
    StreamText,
    TaskEvent,
    TaskPage,
    TaskRecord,
    part_for,
    timestamp,
    wire_data,
)
from .task_store import StoredTask, TaskStore, snapshot

__all__ = [
    "INPUT_REQUIRED",
    "RESTART_LOST_TEXT",
    "STREAM_OVERFLOW_TEXT",
    "TERMINAL_STATES",
    "ArtifactEvent",
    "StatusEvent",
    "StreamText",
    "TaskEvent",
    "TaskManager",
    "TaskPage",
    "TaskRecord",
    "TaskStoreFull",
    "part_for",
    "timestamp",
]

_log = get_logger("penguiflow_a2a.tasks")

#: The status text of a task stopped because a stream client fell too far behind.
STREAM_OVERFLOW_TEXT = "stream client too slow: too many undelivered events; task stopped"
#: The status text of a durable task whose result was fetched by a process that then died.
RESTART_LOST_TEXT = "the task's result was lost in a server restart"
_CHUNK = "a stream chunk"
_RESULT = "a result"


def _error_parts(error: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"text": str(error.get("message", ""))}, {"data": wire_data(error)}]


class TaskStoreFull(Exception):
    """Every slot of the task store holds an unfinished task."""


class TaskManager:
    """The bounded in-memory task store and the owner of every runner task.

    Args:
        clock: where status timestamps come from (wall clock).
        max_tasks: how many tasks are kept; the oldest finished ones are
            evicted first, and a new task is refused while all are running.
        max_buffered: how many unread events one subscriber may hold (see
            the module docstring).
        on_event: called with every event after the subscribers got it
            (the push sender).
        on_restore: called with a task read back from ``store`` and its stored
            push configs, before its restore publishes anything (the push
            sender registers them).
        store: where the tasks are also written (durable tasks; see the
            module docstring); ``None`` keeps them in memory only.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        max_tasks: int = 1000,
        max_buffered: int = 1024,
        on_event: Callable[[TaskRecord, TaskEvent], None] | None = None,
        store: TaskStore | None = None,
        on_restore: Callable[[TaskRecord, list[PushConfig]], None] | None = None,
    ) -> None:
        self._clock = clock
        self._store = store
        self._pending = 0  # launches writing their first record
        self._evicted: list[str] = []  # evicted from memory, still in the store
        self._on_event = on_event
        self._on_restore = on_restore
        self._max_tasks = max_tasks
        self._max_buffered = max_buffered
        self._tasks: OrderedDict[str, TaskRecord] = OrderedDict()
        self._runners: set[asyncio.Task[None]] = set()
        self._stopping = False

    def __len__(self) -> int:
        return len(self._tasks)

    @property
    def store(self) -> TaskStore | None:
        """Where tasks are written (``None``: in memory only)."""
        return self._store

    def get(self, task_id: str, principal: Principal) -> TaskRecord | None:
        """The stored task ``task_id`` if it belongs to ``principal``, else ``None``.

        A task of another principal is ``None`` exactly like an unknown id, so
        a caller cannot tell them apart.
        """
        record = self._tasks.get(task_id)
        if record is None or record.principal != principal:
            return None
        return record

    def records(self, principal: Principal) -> list[TaskRecord]:
        """The stored tasks of ``principal``, most recently updated first."""
        mine = [record for record in self._tasks.values() if record.principal == principal]
        return sorted(mine, key=lambda record: record.updated, reverse=True)

    def reserve_slot(self) -> None:
        """Make room for one more task.

        Raises:
            TaskStoreFull: when every stored task is still running.
        """
        while len(self._tasks) + self._pending >= self._max_tasks:
            victim = next((tid for tid, rec in self._tasks.items() if rec.terminal), None)
            if victim is None:
                raise TaskStoreFull(f"too many active tasks (limit {self._max_tasks})")
            del self._tasks[victim]
            if self._store is not None:
                self._evicted.append(victim)

    def _snapshot(
        self,
        record: TaskRecord,
        *,
        state: str | None = None,
        updated: float | None = None,
        status_message: dict[str, Any] | None = None,
        history: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        return snapshot(
            task_id=record.id,
            context_id=record.context_id,
            trace_id=record.trace_id,
            principal=record.principal,
            state=record.state if state is None else state,
            updated=record.updated if updated is None else updated,
            status_message=status_message if state is not None else record.status_message,
            artifacts=record.artifacts,
            history=record.history if history is None else history,
            metadata=record.metadata,
            resume_token=record.resume_token,
            message=record.message,
            push_configs=list(record.push_configs.values()),
        )

    async def persist(self, record: TaskRecord) -> None:
        """Write ``record`` as it is now (a durable task's push configs changed).

        Raises:
            Exception: what the store raised.
        """
        if self._store is not None:
            await self._store.save(record.id, self._snapshot(record))

    async def _forget_evicted(self) -> None:
        evicted, self._evicted = self._evicted, []
        if evicted and self._store is not None:
            try:
                await self._store.delete(evicted)
            except Exception as exc:
                # They are gone from memory; a restart brings them back (and
                # evicts them again): not this request's failure.
                _log.warning("a2a_task_store_delete_failed", exception=repr(exc))

    async def launch(
        self,
        session: TraceSession,
        *,
        user_message: dict[str, Any],
        metadata: dict[str, Any],
        principal: Principal = SHARED_PRINCIPAL,
    ) -> TaskRecord:
        """Store a task of ``principal`` for ``session`` and start its runner.

        With a store the task is written (``submitted``) before it is kept in
        memory and its runner starts.

        Raises:
            TaskStoreFull: no room.
            UnpersistablePrincipal: a durable task of a principal with no stable form.
            Exception: what the store raised (nothing was started).
        """
        self.reserve_slot()
        record = TaskRecord(
            id=session.task_id,
            context_id=session.context_id,
            state="submitted",
            updated=self._clock.time(),
            history=[{**user_message, "taskId": session.task_id, "contextId": session.context_id}],
            metadata=metadata,
            session=session,
            principal=principal,
            max_buffered=self._max_buffered,
            trace_id=session.trace_id,
            message=session.message,
        )
        if self._store is not None:
            self._pending += 1
            try:
                await self._store.save(record.id, self._snapshot(record))
            finally:
                self._pending -= 1
            await self._forget_evicted()
        self._tasks[record.id] = record
        self._start_runner(record, session, announce=True)
        return record

    def _start_runner(self, record: TaskRecord, session: TraceSession, *, announce: bool) -> None:
        runner = asyncio.get_running_loop().create_task(
            self._run(record, session, announce=announce), name=f"penguiflow-a2a-task-{record.id}"
        )
        self._runners.add(runner)
        runner.add_done_callback(self._runners.discard)

    async def load(self) -> list[StoredTask]:
        """The tasks the store holds, oldest update first (``[]`` without a store).

        A record that cannot be read is logged and skipped.
        """
        if self._store is None:
            return []
        tasks = []
        for data in await self._store.load():
            try:
                tasks.append(StoredTask.from_json(data))
            except (KeyError, TypeError, ValueError) as exc:
                _log.warning("a2a_task_record_unreadable", exception=repr(exc))
        return sorted(tasks, key=lambda task: task.updated)

    async def restore(
        self,
        stored: StoredTask,
        session: TraceSession | None,
        *,
        status: str | None,
        interrupt: Interrupt | None = None,
    ) -> TaskRecord:
        """Keep a task read back from the store after a restart; continue it if unfinished.

        ``session`` is attached to its trace (its start emits the request
        again with the task id as idempotency key: nothing happens if the
        journal has it). ``status`` is the trace's journal status
        (``penguiflow.journal.TraceStatus``, ``None`` if never journaled):
        ``cancelled`` ends the task ``canceled``, ``finished`` (its result
        was fetched by the process that died) ``failed`` with
        ``RESTART_LOST_TEXT``; an ``interrupt`` (the one its parked trace
        waits on) makes it ``input-required``; otherwise its runner carries on.
        """
        record = TaskRecord(
            id=stored.id,
            context_id=stored.context_id,
            state=stored.state,
            updated=stored.updated,
            status_message=stored.status_message,
            _artifacts=list(stored.artifacts),
            history=list(stored.history),
            metadata=dict(stored.metadata),
            principal=stored.principal,
            max_buffered=self._max_buffered,
            resume_token=stored.resume_token,
            trace_id=stored.trace_id,
            message=stored.message,
        )
        stream = next((a for a in record.artifacts if a.get("name") == "stream"), None)
        if stream is not None:
            record.stream_text = StreamText(stream["parts"][0]["text"])
        if stored.push_configs and self._on_restore is not None:
            self._on_restore(record, stored.push_configs)  # before anything is published
        self._tasks[record.id] = record
        self._tasks.move_to_end(record.id)
        if not record.terminal:
            if session is None or status == "finished":
                message = self._agent_message(record, [{"text": RESTART_LOST_TEXT}])
                await self._transition(record, "failed", message)
            elif status == "cancelled":
                await self._transition(record, "canceled", None)
            elif interrupt is not None:
                if record.resume_token != interrupt.token or not record.interrupted:
                    await self._interrupted(record, interrupt)
            elif record.interrupted and status != "parked":
                # The answer was journaled before the crash; the trace runs on.
                record.resume_token = None
                await self._transition(record, "working", None)
        if record.terminal or session is None:
            record.resume_token = None
            record.done.set()
            record.settled.set()
            if session is not None:
                await session.aclose()
            return record
        if record.interrupted:
            record.settled.set()
        record.session = session
        self._start_runner(record, session, announce=record.state == "submitted")
        return record

    async def stop(self) -> None:
        """Cancel every runner still going and wait for it.

        With a store nothing is written: the tasks carry on after a restart.
        """
        self._stopping = True
        runners = list(self._runners)
        for runner in runners:
            runner.cancel()
        for runner in runners:
            with contextlib.suppress(asyncio.CancelledError):
                await runner

    def _publish(self, record: TaskRecord, event: TaskEvent) -> None:
        record.publish(event)
        if self._on_event is not None:
            self._on_event(record, event)

    async def _transition(
        self,
        record: TaskRecord,
        state: str,
        message: dict[str, Any] | None,
        *,
        before: tuple[TaskEvent, ...] = (),
        user_message: dict[str, Any] | None = None,
    ) -> None:
        """Set the task's status (``message`` joins its history), written first if durable.

        ``before`` are published after the write, ahead of the status event;
        ``user_message`` joins the history ahead of ``message``.
        """
        updated = self._clock.time()
        added = [m for m in (user_message, message) if m is not None]
        if self._store is not None:
            await self._store.save(
                record.id,
                self._snapshot(
                    record,
                    state=state,
                    updated=updated,
                    status_message=message,
                    history=[*record.history, *added],
                ),
            )
        record.history.extend(added)
        record.state = state
        record.updated = updated
        record.status_message = message
        for event in before:
            self._publish(record, event)
        final = record.terminal or record.interrupted
        event = StatusEvent(record.id, record.context_id, record.status(), final)
        self._publish(record, event)
        if record.terminal:
            for queue in record.stalled:
                queue.put_nowait(event)
        elif final:
            # input-required ends every stream (the A2A streaming rule); a client
            # resumes with a new message and reads on in the stream that opens.
            for queue in record.stalled:
                queue.put_nowait(event)
            for queue in (*record.subscribers, *record.stalled):
                queue.put_nowait(None)
            record.subscribers.clear()
            record.stalled.clear()
            record.settled.set()

    async def _interrupted(self, record: TaskRecord, interrupt: Interrupt) -> None:
        """The flow waits in ``ctx.interrupt``: the task needs input."""
        parts = [strict_value(interrupt.payload, what="an interrupt payload", convert=part_for)]
        record.resume_token = interrupt.token
        await self._transition(record, INPUT_REQUIRED, self._agent_message(record, parts))

    async def resume(self, record: TaskRecord, message: dict[str, Any], value: Any) -> None:
        """Continue an ``input-required`` task with the user's ``message`` (its ``value``).

        The token is taken before this awaits anything, so a second message
        for the same task is refused (``resumable`` is false); a durable
        task is written ``working`` before the flow is resumed.

        Raises:
            penguiflow.errors.InterruptTokenError: the trace no longer waits
                (cancelled meanwhile); the task ends through its runner.
            Exception: what the store raised (the task still waits).
        """
        session = record.session
        token, record.resume_token = record.resume_token, None
        assert session is not None  # only called when resumable
        assert token is not None
        user = {**message, "taskId": record.id, "contextId": record.context_id}
        try:
            await self._transition(record, "working", None, user_message=user)
        except BaseException:
            record.resume_token = token
            raise
        record.settled.clear()
        await session.flow.resume(token, value)

    def _agent_message(self, record: TaskRecord, parts: list[dict[str, Any]]) -> dict[str, Any]:
        # Joins the history with the status it is the message of (_transition).
        return {
            "messageId": uuid.uuid4().hex,
            "role": "agent",
            "parts": parts,
            "taskId": record.id,
            "contextId": record.context_id,
        }

    def _add_chunk(self, record: TaskRecord, chunk: Any) -> None:
        check_text(chunk.text, what=_CHUNK)
        update = {
            "artifactId": f"{record.id}-stream",
            "name": "stream",
            "parts": [{"text": chunk.text}],
        }
        if chunk.meta:
            update["metadata"] = strict_value(chunk.meta, what=_CHUNK, convert=wire_data)
        appended = record.stream_text is not None
        if record.stream_text is None:
            record.stream_text = StreamText(chunk.text)
            record.add_artifact({**update, "parts": [{"text": chunk.text}]})
        else:
            # The stored artifact keeps one text part holding the whole
            # stream; it is joined when read (TaskRecord.artifacts).
            record.stream_text.append(chunk.text)
        self._publish(
            record, ArtifactEvent(record.id, record.context_id, update, appended, chunk.done)
        )

    async def _run(self, record: TaskRecord, session: TraceSession, *, announce: bool) -> None:
        try:
            await self._drive(record, session, announce=announce)
        finally:
            record.session = None
            record.resume_token = None
            session.close()
            record.done.set()
            record.settled.set()
            for queue in (*record.subscribers, *record.stalled):
                queue.put_nowait(None)
            record.subscribers.clear()
            record.stalled.clear()
            await session.aclose()

    async def _drive(self, record: TaskRecord, session: TraceSession, *, announce: bool) -> None:
        try:
            try:
                await self._serve(record, session, announce=announce)
            except asyncio.CancelledError:
                if self._store is None or not self._stopping:
                    try:
                        await self._transition(record, "canceled", None)
                    except Exception as exc:
                        _log.exception(
                            "a2a_task_store_failed", task_id=record.id, exception=repr(exc)
                        )
                raise
            except SessionShutdown:
                # A durable task is not over: the next process carries it on.
                if self._store is None:
                    message = self._agent_message(record, [{"text": "flow is shutting down"}])
                    await self._transition(record, "failed", message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # The store refused a write while the task ended: the task is over
            # here; a restart finds the last state that was written.
            _log.exception("a2a_task_store_failed", task_id=record.id, exception=repr(exc))

    async def _serve(self, record: TaskRecord, session: TraceSession, *, announce: bool) -> None:
        try:
            await session.start()
            if announce:
                await self._transition(record, "working", None)
            while True:
                item = await session.next_item()
                if type(item) is Interrupt:
                    await self._interrupted(record, item)
                    continue
                chunk = chunk_of(item)
                if chunk is None:
                    break
                self._add_chunk(record, chunk)
                if record.stalled:
                    raise SessionOverflow
            if is_flow_error(item):
                error = item.to_payload()
                error.setdefault("trace_id", session.trace_id)
                parts = strict_value(error, what="an error", convert=_error_parts)
                await self._transition(record, "failed", self._agent_message(record, parts))
            else:
                artifact = {
                    "artifactId": f"{record.id}-result",
                    "name": "result",
                    "parts": [strict_value(payload_of(item), what=_RESULT, convert=part_for)],
                }
                meta = getattr(item, "meta", None)
                if meta:
                    artifact["metadata"] = strict_value(dict(meta), what=_RESULT, convert=wire_data)
                record.add_artifact(artifact)
                event = ArtifactEvent(record.id, record.context_id, artifact, False, True)
                await self._transition(record, "completed", None, before=(event,))
        except SessionCancelled:
            await self._transition(record, "canceled", None)
        except SessionOverflow:
            # A client of this task (or the task's own inbox) fell too far
            # behind: stop the work instead of buffering without limit.
            _log.warning("a2a_stream_overflow", task_id=record.id, limit=self._max_buffered)
            await _cancel_trace(session)
            message = self._agent_message(record, [{"text": STREAM_OVERFLOW_TEXT}])
            await self._transition(record, "failed", message)
        except NotJsonError as exc:
            # Refused before it entered the store, so no later reply carries
            # it; the task fails with a safe message and the trace stops.
            _log.warning("a2a_output_not_json", task_id=record.id, detail=exc.detail)
            message = self._agent_message(record, [{"text": str(exc)}])
            await self._transition(record, "failed", message)
            with contextlib.suppress(Exception):
                await session.flow.cancel(session.trace_id)
        except (asyncio.CancelledError, SessionShutdown):
            raise
        except Exception as exc:
            # The task's status names the failure, never its text: the log has that.
            _log.exception("a2a_task_failed", task_id=record.id, exception=repr(exc))
            text = "flow execution failed: internal error"
            await self._transition(record, "failed", self._agent_message(record, [{"text": text}]))


async def _cancel_trace(session: TraceSession) -> None:
    try:
        await session.flow.cancel(session.trace_id)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # The flow stopping meanwhile is not this task's failure.
        _log.warning("a2a_overflow_cancel_failed", trace_id=session.trace_id, exception=repr(exc))
