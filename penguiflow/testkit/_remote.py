"""``InMemoryRemoteTransport``: a scripted ``RemoteTransport`` for testing remote nodes.

Each ``send`` or ``stream`` call takes the next scripted reply (or asks the
optional ``handler``). A stream script may contain ``HOLD``: the stream stops
there until the call is cancelled, which lets a test cancel a trace while the
remote task is known to be running, with no sleeps.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final

from penguiflow.remote import RemoteCallRequest, RemoteCallResult, RemoteStreamEvent
from penguiflow.testkit._stores import _Waiters

__all__ = ["HOLD", "InMemoryRemoteTransport", "RemoteCancel"]


class _Hold:
    __slots__ = ()

    def __repr__(self) -> str:
        return "HOLD"


HOLD: Final = _Hold()
"""Stream script marker: block here until the remote call is cancelled."""

StreamStep = RemoteStreamEvent | BaseException | _Hold
SendHandler = Callable[[RemoteCallRequest], Awaitable[RemoteCallResult]]


@dataclass(frozen=True, slots=True)
class RemoteCancel:
    """One ``cancel`` call the transport received."""

    agent_url: str
    task_id: str


class InMemoryRemoteTransport:
    """A ``RemoteTransport`` whose remote agent is a script (or a coroutine function).

    Args:
        handler: answers ``send`` calls when no scripted result is queued.

    Attributes:
        requests: every request received (``send`` and ``stream``), in order.
        cancels: every ``cancel`` call, in order.
        cancel_error: when set, ``cancel`` raises it (after recording the call).

    .. versionadded:: 3.0
    """

    def __init__(self, handler: SendHandler | None = None) -> None:
        self.requests: list[RemoteCallRequest] = []
        self.cancels: list[RemoteCancel] = []
        self.cancel_error: BaseException | None = None
        self._handler = handler
        self._results: deque[RemoteCallResult | BaseException] = deque()
        self._streams: deque[list[StreamStep]] = deque()
        self._held = 0
        self._waiters = _Waiters()

    def add_result(self, result: RemoteCallResult | BaseException) -> None:
        """Queue the reply of a future ``send`` call (an exception is raised)."""
        self._results.append(result)

    def add_stream(self, steps: Iterable[StreamStep]) -> None:
        """Queue the script of a future ``stream`` call.

        Events are yielded, exceptions raised, and ``HOLD`` blocks until cancelled.
        """
        self._streams.append(list(steps))

    async def send(self, request: RemoteCallRequest) -> RemoteCallResult:
        """Return (or raise) the next scripted result, else ask the handler."""
        self.requests.append(request)
        self._waiters.notify()
        if self._results:
            result = self._results.popleft()
            if isinstance(result, BaseException):
                raise result
            return result
        if self._handler is not None:
            return await self._handler(request)
        raise LookupError("InMemoryRemoteTransport: no scripted result for send()")

    async def stream(self, request: RemoteCallRequest) -> AsyncIterator[RemoteStreamEvent]:
        """Play the next scripted stream."""
        self.requests.append(request)
        self._waiters.notify()
        if not self._streams:
            raise LookupError("InMemoryRemoteTransport: no scripted stream for stream()")
        for step in self._streams.popleft():
            if isinstance(step, RemoteStreamEvent):
                yield step
            elif isinstance(step, BaseException):
                raise step
            else:
                self._held += 1
                self._waiters.notify()
                # Parked until the consumer is cancelled (or the generator closed).
                await asyncio.get_running_loop().create_future()

    async def cancel(self, *, agent_url: str, task_id: str) -> None:
        """Record the cancel call; raise ``cancel_error`` if set."""
        self.cancels.append(RemoteCancel(agent_url=agent_url, task_id=task_id))
        self._waiters.notify()
        if self.cancel_error is not None:
            raise self.cancel_error

    async def wait_held(self, count: int = 1) -> None:
        """Wait until ``count`` streams have reached a ``HOLD`` step."""
        await self._waiters.wait(lambda: self._held >= count)

    async def wait_requests(self, count: int = 1) -> list[RemoteCallRequest]:
        """Wait until ``count`` requests were received; return them all."""
        await self._waiters.wait(lambda: len(self.requests) >= count)
        return list(self.requests)

    async def wait_cancels(self, count: int = 1) -> list[RemoteCancel]:
        """Wait until ``count`` cancel calls were received; return them all."""
        await self._waiters.wait(lambda: len(self.cancels) >= count)
        return list(self.cancels)
