"""``A2AHttpTransport``: a ``RemoteTransport`` that calls A2A agents over JSON-RPC (aiohttp).

``RemoteNode(transport=A2AHttpTransport(), agent_url="http://host:port/", ...)``
sends the node's input ``Message`` as an A2A message (a text part for a
``str`` payload, a data part otherwise; headers and meta in the message
metadata), streams artifact updates back as chunks, and cancels the remote
task when the trace is cancelled. A 1.0 agent is called with ``SendMessage``;
``version="0.3"`` (or an agent card advertising only 0.3) uses
``message/send``. aiohttp is imported when the transport is first used.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from penguiflow._tracecontext import current_carrier
from penguiflow.errors import PenguiFlowError
from penguiflow.remote import RemoteCallRequest, RemoteCallResult, RemoteStreamEvent

from ._replies import Endpoint, choose_endpoint, read_task_update, result_of_parts
from ._session import jsonable

if TYPE_CHECKING:
    import aiohttp

__all__ = ["A2AHttpTransport", "A2ARemoteError"]

_METHODS = {
    "1.0": {"send": "SendMessage", "stream": "SendStreamingMessage", "cancel": "CancelTask"},
    "0.3": {"send": "message/send", "stream": "message/stream", "cancel": "tasks/cancel"},
}
_NOT_CANCELABLE = -32002


class A2ARemoteError(PenguiFlowError):
    """A remote A2A agent refused the call or its task did not complete.

    Attributes:
        code: the JSON-RPC error code, or the HTTP status, or ``None`` for a
            task that ended ``failed``/``canceled``/``rejected``.
        state: the remote task's final state when the task itself failed.
        agent_url: the endpoint that was called.
    """

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        state: str | None = None,
        agent_url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.state = state
        self.agent_url = agent_url


class A2AHttpTransport:
    """Call A2A agents (ours or any other) from ``RemoteNode``.

    Args:
        session: an ``aiohttp.ClientSession`` to use (not closed by us);
            by default the transport opens one and ``aclose()`` closes it.
        version: ``"1.0"`` or ``"0.3"``, used unless the agent card passed
            to ``RemoteNode`` says otherwise.
        headers: extra HTTP headers for every request.
        bearer_token: sent as ``Authorization: Bearer <token>``.

    .. versionadded:: 3.0
    """

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        version: str = "1.0",
        headers: Mapping[str, str] | None = None,
        bearer_token: str | None = None,
    ) -> None:
        if version not in _METHODS:
            raise ValueError(f"unsupported A2A version {version!r} (use '1.0' or '0.3')")
        self._session = session
        self._owns_session = session is None
        self.version = version
        self._headers = dict(headers or {})
        if bearer_token is not None:
            self._headers["Authorization"] = f"Bearer {bearer_token}"
        # agent_url -> endpoint actually used, so cancel() speaks the same version.
        self._endpoints: dict[str, Endpoint] = {}

    async def __aenter__(self) -> A2AHttpTransport:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session if this transport opened it."""
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            import aiohttp

            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    def _endpoint(self, request: RemoteCallRequest) -> Endpoint:
        endpoint = choose_endpoint(request.agent_url, request.agent_card, self.version)
        self._endpoints[request.agent_url] = endpoint
        return endpoint

    def _params(self, request: RemoteCallRequest, version: str) -> dict[str, Any]:
        message = request.message
        payload = message.payload
        part: dict[str, Any]
        if isinstance(payload, str):
            part = {"text": payload} if version == "1.0" else {"kind": "text", "text": payload}
        else:
            data = jsonable(payload)
            if version == "1.0":
                part = {"data": data}
            else:
                part = {"kind": "data", "data": data if isinstance(data, dict) else {"value": data}}
        metadata = {
            **jsonable(dict(request.metadata or {})),
            "headers": message.headers.model_dump(mode="json"),
            "skill": request.skill,
        }
        a2a_message: dict[str, Any] = {
            "messageId": uuid.uuid4().hex,
            "role": "ROLE_USER" if version == "1.0" else "user",
            "parts": [part],
            "metadata": metadata,
        }
        if version == "0.3":
            a2a_message["kind"] = "message"
        return {"message": a2a_message}

    def _body(self, version: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        method = _METHODS[version][operation]
        return {"jsonrpc": "2.0", "id": uuid.uuid4().hex, "method": method, "params": params}

    def _request_headers(self, version: str, *, stream: bool = False) -> dict[str, str]:
        # W3C trace context of the calling node's span (nothing without OpenTelemetry).
        headers = {**self._headers, **current_carrier(), "A2A-Version": version}
        if stream:
            headers["Accept"] = "text/event-stream"
        return headers

    async def send(self, request: RemoteCallRequest) -> RemoteCallResult:
        """Run the call with ``SendMessage`` (blocking) and return its result.

        Raises:
            A2ARemoteError: a JSON-RPC error, a non-200 reply, or a task that
                ended failed, canceled or rejected.
        """
        import aiohttp

        endpoint = self._endpoint(request)
        body = self._body(endpoint.version, "send", self._params(request, endpoint.version))
        timeout = aiohttp.ClientTimeout(total=request.timeout_s)
        async with self._client().post(
            endpoint.url,
            json=body,
            headers=self._request_headers(endpoint.version),
            timeout=timeout,
        ) as response:
            reply = await self._json(response, endpoint)
        result = _unwrap(reply, endpoint)
        if result.get("kind") == "message":
            value, _ = result_of_parts(result.get("parts") or [])
            return RemoteCallResult(
                result=value,
                context_id=result.get("contextId"),
                task_id=result.get("taskId"),
                agent_url=endpoint.url,
            )
        update = read_task_update(result)
        if update.failed:
            raise A2ARemoteError(
                update.error or f"remote task ended {update.state}",
                state=update.state,
                agent_url=endpoint.url,
            )
        return RemoteCallResult(
            result=update.result,
            context_id=update.context_id,
            task_id=update.task_id,
            agent_url=endpoint.url,
            meta=update.result_meta,
        )

    async def stream(self, request: RemoteCallRequest) -> AsyncIterator[RemoteStreamEvent]:
        """Run the call with ``SendStreamingMessage``, yielding its events.

        The first event carries the remote task and context ids (so the
        caller can bind and cancel); artifact text becomes ``text`` events;
        the result artifact becomes an event with ``result``.

        Raises:
            A2ARemoteError: as ``send``.
        """
        import aiohttp

        endpoint = self._endpoint(request)
        body = self._body(endpoint.version, "stream", self._params(request, endpoint.version))
        timeout = aiohttp.ClientTimeout(total=None, sock_read=request.timeout_s)
        headers = self._request_headers(endpoint.version, stream=True)
        async with self._client().post(
            endpoint.url, json=body, headers=headers, timeout=timeout
        ) as response:
            if not response.content_type.startswith("text/event-stream"):
                # An upfront error comes back as a plain JSON-RPC body.
                _unwrap(await self._json(response, endpoint), endpoint)
                return
            async for name, data in _sse_events(response.content):
                reply = _decode(data, endpoint)
                if name == "error":
                    _unwrap(reply, endpoint)
                for event in _stream_events(_unwrap(reply, endpoint), endpoint):
                    yield event

    async def cancel(self, *, agent_url: str, task_id: str) -> None:
        """Cancel the remote task (``CancelTask``); an already finished task is fine.

        Raises:
            A2ARemoteError: the agent does not know the task, or refused.
        """
        endpoint = self._endpoints.get(agent_url) or Endpoint(agent_url, self.version)
        body = self._body(endpoint.version, "cancel", {"id": task_id})
        async with self._client().post(
            endpoint.url, json=body, headers=self._request_headers(endpoint.version)
        ) as response:
            reply = await self._json(response, endpoint)
        error = reply.get("error")
        if isinstance(error, dict) and error.get("code") == _NOT_CANCELABLE:
            return
        _unwrap(reply, endpoint)

    async def _json(self, response: aiohttp.ClientResponse, endpoint: Endpoint) -> dict[str, Any]:
        if response.status != 200:
            text = await response.text()
            raise A2ARemoteError(
                f"HTTP {response.status} from {endpoint.url}: {text[:200]}",
                code=response.status,
                agent_url=endpoint.url,
            )
        return _decode(await response.read(), endpoint)


def _decode(raw: bytes | str, endpoint: Endpoint) -> dict[str, Any]:
    try:
        reply = json.loads(raw)
    except ValueError as exc:
        raise A2ARemoteError(f"invalid JSON from {endpoint.url}", agent_url=endpoint.url) from exc
    if not isinstance(reply, dict):
        raise A2ARemoteError(f"invalid JSON-RPC reply from {endpoint.url}", agent_url=endpoint.url)
    return reply


def _unwrap(reply: dict[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    error = reply.get("error")
    if isinstance(error, dict):
        code = error.get("code")
        raise A2ARemoteError(
            str(error.get("message", "remote error")),
            code=code if isinstance(code, int) else None,
            agent_url=endpoint.url,
        )
    result = reply.get("result")
    if not isinstance(result, dict):
        raise A2ARemoteError(f"JSON-RPC reply without result from {endpoint.url}")
    # 1.0 wraps send results and stream events: {"task": ...}, {"statusUpdate": ...}
    for key in ("task", "message"):
        if key in result and isinstance(result[key], dict) and len(result) == 1:
            return {**result[key], "kind": result[key].get("kind", key)}
    return result


def _stream_events(result: dict[str, Any], endpoint: Endpoint) -> list[RemoteStreamEvent]:
    if result.get("kind") == "message":
        value, _ = result_of_parts(result.get("parts") or [])
        return [
            RemoteStreamEvent(
                result=value,
                done=True,
                context_id=result.get("contextId"),
                task_id=result.get("taskId"),
                agent_url=endpoint.url,
            )
        ]
    update = read_task_update(result)
    if update.failed:
        raise A2ARemoteError(
            update.error or f"remote task ended {update.state}",
            state=update.state,
            agent_url=endpoint.url,
        )
    if update.text is not None:
        event = RemoteStreamEvent(text=update.text, done=update.last_chunk, meta=update.text_meta)
    elif update.result is not None or update.is_task:
        event = RemoteStreamEvent(result=update.result, meta=update.result_meta)
    else:
        return []
    event.context_id = update.context_id
    event.task_id = update.task_id
    event.agent_url = endpoint.url
    return [event]


async def _sse_events(content: aiohttp.StreamReader) -> AsyncIterator[tuple[str, str]]:
    """Yield ``(event name, data)`` of each server-sent event."""
    name = "message"
    data: list[str] = []
    async for raw in content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if key == "event":
            name = value
        elif key == "data":
            data.append(value)
    if data:
        yield name, "\n".join(data)
