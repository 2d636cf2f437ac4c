"""The public names: ``penguiflow.__all__`` and the 2.2.5 modules this runtime owns."""

from __future__ import annotations

import importlib

import pytest

import penguiflow

TOP_LEVEL = [
    "__version__",
    "Context",
    "CycleError",
    "PenguiFlow",
    "DEFAULT_QUEUE_MAXSIZE",
    "Node",
    "NodePolicy",
    "ModelRegistry",
    "NodeSpec",
    "SideEffect",
    "build_catalog",
    "tool",
    "Middleware",
    "log_flow_events",
    "LatencyCallback",
    "FlowEvent",
    "format_flow_event",
    "FlowError",
    "FlowErrorCode",
    "MessageBus",
    "BusEnvelope",
    "call_playbook",
    "Headers",
    "Message",
    "StreamChunk",
    "PlanStep",
    "Thought",
    "WM",
    "FinalAnswer",
    "map_concurrent",
    "join_k",
    "predicate_router",
    "union_router",
    "DictRoutingPolicy",
    "RoutingPolicy",
    "RoutingRequest",
    "format_sse_event",
    "chunk_to_ws_json",
    "stream_flow",
    "emit_stream_events",
    "flow_to_mermaid",
    "flow_to_dot",
    "create",
    "testkit",
    "StateStore",
    "StoredEvent",
    "RemoteBinding",
    "RemoteTransport",
    "RemoteCallRequest",
    "RemoteCallResult",
    "RemoteStreamEvent",
    "RemoteNode",
    "ReactPlanner",
    "PlannerAction",
    "PlannerFinish",
    "Trajectory",
    "TrajectoryStep",
]

MODULE_ALL = {
    "penguiflow.core": [
        "Context",
        "Floe",
        "PenguiFlow",
        "CycleError",
        "call_playbook",
        "create",
        "DEFAULT_QUEUE_MAXSIZE",
    ],
    "penguiflow.types": [
        "Headers",
        "Message",
        "StreamChunk",
        "PlanStep",
        "Thought",
        "WM",
        "FinalAnswer",
    ],
    "penguiflow.node": ["Node", "NodePolicy"],
    "penguiflow.registry": ["ModelRegistry", "RegistryEntry"],
    "penguiflow.metrics": ["FlowEvent"],
    "penguiflow.middlewares": ["FlowEvent", "LatencyCallback", "Middleware", "log_flow_events"],
    "penguiflow.debug": ["format_flow_event"],
}

CORE_EXTRAS = [
    "TraceCancelled",
    "Floe",
    "Endpoint",
    "OPEN_SEA",
    "ROOKERY",
    "BUDGET_EXCEEDED_TEXT",
    "DEADLINE_EXCEEDED_TEXT",
    "TOKEN_BUDGET_EXCEEDED_TEXT",
    "PlaybookFactory",
    "MailboxSnapshot",
]


def test_top_level_all_in_spec_order() -> None:
    assert penguiflow.__all__ == TOP_LEVEL


@pytest.mark.parametrize(
    "name",
    [
        "Context",
        "CycleError",
        "PenguiFlow",
        "DEFAULT_QUEUE_MAXSIZE",
        "Node",
        "NodePolicy",
        "ModelRegistry",
        "Middleware",
        "log_flow_events",
        "LatencyCallback",
        "FlowEvent",
        "format_flow_event",
        "FlowError",
        "FlowErrorCode",
        "call_playbook",
        "Headers",
        "Message",
        "StreamChunk",
        "PlanStep",
        "Thought",
        "WM",
        "FinalAnswer",
        "create",
    ],
)
def test_runtime_names_resolve_to_their_home_module(name: str) -> None:
    assert getattr(penguiflow, name) is not None
    assert name in dir(penguiflow)


@pytest.mark.parametrize("module_name", sorted(MODULE_ALL))
def test_module_all(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(MODULE_ALL[module_name])
    if module_name in ("penguiflow.core", "penguiflow.types"):
        assert module.__all__ == MODULE_ALL[module_name]  # the 2.2.5 order


@pytest.mark.parametrize("name", CORE_EXTRAS)
def test_core_also_offers(name: str) -> None:
    assert hasattr(importlib.import_module("penguiflow.core"), name)


def test_errors_module_exports_flow_errors() -> None:
    errors = importlib.import_module("penguiflow.errors")
    assert {"FlowError", "FlowErrorCode"} <= set(errors.__all__)


def test_default_queue_maxsize() -> None:
    assert penguiflow.DEFAULT_QUEUE_MAXSIZE == 64
