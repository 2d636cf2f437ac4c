"""Push-notification configs: the neutral record and its A2A 1.0 and 0.3 wire shapes.

1.0 (``TaskPushNotificationConfig``) is flat: ``{"taskId", "id", "url",
"token", "authentication": {"scheme", "credentials"}}``. 0.3 nests the
config: ``{"taskId", "pushNotificationConfig": {"id", "url", "token",
"authentication": {"schemes": [...], "credentials"}}}``. A config remembers
the version it was registered with: that decides the notification body
(a 1.0 ``StreamResponse`` or a 0.3 ``Task``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import invalid_params

__all__ = ["PushConfig", "parse_config_03", "parse_config_10", "render_config"]

_MAX_TEXT = 4096


@dataclass(frozen=True, slots=True)
class PushConfig:
    """Where and how to notify one client of one task's updates."""

    id: str
    task_id: str
    url: str
    version: str
    token: str | None = None
    scheme: str | None = None
    credentials: str | None = None

    def headers(self) -> dict[str, str]:
        """The authentication headers of every notification POST."""
        headers: dict[str, str] = {}
        if self.token:
            headers["X-A2A-Notification-Token"] = self.token
        if self.scheme and self.credentials:
            headers["Authorization"] = f"{self.scheme} {self.credentials}"
        return headers


def _text(raw: dict[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None or (value == "" and not required):
        if required:
            raise invalid_params(f"'{where}{key}' is required")
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT:
        raise invalid_params(f"'{where}{key}' must be a non-empty string (at most {_MAX_TEXT})")
    if any(ch in value for ch in "\r\n\x00"):
        # Token and credentials become header values: no header injection.
        raise invalid_params(f"'{where}{key}' must not contain line breaks")
    return value


def parse_config_10(raw: Any, *, task_id: str, where: str = "") -> PushConfig:
    """Validate a 1.0 ``TaskPushNotificationConfig`` for ``task_id``.

    Raises:
        A2AError: ``-32602`` for a missing URL or fields of the wrong type.
    """
    if not isinstance(raw, dict):
        raise invalid_params(f"'{where or 'params'}' must be an object")
    url = _text(raw, "url", where, required=True)
    auth = raw.get("authentication")
    scheme = credentials = None
    if auth is not None:
        if not isinstance(auth, dict):
            raise invalid_params(f"'{where}authentication' must be an object")
        scheme = _text(auth, "scheme", f"{where}authentication.")
        credentials = _text(auth, "credentials", f"{where}authentication.")
    return PushConfig(
        id=_text(raw, "id", where) or task_id,
        task_id=task_id,
        url=str(url),
        version="1.0",
        token=_text(raw, "token", where),
        scheme=scheme,
        credentials=credentials,
    )


def parse_config_03(raw: Any, *, task_id: str, where: str = "") -> PushConfig:
    """Validate a 0.3 ``PushNotificationConfig`` (the inner object) for ``task_id``.

    Raises:
        A2AError: ``-32602`` for a missing URL or fields of the wrong type.
    """
    if not isinstance(raw, dict):
        raise invalid_params(f"'{where or 'pushNotificationConfig'}' must be an object")
    url = _text(raw, "url", where, required=True)
    auth = raw.get("authentication")
    scheme = credentials = None
    if auth is not None:
        if not isinstance(auth, dict):
            raise invalid_params(f"'{where}authentication' must be an object")
        schemes = auth.get("schemes")
        if not isinstance(schemes, list) or not all(isinstance(s, str) for s in schemes):
            raise invalid_params(f"'{where}authentication.schemes' must be a list of strings")
        if schemes:
            scheme = _text({"scheme": schemes[0]}, "scheme", f"{where}authentication.")
        credentials = _text(auth, "credentials", f"{where}authentication.")
    return PushConfig(
        id=_text(raw, "id", where) or task_id,
        task_id=task_id,
        url=str(url),
        version="0.3",
        token=_text(raw, "token", where),
        scheme=scheme,
        credentials=credentials,
    )


def render_config(config: PushConfig, version: str) -> dict[str, Any]:
    """The ``TaskPushNotificationConfig`` JSON of ``config`` in ``version``."""
    if version == "0.3":
        inner: dict[str, Any] = {"id": config.id, "url": config.url}
        if config.token:
            inner["token"] = config.token
        if config.scheme:
            auth: dict[str, Any] = {"schemes": [config.scheme]}
            if config.credentials:
                auth["credentials"] = config.credentials
            inner["authentication"] = auth
        return {"taskId": config.task_id, "pushNotificationConfig": inner}
    rendered: dict[str, Any] = {"taskId": config.task_id, "id": config.id, "url": config.url}
    if config.token:
        rendered["token"] = config.token
    if config.scheme:
        auth = {"scheme": config.scheme}
        if config.credentials:
            auth["credentials"] = config.credentials
        rendered["authentication"] = auth
    return rendered
