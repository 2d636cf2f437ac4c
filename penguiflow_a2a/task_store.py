"""Where A2A task records are kept across restarts: the ``TaskStore`` seam.

The task manager (``penguiflow_a2a.tasks``) always holds its tasks in memory;
a ``TaskStore`` is where it also writes them, so that a new server process
finds them again. ``A2AService`` uses one automatically when the served flow
is durable (``create(..., state_store=store, durable=True)``):
``StateStoreTaskStore`` over the flow's own state store (SQLite: the
``penguiflow_a2a_tasks`` table; Redis: the ``<namespace>:a2a-tasks`` hash).
A flow that is not durable gets no store: tasks live in memory only.

A stored record is plain JSON (``snapshot``): the task's ids, its owner
(``principals.encode_principal``), state, status message, history,
artifacts, metadata, the token of the interrupt it waits on, its push
notification configs (their tokens and credentials included: the store must
be as private as the webhooks' secrets), and the request ``Message``
(encoded with ``penguiflow.journal.encode_item``), so that a new process can
emit it again with the task id as idempotency key.

.. versionadded:: 3.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from penguiflow.journal import decode_item, encode_item
from penguiflow.types import Message

from .principals import Principal, decode_principal, encode_principal
from .push_config import PushConfig

__all__ = [
    "InMemoryTaskStore",
    "StateStoreTaskStore",
    "StoredTask",
    "TaskStore",
    "snapshot",
    "task_store_for",
]

_FORMAT = 1


class TaskStore(Protocol):
    """Keeps A2A task records (JSON mappings) under their task id.

    .. versionadded:: 3.0
    """

    async def save(self, task_id: str, record: Mapping[str, Any]) -> None:
        """Store ``record`` as task ``task_id`` (the last save wins); returns once kept."""
        ...

    async def load(self) -> list[dict[str, Any]]:
        """Every stored record."""
        ...

    async def delete(self, task_ids: Sequence[str]) -> None:
        """Forget the records ``task_ids`` (unknown ids are ignored)."""
        ...


class InMemoryTaskStore:
    """A ``TaskStore`` in a dict: a fake for tests (a "restart" within one process).

    .. versionadded:: 3.0
    """

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}

    async def save(self, task_id: str, record: Mapping[str, Any]) -> None:
        """Keep a copy of ``record``."""
        self.records[task_id] = dict(record)

    async def load(self) -> list[dict[str, Any]]:
        """Copies of every record, in first-save order."""
        return [dict(record) for record in self.records.values()]

    async def delete(self, task_ids: Sequence[str]) -> None:
        """Drop the records ``task_ids``."""
        for task_id in task_ids:
            self.records.pop(task_id, None)


class StateStoreTaskStore:
    """A ``TaskStore`` over a state store's A2A task methods.

    Those are ``save_a2a_task``, ``load_a2a_tasks`` and ``delete_a2a_tasks``:
    ``penguiflow.stores.SQLiteStateStore`` and
    ``penguiflow.distributed.RedisStateStore`` have them.

    Raises:
        TypeError: ``state_store`` lacks one of the three methods.

    .. versionadded:: 3.0
    """

    def __init__(self, state_store: Any) -> None:
        missing = [
            name
            for name in ("save_a2a_task", "load_a2a_tasks", "delete_a2a_tasks")
            if not callable(getattr(state_store, name, None))
        ]
        if missing:
            raise TypeError(
                f"{type(state_store).__name__} cannot keep durable A2A tasks "
                f"(it has no {', '.join(missing)})"
            )
        self.state_store = state_store

    async def save(self, task_id: str, record: Mapping[str, Any]) -> None:
        """Write ``record`` to the state store."""
        await self.state_store.save_a2a_task(task_id, record)

    async def load(self) -> list[dict[str, Any]]:
        """Every record the state store holds."""
        records: list[dict[str, Any]] = await self.state_store.load_a2a_tasks()
        return records

    async def delete(self, task_ids: Sequence[str]) -> None:
        """Delete ``task_ids`` from the state store."""
        await self.state_store.delete_a2a_tasks(list(task_ids))


def task_store_for(flow: Any) -> TaskStore | None:
    """The task store of a server for ``flow``: its state store's if durable, else ``None``.

    Raises:
        TypeError: the flow is durable but its state store keeps no A2A tasks.

    .. versionadded:: 3.0
    """
    if getattr(flow, "durable", False) is not True:
        return None
    return StateStoreTaskStore(flow.state_store)


@dataclass(frozen=True, slots=True)
class StoredTask:
    """A task record as read back from a ``TaskStore``.

    .. versionadded:: 3.0
    """

    id: str
    context_id: str
    trace_id: str
    principal: Principal
    state: str
    updated: float
    status_message: dict[str, Any] | None
    artifacts: list[dict[str, Any]]
    history: list[dict[str, Any]]
    metadata: dict[str, Any]
    resume_token: str | None
    message: Message | None
    push_configs: list[PushConfig]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> StoredTask:
        """Read a record ``snapshot`` wrote.

        Raises:
            ValueError: not a record of a known format.
        """
        if data.get("format") != _FORMAT:
            raise ValueError(f"unknown A2A task record format: {data.get('format')!r}")
        encoded = data.get("message")
        message = decode_item(encoded) if isinstance(encoded, str) else None
        return cls(
            id=data["id"],
            context_id=data["contextId"],
            trace_id=data["traceId"],
            principal=decode_principal(data.get("principal")),
            state=data["state"],
            updated=float(data["updated"]),
            status_message=data.get("statusMessage"),
            artifacts=list(data.get("artifacts") or ()),
            history=list(data.get("history") or ()),
            metadata=dict(data.get("metadata") or {}),
            resume_token=data.get("resumeToken"),
            message=message if isinstance(message, Message) else None,
            push_configs=[_push_config(raw) for raw in data.get("pushConfigs") or ()],
        )


_PUSH_FIELDS = tuple(field.name for field in dataclasses.fields(PushConfig))


def _push_config(raw: Mapping[str, Any]) -> PushConfig:
    return PushConfig(**{name: raw[name] for name in _PUSH_FIELDS if name in raw})


def snapshot(
    *,
    task_id: str,
    context_id: str,
    trace_id: str,
    principal: Principal,
    state: str,
    updated: float,
    status_message: dict[str, Any] | None,
    artifacts: list[dict[str, Any]],
    history: list[dict[str, Any]],
    metadata: dict[str, Any],
    resume_token: str | None,
    message: Message | None,
    push_configs: Sequence[PushConfig] = (),
) -> dict[str, Any]:
    """The JSON record of a task (what a ``TaskStore`` keeps).

    Raises:
        UnpersistablePrincipal: ``principal`` has no stable form.
    """
    return {
        "format": _FORMAT,
        "id": task_id,
        "contextId": context_id,
        "traceId": trace_id,
        "principal": encode_principal(principal),
        "state": state,
        "updated": updated,
        "statusMessage": status_message,
        "artifacts": artifacts,
        "history": history,
        "metadata": metadata,
        "resumeToken": resume_token,
        "message": encode_item(message) if message is not None else None,
        "pushConfigs": [dataclasses.asdict(config) for config in push_configs],
    }
