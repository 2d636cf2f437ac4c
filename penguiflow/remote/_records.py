"""Records and the transport protocol of remote calls (no network code here)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from penguiflow.types import Message

__all__ = ["RemoteCallRequest", "RemoteCallResult", "RemoteStreamEvent", "RemoteTransport"]


@dataclass(slots=True)
class RemoteCallRequest:
    """What ``RemoteNode`` asks a transport to run on a remote agent.

    ``message`` is the node's input ``Message`` itself and ``metadata`` is the
    same dict as ``message.meta``; ``timeout_s`` is the node policy's timeout.
    """

    message: Message
    skill: str
    agent_url: str
    agent_card: Mapping[str, Any] | None = None
    metadata: Mapping[str, Any] | None = None
    timeout_s: float | None = None


@dataclass(slots=True)
class RemoteCallResult:
    """The answer of a unary remote call and the remote ids that produced it."""

    result: Any
    context_id: str | None = None
    task_id: str | None = None
    agent_url: str | None = None
    meta: Mapping[str, Any] | None = None


@dataclass(slots=True)
class RemoteStreamEvent:
    """One event of a streamed remote call.

    ``text`` (when not ``None``) becomes a stream chunk in the calling flow;
    ``result`` (when not ``None``) is remembered, the last one being the node's
    return value; the ids bind the trace to the remote task.
    """

    text: str | None = None
    done: bool = False
    meta: Mapping[str, Any] | None = None
    context_id: str | None = None
    task_id: str | None = None
    agent_url: str | None = None
    result: Any | None = None


@runtime_checkable
class RemoteTransport(Protocol):
    """How ``RemoteNode`` reaches a remote agent (A2A over HTTP, a test fake, ...).

    ``stream`` is consumed with ``async for``; implementations are typically
    ``async def stream(...)`` generators. ``cancel`` is called with keyword
    arguments once the trace that owns the remote task is cancelled.
    """

    async def send(self, request: RemoteCallRequest) -> RemoteCallResult:
        """Run the call and return its single result."""
        ...

    def stream(self, request: RemoteCallRequest) -> AsyncIterator[RemoteStreamEvent]:
        """Run the call, yielding its events as they arrive."""
        ...

    async def cancel(self, *, agent_url: str, task_id: str) -> None:
        """Cancel the remote task ``task_id`` on ``agent_url``."""
        ...
