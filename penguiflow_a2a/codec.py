"""A2A 1.0 and 0.3 wire shapes over the neutral task records of ``tasks``.

The neutral form is the 1.0 JSON with lowercase states (``completed``) and
roles (``agent``). ``V1_0`` renders ``TASK_STATE_*``/``ROLE_*`` and wraps
stream results (``{"statusUpdate": ...}``); ``V0_3`` adds ``kind`` and
``final``, uses ``{"kind": "text"}`` parts and wraps non-object data.
"""

from __future__ import annotations

from typing import Any

from .errors import invalid_params
from .tasks import ArtifactEvent, StatusEvent, TaskEvent, TaskPage, TaskRecord

__all__ = ["V0_3", "V1_0", "Codec", "message_payload", "parse_message"]


class Codec:
    """Render neutral records for one protocol version."""

    version = "1.0"

    def state(self, state: str) -> str:
        """The wire form of a task state."""
        return "TASK_STATE_" + state.upper().replace("-", "_")

    def role(self, role: str) -> str:
        """The wire form of a message role."""
        return "ROLE_" + role.upper()

    def part(self, part: dict[str, Any]) -> dict[str, Any]:
        """The wire form of one neutral part."""
        return dict(part)

    def message(self, message: dict[str, Any]) -> dict[str, Any]:
        """The wire form of a neutral message."""
        rendered = dict(message)
        rendered["role"] = self.role(message["role"])
        rendered["parts"] = [self.part(p) for p in message["parts"]]
        return rendered

    def artifact(self, artifact: dict[str, Any]) -> dict[str, Any]:
        """The wire form of a neutral artifact."""
        return {**artifact, "parts": [self.part(p) for p in artifact["parts"]]}

    def status(self, status: dict[str, Any]) -> dict[str, Any]:
        """The wire form of a neutral ``TaskStatus``."""
        rendered = {**status, "state": self.state(status["state"])}
        if "message" in status:
            rendered["message"] = self.message(status["message"])
        return rendered

    def task(
        self, record: TaskRecord, *, history_length: int | None = None, artifacts: bool = True
    ) -> dict[str, Any]:
        """The ``Task`` object (GetTask, CancelTask and inside send/stream results)."""
        task: dict[str, Any] = {
            "id": record.id,
            "contextId": record.context_id,
            "status": self.status(record.status()),
        }
        if artifacts and record.artifacts:
            task["artifacts"] = [self.artifact(a) for a in record.artifacts]
        history = record.history
        if history_length is not None:
            history = history[-history_length:] if history_length > 0 else []
        if history:
            task["history"] = [self.message(m) for m in history]
        if record.metadata:
            task["metadata"] = dict(record.metadata)
        return task

    def task_list(self, page: TaskPage) -> dict[str, Any]:
        """The ListTasks result (1.0 only)."""
        return {
            "tasks": [
                self.task(r, history_length=page.history_length, artifacts=page.artifacts)
                for r in page.records
            ],
            "nextPageToken": page.next_page_token,
            "pageSize": page.page_size,
            "totalSize": page.total_size,
        }

    def send_result(self, record: TaskRecord) -> dict[str, Any]:
        """The result of SendMessage: ``{"task": Task}`` in 1.0."""
        return {"task": self.task(record)}

    def stream_task(self, record: TaskRecord) -> dict[str, Any]:
        """The first event of a stream: the task itself."""
        return {"task": self.task(record)}

    def stream_event(self, event: TaskEvent) -> dict[str, Any]:
        """One later stream event (status or artifact update)."""
        if isinstance(event, StatusEvent):
            return {
                "statusUpdate": {
                    "taskId": event.task_id,
                    "contextId": event.context_id,
                    "status": self.status(event.status),
                }
            }
        return {"artifactUpdate": self._artifact_update(event)}

    def _artifact_update(self, event: ArtifactEvent) -> dict[str, Any]:
        return {
            "taskId": event.task_id,
            "contextId": event.context_id,
            "artifact": self.artifact(event.artifact),
            "append": event.append,
            "lastChunk": event.last_chunk,
        }


class _Codec03(Codec):
    version = "0.3"

    def state(self, state: str) -> str:
        return state

    def role(self, role: str) -> str:
        return role

    def part(self, part: dict[str, Any]) -> dict[str, Any]:
        if "text" in part:
            rendered: dict[str, Any] = {"kind": "text", "text": part["text"]}
        elif "data" in part:
            data = part["data"]
            # 0.3 DataPart.data must be an object.
            rendered = {"kind": "data", "data": data if isinstance(data, dict) else {"value": data}}
        else:
            file: dict[str, Any] = {}
            if "url" in part:
                file["uri"] = part["url"]
            if "raw" in part:
                file["bytes"] = part["raw"]
            if "mediaType" in part:
                file["mimeType"] = part["mediaType"]
            if "filename" in part:
                file["name"] = part["filename"]
            rendered = {"kind": "file", "file": file}
        if "metadata" in part:
            rendered["metadata"] = part["metadata"]
        return rendered

    def message(self, message: dict[str, Any]) -> dict[str, Any]:
        return {**super().message(message), "kind": "message"}

    def task(
        self, record: TaskRecord, *, history_length: int | None = None, artifacts: bool = True
    ) -> dict[str, Any]:
        base = super().task(record, history_length=history_length, artifacts=artifacts)
        return {**base, "kind": "task"}

    def send_result(self, record: TaskRecord) -> dict[str, Any]:
        return self.task(record)

    def stream_task(self, record: TaskRecord) -> dict[str, Any]:
        return self.task(record)

    def stream_event(self, event: TaskEvent) -> dict[str, Any]:
        if isinstance(event, StatusEvent):
            return {
                "kind": "status-update",
                "taskId": event.task_id,
                "contextId": event.context_id,
                "status": self.status(event.status),
                "final": event.final,
            }
        return {"kind": "artifact-update", **self._artifact_update(event)}


V1_0 = Codec()
V0_3 = _Codec03()


def _parse_part(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise invalid_params("each part must be an object")
    kind = raw.get("kind")
    part: dict[str, Any]
    if "text" in raw and kind in (None, "text"):
        if not isinstance(raw["text"], str):
            raise invalid_params("a text part needs a string 'text'")
        part = {"text": raw["text"]}
    elif "data" in raw and kind in (None, "data"):
        part = {"data": raw["data"]}
    elif kind == "file" and isinstance(raw.get("file"), dict):
        file = raw["file"]
        part = {}
        for src, dst in (("uri", "url"), ("bytes", "raw"), ("mimeType", "mediaType"),
                         ("name", "filename")):  # fmt: skip
            if src in file:
                part[dst] = file[src]
    elif kind is None and ("url" in raw or "raw" in raw):
        part = {k: raw[k] for k in ("url", "raw", "mediaType", "filename") if k in raw}
    else:
        raise invalid_params("unsupported part")
    if isinstance(raw.get("metadata"), dict):
        part["metadata"] = raw["metadata"]
    return part


def parse_message(raw: Any) -> dict[str, Any]:
    """Validate an incoming A2A message (either version) into the neutral form.

    Raises:
        A2AError: ``-32602`` when ``messageId`` or ``parts`` is missing or invalid.
    """
    if not isinstance(raw, dict):
        raise invalid_params("'message' must be an object")
    message_id = raw.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        raise invalid_params("'message.messageId' is required")
    parts = raw.get("parts")
    if not isinstance(parts, list) or not parts:
        raise invalid_params("'message.parts' must be a non-empty list")
    message: dict[str, Any] = {
        "messageId": message_id,
        "role": "user",
        "parts": [_parse_part(p) for p in parts],
    }
    for key in ("contextId", "taskId"):
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            raise invalid_params(f"'message.{key}' must be a string")
        if value:
            message[key] = value
    metadata = raw.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise invalid_params("'message.metadata' must be an object")
        message["metadata"] = metadata
    return message


def message_payload(message: dict[str, Any]) -> Any:
    """The flow payload of a neutral message.

    A single data part gives its value; text parts give their text joined by
    newlines; anything else gives the list of parts.
    """
    parts = message["parts"]
    if len(parts) == 1 and "data" in parts[0]:
        return parts[0]["data"]
    if all("text" in p for p in parts):
        return "\n".join(p["text"] for p in parts)
    return [dict(p) for p in parts]
