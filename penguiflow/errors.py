"""The one exception hierarchy of PenguiFlow.

::

    Exception
    ├── PenguiFlowError                 base of everything this package raises on purpose
    │   ├── ActorError                  the actor kernel (penguiflow.actors)
    │   │   ├── MailboxFull             put_nowait/try_tell on a full lane
    │   │   ├── MailboxClosed           put/get on a closed mailbox
    │   │   ├── ActorStopped            send/ask to an actor that has stopped (dead letter)
    │   │   ├── ActorCrashed            the handler of an ``ask`` crashed the actor
    │   │   └── ActorInterrupted        the handler of an ``ask`` was interrupted
    │   ├── SupervisionError            penguiflow.supervision misuse and failure
    │   │   ├── AlreadyStarted / AlreadyPresent / ChildNotFound
    │   │   ├── ChildRunning / ChildRestarting / SimpleOneForOneError
    │   │   └── Escalated               restart intensity exceeded; carries ``cause``
    │   ├── PlannerError (RuntimeError) the ReactPlanner cannot go on
    │   │   └── LLMCallError            the model call failed; carries ``model``
    │   ├── StateStoreError             a state store cannot be used; carries ``path``
    │   │   ├── StateStoreLocked        the file stayed locked by another writer
    │   │   ├── StateStoreCorrupt       the file is not a readable SQLite database
    │   │   └── JournalError            a durable-flow journal write or read failed
    │   │       ├── JournalConflict     a step consumed an entry no longer in the journal
    │   │       └── InterruptTokenError resume with an unknown or already used token
    │   ├── DurabilityError (TypeError) durable=True without a journal, or an operation
    │   │                               durable flows do not offer (emit_nowait, ...)
    │   ├── InterruptUnavailable (RuntimeError) ``ctx.interrupt`` where no trace can park
    │   ├── SerializationError (TypeError) a payload cannot cross a process boundary
    │   └── ToolError                   an external tool failed; carries ``tool``, ``server``
    │       ├── ToolNotFound (LookupError)      the server lists no tool of that name
    │       ├── ToolArgumentsInvalid (ValueError) arguments break the tool's JSON schema
    │       ├── ToolCallError           the tool answered with an error (MCP ``isError``)
    │       ├── ToolTimeout (TimeoutError)     no answer within ``timeout_s``
    │       └── ToolUnavailable         the session is down; ``retryable`` says if a retry may work
    └── (2.2.5 names keep their 2.2.5 bases; see below the kernel section)

Context rides as attributes (``actor``, ``child_id``, ``cause``), not only in the
message. ``asyncio.CancelledError`` is never an error here and is never swallowed.

The flow-level 2.2.5 names (``FlowError``, ``FlowErrorCode``) are defined further
down; ``CycleError`` (a ``RuntimeError``) and ``TraceCancelled`` live with the runtime
in ``penguiflow.core`` as in 2.2.5.

It stays one module past ~400 lines: the hierarchy is read as one tree, drawn
above, with each class beside its place in it.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

__all__ = [
    "ActorCrashed",
    "ActorError",
    "ActorInterrupted",
    "ActorStopped",
    "AlreadyPresent",
    "AlreadyStarted",
    "ChildNotFound",
    "ChildRestarting",
    "ChildRunning",
    "DurabilityError",
    "Escalated",
    "FlowError",
    "FlowErrorCode",
    "InterruptTokenError",
    "InterruptUnavailable",
    "JournalConflict",
    "JournalError",
    "JournalInUse",
    "LLMCallError",
    "MailboxClosed",
    "MailboxFull",
    "PenguiFlowError",
    "PlannerError",
    "SerializationError",
    "SimpleOneForOneError",
    "StateStoreCorrupt",
    "StateStoreError",
    "StateStoreLocked",
    "SupervisionError",
    "ToolArgumentsInvalid",
    "ToolCallError",
    "ToolError",
    "ToolNotFound",
    "ToolTimeout",
    "ToolUnavailable",
]


class PenguiFlowError(Exception):
    """Base class of every exception PenguiFlow raises on purpose."""


# --- actor kernel -------------------------------------------------------------------


class ActorError(PenguiFlowError):
    """A failure of the actor kernel; ``actor`` names the actor when known."""

    def __init__(self, message: str, *, actor: str | None = None) -> None:
        super().__init__(message)
        self.actor = actor


class MailboxFull(ActorError):
    """A non-waiting put found the lane full (or producers already waiting)."""


class MailboxClosed(ActorError):
    """The mailbox was closed; nothing more can be put or taken."""


class ActorStopped(ActorError):
    """The target actor has stopped; the message became a dead letter."""


class ActorCrashed(ActorError):
    """The actor crashed while handling an ``ask``; ``__cause__`` is the crash."""


class ActorInterrupted(ActorError):
    """``ActorRef.interrupt`` cancelled the handler of this ``ask``; ``reason`` says why."""

    def __init__(self, message: str, *, actor: str | None = None, reason: object = None) -> None:
        super().__init__(message, actor=actor)
        self.reason = reason


# --- supervision ----------------------------------------------------------------------


class SupervisionError(PenguiFlowError):
    """Misuse or failure of a supervisor; ``child_id`` names the child when known."""

    def __init__(self, message: str, *, child_id: Any = None) -> None:
        super().__init__(message)
        self.child_id = child_id


class AlreadyStarted(SupervisionError):
    """``start_child`` for an id whose child is running."""


class AlreadyPresent(SupervisionError):
    """``start_child`` for an id whose spec is present but not running."""


class ChildNotFound(SupervisionError):
    """No child with that id (or ref)."""


class ChildRunning(SupervisionError):
    """``restart_child``/``delete_child`` on a running child."""


class ChildRestarting(SupervisionError):
    """The child is between incarnations (backing off or restarting)."""


class SimpleOneForOneError(SupervisionError):
    """An operation that ``simple_one_for_one`` supervisors do not support."""


class Escalated(SupervisionError):
    """Restart intensity was exceeded; the supervisor stopped its children and exited.

    ``cause`` is the exception of the crash that tipped the limit.
    """

    def __init__(self, message: str, *, cause: BaseException | None = None, child_id: Any = None):
        super().__init__(message, child_id=child_id)
        self.cause = cause


# --- planner (penguiflow.planner) ---------------------------------------------------


class PlannerError(PenguiFlowError, RuntimeError):
    """The planner cannot go on; a ``RuntimeError``, as the 2.2.5 planner errors were."""


class LLMCallError(PlannerError):
    """Calling the language model failed; ``model`` names it, ``__cause__`` is the SDK error."""

    def __init__(self, message: str, *, model: str | None = None) -> None:
        super().__init__(message)
        self.model = model


# --- state stores (penguiflow.stores) -------------------------------------------------


class StateStoreError(PenguiFlowError):
    """A state store cannot be opened, read or written; ``path`` names its file."""

    def __init__(self, message: str, *, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path


class StateStoreLocked(StateStoreError):
    """Another writer kept the store locked longer than the busy timeout; retry later."""


class StateStoreCorrupt(StateStoreError):
    """The file is not a SQLite database, or its content is damaged."""


class JournalError(StateStoreError):
    """The journal of durable flows could not record or read something.

    Unlike event history, the journal never degrades silently: a failed write
    fails every call whose data it carried, and nothing of those calls is
    stored. ``__cause__`` is the store's own error (``StateStoreLocked``, the
    driver's, ...).

    .. versionadded:: 3.0
    """


class JournalConflict(JournalError):
    """A step consumed an edge entry that is not in the journal (already consumed?).

    Nothing of the step is stored. Seen when two handlers finish the same entry,
    e.g. two processes recovering one journal. ``entry_id`` names the entry.

    .. versionadded:: 3.0
    """

    def __init__(self, message: str, *, entry_id: int, path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.entry_id = entry_id


class JournalInUse(JournalError):
    """Another running durable flow owns the journal: ``run()`` refuses a second one.

    Two flows working one journal at once would both put its entries back and
    handle them twice. The owner lets go when its flow stops or its process
    dies (a kill -9 included). ``owner`` describes it (e.g. ``"pid 4242"``) when
    known.

    .. versionadded:: 3.0
    """

    def __init__(self, message: str, *, owner: str | None = None, path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.owner = owner


class InterruptTokenError(JournalError):
    """``resume`` (or a step) named an interrupt token that is unknown, resumed or used.

    ``token`` is the token given.

    .. versionadded:: 3.0
    """

    def __init__(self, message: str, *, token: str, path: str | None = None) -> None:
        super().__init__(message, path=path)
        self.token = token


class DurabilityError(PenguiFlowError, TypeError):
    """A flow cannot be durable as asked, or was asked what durable flows do not offer.

    Raised by ``create(..., durable=True)`` without a state store, with a store
    that keeps no journal, or with two nodes of one name; by ``emit_nowait``,
    ``emit_chunk`` from OpenSea and Rookery's ``fetch_nowait`` on a durable flow
    (use ``await flow.emit`` and ``await flow.fetch``: journaling waits), and by a
    node's ``ctx.fetch`` on its own edges there; by ``recover`` called twice, before
    ``run()``, or on a journal whose edges the flow does not have; and by hosting
    calls that would move a durable node's items out of the journal's sight
    (``replace_mailbox``: a deployment). A ``TypeError``, as ``journal_of``
    raises for a store without a journal.

    .. versionadded:: 3.0
    """


class InterruptUnavailable(PenguiFlowError, RuntimeError):
    """``ctx.interrupt`` was called where a trace cannot park.

    Outside a node invocation of a running flow (a detached ``Context``, OpenSea,
    a node run by a deployment that does not run it in the flow's node actor),
    or while the flow stops. ``node`` names the context's owner.

    .. versionadded:: 3.0
    """

    def __init__(self, message: str, *, node: str | None = None) -> None:
        super().__init__(message)
        self.node = node


# --- distribution (penguiflow.distributed) -------------------------------------------


class SerializationError(PenguiFlowError, TypeError):
    """A value cannot be turned into JSON to cross a process boundary, or back.

    ``path`` locates the offending value inside the item (``payload.rows[2]``),
    ``type_name`` names its type. A ``TypeError``, as ``json.dumps`` raises.

    .. versionadded:: 3.0
    """

    def __init__(self, message: str, *, path: str = "", type_name: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name


# --- external tools (penguiflow.tools) ---------------------------------------------


class ToolError(PenguiFlowError):
    """Calling an external tool failed; ``tool`` and ``server`` name it when known.

    .. versionadded:: 3.0
    """

    def __init__(self, message: str, *, tool: str | None = None, server: str | None = None):
        super().__init__(message)
        self.tool = tool
        self.server = server


class ToolNotFound(ToolError, LookupError):
    """The server lists no tool of that name (or the toolset's filter hides it)."""


class ToolArgumentsInvalid(ToolError, ValueError):
    """The arguments do not match the tool's JSON schema; nothing was sent.

    ``errors`` holds one ``{"path": ..., "message": ...}`` record per violation.
    A ``ValueError``, so a pydantic validator raising it becomes a ``ValidationError``
    the planner's argument-repair path reads.
    """

    def __init__(
        self,
        message: str,
        *,
        tool: str | None = None,
        server: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ):
        super().__init__(message, tool=tool, server=server)
        self.errors: list[dict[str, Any]] = list(errors or [])


class ToolCallError(ToolError):
    """The tool ran and reported an error (MCP ``isError``); ``content`` is its text."""

    def __init__(
        self, message: str, *, tool: str | None = None, server: str | None = None, content: str = ""
    ):
        super().__init__(message, tool=tool, server=server)
        self.content = content


class ToolTimeout(ToolError, TimeoutError):
    """The call (waiting for a session included) did not finish within ``timeout_s``."""


class ToolUnavailable(ToolError):
    """The tool's session is down: the connection dropped, or the supervisor gave up.

    ``retryable`` is True while the supervisor is restarting the session (a retry,
    such as the node's ``NodePolicy`` retry, may succeed) and False once restart
    intensity was exceeded or the toolset was closed.
    """

    def __init__(
        self,
        message: str,
        *,
        tool: str | None = None,
        server: str | None = None,
        retryable: bool = True,
    ):
        super().__init__(message, tool=tool, server=server)
        self.retryable = retryable


# --- flow level (2.2.5): FlowErrorCode, FlowError -- owned by the core runtime -------


# (str, Enum), not StrEnum: 2.2.5 programs see str(code) == "FlowErrorCode.NODE_TIMEOUT".
class FlowErrorCode(str, Enum):  # noqa: UP042
    """Stable codes of a ``FlowError``; each value equals its name."""

    NODE_TIMEOUT = "NODE_TIMEOUT"
    NODE_EXCEPTION = "NODE_EXCEPTION"
    TRACE_CANCELLED = "TRACE_CANCELLED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    HOP_BUDGET_EXHAUSTED = "HOP_BUDGET_EXHAUSTED"
    TOKEN_BUDGET_EXHAUSTED = "TOKEN_BUDGET_EXHAUSTED"


class FlowError(PenguiFlowError):
    """The terminal record of one message a node could not process under its policy.

    A value, not a crash: the runtime builds it when retries are exhausted, emits
    ``node_failed`` with ``to_payload()``, and (with ``emit_errors_to_rookery``)
    delivers this very object to Rookery. ``code`` is always a plain ``str``.
    """

    def __init__(
        self,
        *,
        trace_id: str | None,
        node_name: str | None,
        code: FlowErrorCode | str,
        message: str,
        original_exc: BaseException | None = None,
        node_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.trace_id = trace_id
        self.node_name = node_name
        self.node_id = node_id
        self.code: str = code.value if isinstance(code, FlowErrorCode) else str(code)
        self.message = message
        self.original_exc = original_exc
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.exception_type: str | None = (
            type(original_exc).__name__ if original_exc is not None else None
        )

    def __str__(self) -> str:
        text = f"[{self.code}] {self.message}"
        if self.trace_id:
            text += f" trace={self.trace_id}"
        if self.node_name:
            text += f" node={self.node_name}"
        return text.strip()

    def unwrap(self) -> BaseException | None:
        """Return the original exception (the very object the node raised)."""
        return self.original_exc

    def to_payload(self) -> dict[str, Any]:
        """A JSON-friendly dict: code, message, then the known context fields."""
        payload: dict[str, Any] = {"code": self.code, "message": self.message}
        for key in ("trace_id", "node_name", "node_id", "exception_type"):
            value = getattr(self, key)
            if value is not None:
                payload[key] = value
        if self.metadata:
            payload["metadata"] = dict(self.metadata)
        return payload

    @classmethod
    def from_exception(
        cls,
        *,
        trace_id: str | None,
        node_name: str | None,
        node_id: str | None,
        exc: BaseException,
        code: FlowErrorCode | str,
        message: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> FlowError:
        """Build a ``FlowError`` around ``exc`` (message defaults to ``str(exc)``)."""
        return cls(
            trace_id=trace_id,
            node_name=node_name,
            node_id=node_id,
            code=code,
            message=message or str(exc) or type(exc).__name__,
            original_exc=exc,
            metadata=metadata,
        )
