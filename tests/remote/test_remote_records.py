"""Remote call records, the transport protocol and the size estimate."""

from __future__ import annotations

import dataclasses
import json

import pytest
from pydantic import BaseModel

from penguiflow.remote import (
    RemoteCallRequest,
    RemoteCallResult,
    RemoteStreamEvent,
    RemoteTransport,
)
from penguiflow.remote._node import estimate_json_bytes
from penguiflow.testkit._remote import InMemoryRemoteTransport


def test_module_exports_in_spec_order() -> None:
    import penguiflow.remote as remote

    assert remote.__all__ == [
        "RemoteCallRequest",
        "RemoteCallResult",
        "RemoteStreamEvent",
        "RemoteTransport",
        "RemoteNode",
    ]


@pytest.mark.parametrize(
    ("cls", "required", "optional"),
    [
        pytest.param(
            RemoteCallRequest,
            ["message", "skill", "agent_url"],
            {"agent_card": None, "metadata": None, "timeout_s": None},
            id="request",
        ),
        pytest.param(
            RemoteCallResult,
            ["result"],
            {"context_id": None, "task_id": None, "agent_url": None, "meta": None},
            id="result",
        ),
        pytest.param(
            RemoteStreamEvent,
            [],
            {
                "text": None,
                "done": False,
                "meta": None,
                "context_id": None,
                "task_id": None,
                "agent_url": None,
                "result": None,
            },
            id="stream-event",
        ),
    ],
)
def test_record_fields_order_and_defaults(
    cls: type, required: list[str], optional: dict[str, object]
) -> None:
    declared = dataclasses.fields(cls)
    assert [f.name for f in declared] == [*required, *optional]
    defaults = {f.name: f.default for f in declared if f.default is not dataclasses.MISSING}
    assert defaults == optional


def test_stream_event_defaults_to_an_empty_unfinished_event() -> None:
    assert RemoteStreamEvent() == RemoteStreamEvent(None, False, None, None, None, None, None)


def test_in_memory_transport_satisfies_the_protocol() -> None:
    assert isinstance(InMemoryRemoteTransport(), RemoteTransport)


def test_remote_transport_is_subclassable() -> None:
    class Http(RemoteTransport):
        async def send(self, request: RemoteCallRequest) -> RemoteCallResult:
            return RemoteCallResult(result=None)

        async def stream(self, request: RemoteCallRequest):  # type: ignore[override]
            yield RemoteStreamEvent(done=True)

        async def cancel(self, *, agent_url: str, task_id: str) -> None:
            return None

    assert isinstance(Http(), RemoteTransport)


class _Model(BaseModel):
    text: str


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        return "bad"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"a": "é"}, len(json.dumps({"a": "é"}).encode()), id="dict"),
        pytest.param(_Model(text="hi"), len(b'{"text": "hi"}'), id="pydantic-model"),
        pytest.param(b"abc", len(b'"abc"'), id="bytes-as-text"),
        pytest.param(_BadRepr(), len(b"bad"), id="falls-back-to-str"),
    ],
)
def test_estimate_json_bytes(value: object, expected: int) -> None:
    assert estimate_json_bytes(value) == expected


def test_estimate_uses_repr_for_other_objects() -> None:
    assert estimate_json_bytes(object()) > 0
