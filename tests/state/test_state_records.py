"""The state records and protocol as distribution.md specifies them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from penguiflow.metrics import FlowEvent
from penguiflow.state import RemoteBinding, StateStore, StoredEvent


def _flow_event(**extra: object) -> FlowEvent:
    return FlowEvent(
        "remote_call_success", 12.5, "fetch", "nid", "T1", 0, 3.0, 1, 2, 1, 64, 4, 1, False, extra
    )


def test_module_exports_the_spec_names() -> None:
    import penguiflow.state as state

    assert sorted(state.__all__) == ["RemoteBinding", "StateStore", "StoredEvent"]


def test_stored_event_fields_are_in_spec_order() -> None:
    names = [f.name for f in dataclasses.fields(StoredEvent)]
    assert names == ["trace_id", "ts", "kind", "node_name", "node_id", "payload"]


def test_stored_event_uses_slots() -> None:
    event = StoredEvent("t", 1.0, "k", None, None, {})
    with pytest.raises(AttributeError):
        event.other = 1  # type: ignore[attr-defined]


def test_from_flow_event_copies_identity_fields() -> None:
    stored = StoredEvent.from_flow_event(_flow_event())
    assert (stored.trace_id, stored.ts, stored.kind, stored.node_name, stored.node_id) == (
        "T1",
        12.5,
        "remote_call_success",
        "fetch",
        "nid",
    )


def test_from_flow_event_payload_is_to_payload_with_extras() -> None:
    event = _flow_event(remote_status="success")
    stored = StoredEvent.from_flow_event(event)
    assert stored.payload == event.to_payload()
    assert stored.payload["event"] == "remote_call_success"
    assert stored.payload["remote_status"] == "success"
    assert stored.payload["trace_pending"] == 4


def test_remote_binding_compares_by_value() -> None:
    a = RemoteBinding(trace_id="t", context_id="c", task_id="k", agent_url="u")
    assert a == RemoteBinding("t", "c", "k", "u")
    assert a != RemoteBinding("t", "c", "other", "u")


def test_remote_binding_fields_are_in_spec_order() -> None:
    names = [f.name for f in dataclasses.fields(RemoteBinding)]
    assert names == ["trace_id", "context_id", "task_id", "agent_url"]


def test_state_store_is_a_subclassable_protocol() -> None:
    class ListStore(StateStore):
        def __init__(self) -> None:
            self.events: list[StoredEvent] = []

        async def save_event(self, event: StoredEvent) -> None:
            self.events.append(event)

        async def load_history(self, trace_id: str) -> Sequence[StoredEvent]:
            return [e for e in self.events if e.trace_id == trace_id]

        async def save_remote_binding(self, binding: RemoteBinding) -> None:
            return None

    assert isinstance(ListStore(), StateStore)


def test_object_without_the_hooks_is_not_a_state_store() -> None:
    class Partial:
        async def save_event(self, event: StoredEvent) -> None:
            return None

    assert not isinstance(Partial(), StateStore)
