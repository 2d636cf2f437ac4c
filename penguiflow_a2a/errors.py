"""Protocol errors of the standard A2A bindings (JSON-RPC codes, REST statuses)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from penguiflow.errors import PenguiFlowError

if TYPE_CHECKING:
    from ._body import BodyError

__all__ = [
    "A2AError",
    "body_error",
    "internal_error",
    "invalid_params",
    "invalid_request",
    "method_not_found",
    "parse_error",
    "task_not_cancelable",
    "task_not_found",
    "unsupported_operation",
    "version_not_supported",
]

# code -> (REST HTTP status, google.rpc status, ErrorInfo reason)
_REST: dict[int, tuple[int, str, str]] = {
    -32700: (400, "INVALID_ARGUMENT", "PARSE_ERROR"),
    -32600: (400, "INVALID_ARGUMENT", "INVALID_REQUEST"),
    -32601: (404, "NOT_FOUND", "METHOD_NOT_FOUND"),
    -32602: (400, "INVALID_ARGUMENT", "INVALID_PARAMS"),
    -32603: (500, "INTERNAL", "INTERNAL_ERROR"),
    -32001: (404, "NOT_FOUND", "TASK_NOT_FOUND"),
    -32002: (400, "FAILED_PRECONDITION", "TASK_NOT_CANCELABLE"),
    -32004: (400, "FAILED_PRECONDITION", "UNSUPPORTED_OPERATION"),
    -32005: (400, "INVALID_ARGUMENT", "CONTENT_TYPE_NOT_SUPPORTED"),
    -32009: (400, "FAILED_PRECONDITION", "VERSION_NOT_SUPPORTED"),
}

_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


class A2AError(PenguiFlowError):
    """A request the standard A2A surface refuses with a protocol error.

    Args:
        code: the JSON-RPC error code (``-32001`` task not found, ...).
        message: the human-readable reason.
        metadata: optional ``ErrorInfo`` metadata (string values).
    """

    def __init__(
        self,
        code: int,
        message: str,
        *,
        metadata: dict[str, str] | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.metadata = dict(metadata or {})
        self._http_status = http_status

    @property
    def reason(self) -> str:
        """The ``ErrorInfo`` reason (``TASK_NOT_FOUND``, ...)."""
        return _REST[self.code][2]

    @property
    def http_status(self) -> int:
        """The HTTP status of this error in the REST binding."""
        return self._http_status or _REST[self.code][0]

    def _error_info(self) -> dict[str, Any]:
        return {
            "@type": _ERROR_INFO,
            "reason": self.reason,
            "domain": "a2a-protocol.org",
            "metadata": dict(self.metadata),
        }

    def jsonrpc(self, request_id: Any, *, version: str = "1.0") -> dict[str, Any]:
        """The JSON-RPC error response (sent with HTTP 200)."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if version == "1.0":
            error["data"] = [self._error_info()]
        return {"jsonrpc": "2.0", "id": request_id, "error": error}

    def rest(self) -> dict[str, Any]:
        """The HTTP+JSON error body (sent with ``http_status``)."""
        _, rpc_status, _ = _REST[self.code]
        return {
            "error": {
                "code": self.http_status,
                "status": rpc_status,
                "message": self.message,
                "details": [self._error_info()],
            }
        }


def parse_error(message: str = "Invalid JSON payload") -> A2AError:
    """``-32700``: the body is not JSON."""
    return A2AError(-32700, message)


def invalid_request(message: str = "Request payload validation error") -> A2AError:
    """``-32600``: not a JSON-RPC 2.0 request (or refused before parsing)."""
    return A2AError(-32600, message)


def method_not_found(method: object) -> A2AError:
    """``-32601``: unknown method."""
    return A2AError(-32601, f"Method not found: {method}")


def invalid_params(message: str) -> A2AError:
    """``-32602``: the params do not validate."""
    return A2AError(-32602, message)


def internal_error(message: str = "Internal error") -> A2AError:
    """``-32603``: the server failed; the message carries no internals."""
    return A2AError(-32603, message)


def task_not_found(task_id: str) -> A2AError:
    """``-32001``: no task with that id."""
    return A2AError(-32001, f"Task not found: {task_id}", metadata={"taskId": task_id})


def task_not_cancelable(task_id: str, state: str) -> A2AError:
    """``-32002``: the task already reached a terminal state."""
    return A2AError(
        -32002, f"Task {task_id} is in terminal state {state}", metadata={"taskId": task_id}
    )


def unsupported_operation(message: str) -> A2AError:
    """``-32004``: e.g. subscribing to a finished task."""
    return A2AError(-32004, message)


def version_not_supported(version: str) -> A2AError:
    """``-32009``: an explicit ``A2A-Version`` we do not speak."""
    return A2AError(-32009, f"A2A version {version} is not supported")


def body_error(exc: BodyError) -> A2AError:
    """The protocol error for a refused request body.

    Not JSON (or not UTF-8, cut short, nested too deep) is ``-32700``; valid
    JSON holding a value no reply could carry (a non-finite number, a lone
    surrogate) is ``-32602``; too large, not a JSON content type or not
    received in time is ``-32600`` (HTTP 408 in REST for the last).
    """
    if exc.kind == "timeout":
        return A2AError(-32600, exc.message, http_status=408)
    if exc.kind == "malformed":
        return parse_error(exc.message)
    if exc.kind == "refused":
        return invalid_params(exc.message)
    return invalid_request(exc.message)
