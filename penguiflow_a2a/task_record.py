"""A2A task records: a task's state, its events and its ``stream`` text.

Records use the A2A 1.0 JSON shapes with lowercase states and roles; the
JSON-RPC and REST codecs (``codec``) render them per version. The task
manager (``tasks``) mutates them; ``penguiflow_a2a.tasks`` re-exports every
name here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from penguiflow.types import Message

from ._legacy_json import jsonable_encoder
from ._session import TraceSession, jsonable
from .principals import SHARED_PRINCIPAL, Principal

if TYPE_CHECKING:
    from .push_config import PushConfig

__all__ = [
    "INPUT_REQUIRED",
    "TERMINAL_STATES",
    "ArtifactEvent",
    "StatusEvent",
    "StreamText",
    "TaskEvent",
    "TaskPage",
    "TaskRecord",
    "part_for",
    "timestamp",
    "wire_data",
]

TERMINAL_STATES = frozenset({"completed", "failed", "canceled", "rejected"})
#: The state of a task whose flow waits in ``ctx.interrupt``.
INPUT_REQUIRED = "input-required"


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
    #: the trace serving the task (the task id, unless a 2.2.5 caller named one)
    trace_id: str = ""
    #: the request, kept so that a durable task can be emitted again after a restart
    message: Message | None = None

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
