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

It stays one module past ~400 lines: the task record, its store and its runner
change together.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from penguiflow._logging import get_logger
from penguiflow._time import Clock
from penguiflow.interrupts import Interrupt

from ._legacy_json import jsonable_encoder
from ._session import (
    SessionCancelled,
    SessionOverflow,
    SessionShutdown,
    TraceSession,
    chunk_of,
    is_flow_error,
    jsonable,
    payload_of,
)
from ._strict_json import NotJsonError, check_text, strict_value
from .principals import SHARED_PRINCIPAL, Principal

if TYPE_CHECKING:
    from .push_config import PushConfig

__all__ = [
    "INPUT_REQUIRED",
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

TERMINAL_STATES = frozenset({"completed", "failed", "canceled", "rejected"})
#: The state of a task whose flow waits in ``ctx.interrupt``.
INPUT_REQUIRED = "input-required"

#: The status text of a task stopped because a stream client fell too far behind.
STREAM_OVERFLOW_TEXT = "stream client too slow: too many undelivered events; task stopped"
_CHUNK = "a stream chunk"
_RESULT = "a result"


def timestamp(epoch: float) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z`` (clients reject naive times)."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def wire_data(value: Any) -> Any:
    """``value`` as JSON data for a task: ``jsonable``, then FastAPI's conversions.

    Datetimes become ISO text, UUIDs and decimals strings, enums their values (as
    the 2.2.5 routes encode them), so a result holding them is kept, not refused.

    Raises:
        ValueError: an object with no JSON form.
    """
    return jsonable_encoder(jsonable(value))


def part_for(value: Any) -> dict[str, Any]:
    """One part for a result: text for ``str``, data for anything else."""
    if isinstance(value, str):
        return {"text": value}
    return {"data": wire_data(value)}


def _error_parts(error: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"text": str(error.get("message", ""))}, {"data": wire_data(error)}]


@dataclass(slots=True)
class StatusEvent:
    """The task's status changed; ``final`` marks the last update of a stream.

    That is a terminal update, or one to ``input-required``.
    """

    task_id: str
    context_id: str
    status: dict[str, Any]
    final: bool


@dataclass(slots=True)
class ArtifactEvent:
    """An artifact was created (``append=False``) or extended (``append=True``)."""

    task_id: str
    context_id: str
    artifact: dict[str, Any]
    append: bool
    last_chunk: bool


TaskEvent = StatusEvent | ArtifactEvent


class StreamText:
    """The text of a task's ``stream`` artifact, appended in amortised O(1).

    ``str +=`` on the stored part copied the whole stream per chunk (quadratic
    in the number of chunks); the pieces are joined only when the artifact is
    read, and the join is kept until the next append.
    """

    __slots__ = ("_pieces",)

    def __init__(self, first: str) -> None:
        self._pieces = [first]

    def append(self, text: str) -> None:
        """Add ``text`` at the end."""
        self._pieces.append(text)

    @property
    def pending(self) -> int:
        """How many pieces wait to be joined (1 right after a read)."""
        return len(self._pieces)

    def value(self) -> str:
        """The whole text."""
        if len(self._pieces) > 1:
            self._pieces = ["".join(self._pieces)]
        return self._pieces[0]


@dataclass(eq=False)
class TaskRecord:
    """One task's state; mutated only by its runner and the manager.

    ``artifacts`` is read through the property, which brings the ``stream``
    artifact's text up to date first.
    """

    id: str
    context_id: str
    state: str
    updated: float
    status_message: dict[str, Any] | None = None
    _artifacts: list[dict[str, Any]] = field(default_factory=list)
    stream_text: StreamText | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    subscribers: set[asyncio.Queue[TaskEvent | None]] = field(default_factory=set)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    session: TraceSession | None = None
    principal: Principal = SHARED_PRINCIPAL
    max_buffered: int = 1024
    #: subscribers that fell ``max_buffered`` events behind: they get only the final status
    stalled: list[asyncio.Queue[TaskEvent | None]] = field(default_factory=list)
    push_configs: dict[str, PushConfig] = field(default_factory=dict)
    #: the token of the ``Interrupt`` the task waits on (state ``input-required``)
    resume_token: str | None = None
    #: set while the task is ``input-required`` or over: what a blocking send waits for
    settled: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        """The task's artifacts (the ``stream`` one holds the whole stream so far)."""
        if self.stream_text is not None and self.stream_text.pending > 1:
            stream = next(a for a in self._artifacts if a["name"] == "stream")
            stream["parts"][0]["text"] = self.stream_text.value()
        return self._artifacts

    def add_artifact(self, artifact: dict[str, Any]) -> None:
        """Store a new artifact (without joining the stream text)."""
        self._artifacts.append(artifact)

    @property
    def terminal(self) -> bool:
        """Whether the task reached a terminal state."""
        return self.state in TERMINAL_STATES

    @property
    def interrupted(self) -> bool:
        """Whether the task waits for input (``input-required``)."""
        return self.state == INPUT_REQUIRED

    def status(self) -> dict[str, Any]:
        """The neutral ``TaskStatus`` JSON."""
        status: dict[str, Any] = {"state": self.state, "timestamp": timestamp(self.updated)}
        if self.status_message is not None:
            status["message"] = self.status_message
        return status

    def subscribe(self) -> asyncio.Queue[TaskEvent | None]:
        """A queue receiving every later event, then ``None`` when the task ends."""
        queue: asyncio.Queue[TaskEvent | None] = asyncio.Queue()
        if self.terminal:
            queue.put_nowait(None)
        else:
            self.subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[TaskEvent | None]) -> None:
        """Stop delivering events to ``queue`` (a stream's client went away)."""
        self.subscribers.discard(queue)

    def publish(self, event: TaskEvent) -> None:
        """Hand ``event`` to every subscriber; one that is full becomes ``stalled``."""
        full = None
        for queue in self.subscribers:
            if queue.qsize() >= self.max_buffered:
                full = [*(full or ()), queue]
            else:
                queue.put_nowait(event)
        for queue in full or ():
            # Free what the client did not read; it is told only how the task ended.
            while not queue.empty():
                queue.get_nowait()
            self.subscribers.discard(queue)
            self.stalled.append(queue)


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of ListTasks: the records and how to render them."""

    records: list[TaskRecord]
    next_page_token: str
    page_size: int
    total_size: int
    history_length: int | None
    artifacts: bool


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
    """

    def __init__(
        self,
        *,
        clock: Clock,
        max_tasks: int = 1000,
        max_buffered: int = 1024,
        on_event: Callable[[TaskRecord, TaskEvent], None] | None = None,
    ) -> None:
        self._clock = clock
        self._on_event = on_event
        self._max_tasks = max_tasks
        self._max_buffered = max_buffered
        self._tasks: OrderedDict[str, TaskRecord] = OrderedDict()
        self._runners: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

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
        while len(self._tasks) >= self._max_tasks:
            victim = next((tid for tid, rec in self._tasks.items() if rec.terminal), None)
            if victim is None:
                raise TaskStoreFull(f"too many active tasks (limit {self._max_tasks})")
            del self._tasks[victim]

    def launch(
        self,
        session: TraceSession,
        *,
        user_message: dict[str, Any],
        metadata: dict[str, Any],
        principal: Principal = SHARED_PRINCIPAL,
    ) -> TaskRecord:
        """Store a task of ``principal`` for ``session`` and start its runner."""
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
        )
        self._tasks[record.id] = record
        runner = asyncio.get_running_loop().create_task(
            self._run(record, session), name=f"penguiflow-a2a-task-{record.id}"
        )
        self._runners.add(runner)
        runner.add_done_callback(self._runners.discard)
        return record

    async def stop(self) -> None:
        """Cancel every runner still going and wait for it."""
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

    def _set_state(self, record: TaskRecord, state: str, message: dict[str, Any] | None) -> None:
        record.state = state
        record.updated = self._clock.time()
        record.status_message = message
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

    def _interrupted(self, record: TaskRecord, interrupt: Interrupt) -> None:
        """The flow waits in ``ctx.interrupt``: the task needs input."""
        parts = [strict_value(interrupt.payload, what="an interrupt payload", convert=part_for)]
        record.resume_token = interrupt.token
        self._set_state(record, INPUT_REQUIRED, self._agent_message(record, parts))

    async def resume(self, record: TaskRecord, message: dict[str, Any], value: Any) -> None:
        """Continue an ``input-required`` task with the user's ``message`` (its ``value``).

        The task is ``working`` again before this awaits anything, so a second
        message for the same task is refused (it is no longer waiting).

        Raises:
            penguiflow.errors.InterruptTokenError: the trace no longer waits
                (cancelled meanwhile); the task ends through its runner.
        """
        session = record.session
        token, record.resume_token = record.resume_token, None
        assert session is not None  # an input-required task has both
        assert token is not None
        record.history.append({**message, "taskId": record.id, "contextId": record.context_id})
        record.settled.clear()
        self._set_state(record, "working", None)
        await session.flow.resume(token, value)

    def _agent_message(self, record: TaskRecord, parts: list[dict[str, Any]]) -> dict[str, Any]:
        message = {
            "messageId": uuid.uuid4().hex,
            "role": "agent",
            "parts": parts,
            "taskId": record.id,
            "contextId": record.context_id,
        }
        record.history.append(message)
        return message

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

    async def _run(self, record: TaskRecord, session: TraceSession) -> None:
        try:
            await session.start()
            self._set_state(record, "working", None)
            while True:
                item = await session.next_item()
                if type(item) is Interrupt:
                    self._interrupted(record, item)
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
                self._set_state(record, "failed", self._agent_message(record, parts))
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
                self._publish(
                    record, ArtifactEvent(record.id, record.context_id, artifact, False, True)
                )
                self._set_state(record, "completed", None)
        except SessionCancelled:
            self._set_state(record, "canceled", None)
        except SessionOverflow:
            # A client of this task (or the task's own inbox) fell too far
            # behind: stop the work instead of buffering without limit.
            _log.warning("a2a_stream_overflow", task_id=record.id, limit=self._max_buffered)
            await _cancel_trace(session)
            message = self._agent_message(record, [{"text": STREAM_OVERFLOW_TEXT}])
            self._set_state(record, "failed", message)
        except SessionShutdown:
            message = self._agent_message(record, [{"text": "flow is shutting down"}])
            self._set_state(record, "failed", message)
        except asyncio.CancelledError:
            self._set_state(record, "canceled", None)
            raise
        except NotJsonError as exc:
            # Refused before it entered the store, so no later reply carries
            # it; the task fails with a safe message and the trace stops.
            _log.warning("a2a_output_not_json", task_id=record.id, detail=exc.detail)
            self._set_state(record, "failed", self._agent_message(record, [{"text": str(exc)}]))
            with contextlib.suppress(Exception):
                await session.flow.cancel(session.trace_id)
        except Exception as exc:
            # The task's status names the failure, never its text: the log has that.
            _log.exception("a2a_task_failed", task_id=record.id, exception=repr(exc))
            text = "flow execution failed: internal error"
            self._set_state(record, "failed", self._agent_message(record, [{"text": text}]))
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


async def _cancel_trace(session: TraceSession) -> None:
    try:
        await session.flow.cancel(session.trace_id)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        # The flow stopping meanwhile is not this task's failure.
        _log.warning("a2a_overflow_cancel_failed", trace_id=session.trace_id, exception=repr(exc))
