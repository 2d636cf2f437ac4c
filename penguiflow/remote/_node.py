"""``RemoteNode``: a flow node whose work runs on a remote agent.

The node uses only the public runtime hooks of ``PenguiFlow``
(``record_remote_event``, ``save_remote_binding``, ``ensure_trace_event``,
``register_external_task``) and ``Context.emit_chunk``, so it works with any
runtime offering them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from penguiflow._time import SYSTEM_CLOCK, Clock
from penguiflow.remote._records import RemoteCallRequest, RemoteTransport
from penguiflow.state import RemoteBinding

if TYPE_CHECKING:
    from penguiflow.node import Node, NodePolicy
    from penguiflow.types import Message

__all__ = ["RemoteNode", "estimate_json_bytes"]


class _Runtime(Protocol):
    """The slice of ``PenguiFlow`` a remote node needs (its public hooks)."""

    def ensure_trace_event(self, trace_id: str) -> asyncio.Event: ...

    def register_external_task(self, trace_id: str | None, task: asyncio.Task[Any]) -> None: ...

    async def save_remote_binding(self, binding: RemoteBinding) -> None: ...

    async def record_remote_event(
        self,
        *,
        event: str,
        node: Any,
        context: Any,
        trace_id: str | None,
        latency_ms: float | None,
        level: int = logging.INFO,
        extra: Mapping[str, Any] | None = None,
    ) -> None: ...


def _json_default(value: Any) -> Any:
    # Pydantic models serialise as JSON data, bytes as text; anything else by repr.
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    return repr(value)


def estimate_json_bytes(value: Any) -> int:
    """Estimate the UTF-8 size of ``value`` serialised as JSON (telemetry only).

    .. versionadded:: 3.0
    """
    try:
        return len(json.dumps(value, default=_json_default).encode("utf-8"))
    except Exception:  # a model_dump or repr that raises: size of the str() instead
        return len(str(value).encode("utf-8"))


@dataclass(frozen=True, slots=True)
class _RemoteSpec:
    transport: RemoteTransport
    skill: str
    agent_url: str
    agent_card: Mapping[str, Any] | None
    timeout_s: float | None
    streaming: bool
    record_binding: bool


class _RemoteCall:
    """State of one invocation: remote ids, telemetry counters, the cancel watcher."""

    def __init__(
        self, spec: _RemoteSpec, node: Node, message: Message, ctx: Any, runtime: _Runtime
    ) -> None:
        self.spec = spec
        self.node = node
        self.message = message
        self.ctx = ctx
        self.runtime = runtime
        clock = getattr(runtime, "clock", None)
        self.clock: Clock = clock if isinstance(clock, Clock) else SYSTEM_CLOCK
        self.started = self.clock.monotonic()
        self.request_bytes = estimate_json_bytes(message)
        self.reported_url: str | None = None
        self.context_id: str | None = None
        self.task_id: str | None = None
        self.binding: RemoteBinding | None = None
        self.trace_event: asyncio.Event | None = None
        self.watcher: asyncio.Task[None] | None = None

    # --- telemetry ------------------------------------------------------------------

    def _elapsed_ms(self, since: float) -> float:
        return (self.clock.monotonic() - since) * 1000.0

    def _extra(self, specific: Mapping[str, Any]) -> dict[str, Any]:
        # Order is part of the contract: base keys, known ids, then event keys.
        extra: dict[str, Any] = {
            "remote_skill": self.spec.skill,
            "remote_transport": type(self.spec.transport).__name__,
            "remote_streaming": self.spec.streaming,
            "remote_request_bytes": self.request_bytes,
            "remote_agent_url": self.reported_url or self.spec.agent_url,
        }
        if self.context_id is not None:
            extra["remote_context_id"] = self.context_id
        if self.task_id is not None:
            extra["remote_task_id"] = self.task_id
        extra.update((key, value) for key, value in specific.items() if value is not None)
        return extra

    async def _record(self, event: str, level: int, latency_ms: float, **specific: Any) -> None:
        await self.runtime.record_remote_event(
            event=event,
            node=self.node,
            context=self.ctx,
            trace_id=self.message.trace_id,
            latency_ms=latency_ms,
            level=level,
            extra=self._extra(specific),
        )

    def _observe(self, context_id: str | None, task_id: str | None, url: str | None) -> None:
        if context_id is not None:
            self.context_id = context_id
        if task_id is not None:
            self.task_id = task_id
        if url:
            self.reported_url = url

    # --- binding and cancellation ----------------------------------------------------

    async def _bind(self, context_id: str, task_id: str, url: str | None) -> None:
        """Persist the binding once, then mirror the trace's cancellation remotely."""
        from penguiflow.core import TraceCancelled

        trace_id = self.message.trace_id
        self.binding = RemoteBinding(
            trace_id=trace_id,
            context_id=context_id,
            task_id=task_id,
            agent_url=url or self.spec.agent_url,
        )
        if self.spec.record_binding:
            await self.runtime.save_remote_binding(self.binding)
        self.trace_event = self.runtime.ensure_trace_event(trace_id)
        if self.trace_event.is_set():
            await self._cancel_remote("pre_cancelled")
            raise TraceCancelled(trace_id)
        self.watcher = asyncio.create_task(
            self._watch(self.trace_event), name=f"remote-cancel-watch:{trace_id}"
        )
        # The runtime owns the watcher from here: stop() cancels and awaits it.
        self.runtime.register_external_task(trace_id, self.watcher)

    async def _watch(self, trace_event: asyncio.Event) -> None:
        await trace_event.wait()
        await self._cancel_remote("trace_cancel")

    async def _cancel_remote(self, reason: str) -> None:
        assert self.binding is not None  # only called once ids are bound
        started = self.clock.monotonic()
        try:
            await self.spec.transport.cancel(
                agent_url=self.binding.agent_url, task_id=self.binding.task_id
            )
        except Exception as exc:  # reported as an event; the trace is cancelled anyway
            await self._record(
                "remote_cancel_error",
                logging.ERROR,
                self._elapsed_ms(started),
                remote_cancel_reason=reason,
                remote_error=repr(exc),
                remote_status="cancel_error",
            )
        else:
            await self._record(
                "remote_call_cancelled",
                logging.INFO,
                self._elapsed_ms(started),
                remote_cancel_reason=reason,
                remote_status="cancelled",
            )

    async def _release_watcher(self) -> None:
        watcher = self.watcher
        if watcher is None:
            return
        if self.trace_event is not None and self.trace_event.is_set():
            # The trace was cancelled: let the watcher finish the remote cancel so
            # exactly one remote_call_cancelled is recorded before the node exits.
            await asyncio.shield(watcher)
        else:
            watcher.cancel()

    # --- the call ---------------------------------------------------------------------

    def _request(self) -> RemoteCallRequest:
        return RemoteCallRequest(
            message=self.message,
            skill=self.spec.skill,
            agent_url=self.spec.agent_url,
            agent_card=self.spec.agent_card,
            metadata=self.message.meta,
            timeout_s=self.spec.timeout_s,
        )

    async def run(self) -> Any:
        from penguiflow.core import TraceCancelled

        request = self._request()
        await self._record("remote_call_start", logging.DEBUG, 0.0)
        try:
            if self.spec.streaming:
                result, response_bytes, events = await self._stream(request)
            else:
                result, response_bytes, events = await self._send(request)
        except TraceCancelled:
            raise
        except Exception as exc:
            await self._record(
                "remote_call_error",
                logging.ERROR,
                self._elapsed_ms(self.started),
                remote_error=repr(exc),
                remote_status="error",
            )
            raise
        finally:
            await self._release_watcher()
        await self._record(
            "remote_call_success",
            logging.INFO,
            self._elapsed_ms(self.started),
            remote_response_bytes=response_bytes,
            remote_stream_events=events,
            remote_status="success",
        )
        return result

    async def _send(self, request: RemoteCallRequest) -> tuple[Any, int, int]:
        result = await self.spec.transport.send(request)
        self._observe(result.context_id, result.task_id, result.agent_url)
        if result.context_id and result.task_id:
            await self._bind(result.context_id, result.task_id, result.agent_url)
        return result.result, estimate_json_bytes(result.result), 0

    async def _stream(self, request: RemoteCallRequest) -> tuple[Any, int, int]:
        result: Any = None
        response_bytes = 0
        seq = 0
        stream = self.spec.transport.stream(request)
        try:
            async for event in stream:
                self._observe(event.context_id, event.task_id, event.agent_url)
                if self.binding is None and event.context_id and event.task_id:
                    await self._bind(event.context_id, event.task_id, event.agent_url)
                chunk_bytes = 0
                if event.text is not None:
                    meta = dict(event.meta) if event.meta is not None else None
                    await self.ctx.emit_chunk(
                        parent=self.message, text=event.text, done=event.done, meta=meta
                    )
                    chunk_bytes = len(event.text.encode("utf-8"))
                    if event.meta:
                        chunk_bytes += estimate_json_bytes(dict(event.meta))
                    response_bytes += chunk_bytes
                await self._record(
                    "remote_stream_event",
                    logging.DEBUG,
                    self._elapsed_ms(self.started),
                    remote_stream_seq=seq,
                    remote_chunk_bytes=chunk_bytes or None,
                    remote_chunk_done=bool(event.done),
                    remote_chunk_meta_keys=sorted(event.meta) if event.meta else None,
                )
                if event.result is not None:
                    result = event.result
                    response_bytes += estimate_json_bytes(event.result)
                seq += 1
        finally:
            # Close the transport's generator now (also on cancel), not at GC time.
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        return result, response_bytes, seq


# A factory spelled like a class: the 2.2.5 public name.
def RemoteNode(
    *,
    transport: RemoteTransport,
    skill: str,
    agent_url: str,
    name: str,
    agent_card: Mapping[str, Any] | None = None,
    policy: NodePolicy | None = None,
    streaming: bool = False,
    record_binding: bool = True,
) -> Node:
    """Return a ``Node`` named ``name`` that runs ``skill`` on a remote agent.

    Each invocation sends the input ``Message`` through ``transport``
    (``send`` or, with ``streaming=True``, ``stream`` whose text events are
    mirrored into the flow with ``ctx.emit_chunk``). The first reported
    context/task ids are saved as a ``RemoteBinding`` (if ``record_binding``)
    and cancelling the trace cancels the remote task. Every step emits a
    ``remote_*`` event with the telemetry of distribution.md.

    Args:
        transport: the ``RemoteTransport`` to call.
        skill: the remote skill name.
        agent_url: the remote agent's URL (used unless the transport reports one).
        name: the node name.
        agent_card: forwarded in each ``RemoteCallRequest``.
        policy: the node policy (default ``NodePolicy()``); its retries and
            timeout cover the whole remote call.
        streaming: use ``transport.stream`` instead of ``transport.send``.
        record_binding: persist bindings via ``flow.save_remote_binding``.

    Raises (per invocation):
        TypeError: the input is not a ``penguiflow.types.Message``.
        RuntimeError: the context is not bound to a running flow.
        penguiflow.core.TraceCancelled: the trace was already cancelled when the
            remote ids became known (the remote task is cancelled first).
    """
    from penguiflow.node import Node, NodePolicy
    from penguiflow.types import Message

    node_policy = policy or NodePolicy()
    spec = _RemoteSpec(
        transport=transport,
        skill=skill,
        agent_url=agent_url,
        agent_card=agent_card,
        timeout_s=node_policy.timeout_s,
        streaming=streaming,
        record_binding=record_binding,
    )

    async def remote_call(message: Any, ctx: Any) -> Any:
        if not isinstance(message, Message):
            raise TypeError("Remote nodes require penguiflow.types.Message inputs")
        runtime = ctx.runtime
        if runtime is None:
            raise RuntimeError("Context is not bound to a running PenguiFlow")
        return await _RemoteCall(spec, node, message, ctx, runtime).run()

    node = Node(remote_call, name=name, policy=node_policy)
    return node
