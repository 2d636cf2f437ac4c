"""Client-side reading of A2A replies (1.0 and 0.3 shapes) into plain records."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Endpoint", "TaskUpdate", "choose_endpoint", "read_task_update", "result_of_parts"]

_FAILED = frozenset({"failed", "canceled", "rejected"})


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where and in which protocol version to call an agent."""

    url: str
    version: str


def _major_minor(version: Any) -> str | None:
    if not isinstance(version, str):
        return None
    pieces = version.strip().split(".")
    return ".".join(pieces[:2]) if len(pieces) >= 2 else None


def choose_endpoint(agent_url: str, card: Mapping[str, Any] | None, default: str) -> Endpoint:
    """Pick the JSON-RPC endpoint from an agent card (1.0 preferred), else ``agent_url``."""
    if card:
        interfaces = card.get("supportedInterfaces")
        if isinstance(interfaces, list):
            jsonrpc = [
                i
                for i in interfaces
                if isinstance(i, Mapping)
                and i.get("protocolBinding") == "JSONRPC"
                and isinstance(i.get("url"), str)
            ]
            for wanted in ("1.0", "0.3"):
                for interface in jsonrpc:
                    if _major_minor(interface.get("protocolVersion")) == wanted:
                        return Endpoint(interface["url"], wanted)
        url = card.get("url")
        if isinstance(url, str) and _major_minor(card.get("protocolVersion")) == "0.3":
            return Endpoint(url, "0.3")
    return Endpoint(agent_url, default)


def _state(raw: Any) -> str:
    text = str(raw or "")
    if text.startswith("TASK_STATE_"):
        return text.removeprefix("TASK_STATE_").lower().replace("_", "-")
    return text


def _part_value(part: Mapping[str, Any]) -> Any:
    if "text" in part:
        return part["text"]
    if "data" in part:
        return part["data"]
    return dict(part)


def result_of_parts(parts: list[Any]) -> tuple[Any, bool]:
    """The value of a list of parts and whether it was all text.

    One part gives its value (text, data, or the file part itself); several
    text parts give the text joined by newlines; anything else a list of values.
    """
    parts = [p for p in parts if isinstance(p, Mapping)]
    all_text = bool(parts) and all("text" in p for p in parts)
    if len(parts) == 1:
        return _part_value(parts[0]), all_text
    if all_text:
        return "\n".join(p["text"] for p in parts), True
    return [_part_value(p) for p in parts], False


@dataclass(slots=True)
class TaskUpdate:
    """What one task-shaped reply (Task, status or artifact update) says."""

    task_id: str | None = None
    context_id: str | None = None
    state: str | None = None
    is_task: bool = False
    failed: bool = False
    error: str | None = None
    result: Any = None
    result_meta: Mapping[str, Any] | None = None
    text: str | None = None
    text_meta: Mapping[str, Any] | None = None
    last_chunk: bool = False


def _status(update: TaskUpdate, status: Any) -> None:
    if not isinstance(status, Mapping):
        return
    update.state = _state(status.get("state"))
    if update.state in _FAILED:
        update.failed = True
        message = status.get("message")
        if isinstance(message, Mapping):
            texts = [p["text"] for p in message.get("parts") or [] if "text" in p]
            update.error = "; ".join(texts) or None


def _artifact(update: TaskUpdate, artifact: Any, *, last_chunk: bool) -> None:
    if not isinstance(artifact, Mapping):
        return
    parts = artifact.get("parts") or []
    value, all_text = result_of_parts(parts)
    meta = artifact.get("metadata") if isinstance(artifact.get("metadata"), Mapping) else None
    if artifact.get("name") != "result" and all_text:
        update.text = "".join(p["text"] for p in parts)
        update.text_meta = meta
        update.last_chunk = last_chunk
    else:
        update.result = value
        update.result_meta = meta


def read_task_update(result: Mapping[str, Any]) -> TaskUpdate:
    """Read a Task, a status update or an artifact update of either version."""
    for wrapper, wrapped_kind in (
        ("statusUpdate", "status-update"),
        ("artifactUpdate", "artifact-update"),
    ):
        if isinstance(result.get(wrapper), Mapping):
            result = {**result[wrapper], "kind": wrapped_kind}
    update = TaskUpdate(task_id=result.get("taskId"), context_id=result.get("contextId"))
    kind = result.get("kind")
    if kind == "status-update":
        _status(update, result.get("status"))
    elif kind == "artifact-update":
        _artifact(update, result.get("artifact"), last_chunk=bool(result.get("lastChunk")))
    else:
        update.is_task = True
        update.task_id = result.get("id")
        _status(update, result.get("status"))
        artifacts = [a for a in result.get("artifacts") or [] if isinstance(a, Mapping)]
        chosen = next((a for a in artifacts if a.get("name") == "result"), None)
        if chosen is None and artifacts:
            chosen = artifacts[-1]
        if chosen is not None:
            value, _ = result_of_parts(chosen.get("parts") or [])
            update.result = value
            meta = chosen.get("metadata")
            update.result_meta = meta if isinstance(meta, Mapping) else None
    return update
