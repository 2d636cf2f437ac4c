"""Conformance: spec/README.md export tables and runtime.md constants."""

from __future__ import annotations

import asyncio
import importlib
import subprocess
import sys
import typing

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

HOMES = {
    "Context": "penguiflow.core",
    "CycleError": "penguiflow.core",
    "PenguiFlow": "penguiflow.core",
    "DEFAULT_QUEUE_MAXSIZE": "penguiflow.core",
    "Node": "penguiflow.node",
    "NodePolicy": "penguiflow.node",
    "ModelRegistry": "penguiflow.registry",
    "NodeSpec": "penguiflow.catalog",
    "build_catalog": "penguiflow.catalog",
    "tool": "penguiflow.catalog",
    "Middleware": "penguiflow.middlewares",
    "log_flow_events": "penguiflow.middlewares",
    "FlowEvent": "penguiflow.metrics",
    "format_flow_event": "penguiflow.debug",
    "FlowError": "penguiflow.errors",
    "FlowErrorCode": "penguiflow.errors",
    "MessageBus": "penguiflow.bus",
    "BusEnvelope": "penguiflow.bus",
    "call_playbook": "penguiflow.core",
    "Headers": "penguiflow.types",
    "map_concurrent": "penguiflow.patterns",
    "join_k": "penguiflow.patterns",
    "predicate_router": "penguiflow.patterns",
    "union_router": "penguiflow.patterns",
    "DictRoutingPolicy": "penguiflow.policies",
    "RoutingPolicy": "penguiflow.policies",
    "RoutingRequest": "penguiflow.policies",
    "format_sse_event": "penguiflow.streaming",
    "stream_flow": "penguiflow.streaming",
    "flow_to_mermaid": "penguiflow.viz",
    "flow_to_dot": "penguiflow.viz",
    "create": "penguiflow.core",
    "StateStore": "penguiflow.state",
    "StoredEvent": "penguiflow.state",
    "RemoteBinding": "penguiflow.state",
    "RemoteTransport": "penguiflow.remote",
    "RemoteNode": "penguiflow.remote",
    "ReactPlanner": "penguiflow.planner.react",
    "PlannerAction": "penguiflow.planner.react",
    "Trajectory": "penguiflow.planner.react",
}


def test_top_level_all_is_exact_and_ordered() -> None:
    assert list(penguiflow.__all__) == TOP_LEVEL


@pytest.mark.parametrize("name", TOP_LEVEL)
def test_every_exported_name_resolves(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from penguiflow import {name}", namespace)
    assert getattr(penguiflow, name) is namespace[name]
    assert name in dir(penguiflow)


@pytest.mark.parametrize(("name", "home"), sorted(HOMES.items()))
def test_exported_names_live_in_their_home_module(name: str, home: str) -> None:
    assert getattr(importlib.import_module(home), name) is getattr(penguiflow, name)


def test_version_is_a_string() -> None:
    assert isinstance(penguiflow.__version__, str)


def test_testkit_is_the_module() -> None:
    from penguiflow import testkit

    assert testkit is importlib.import_module("penguiflow.testkit")
    assert penguiflow.testkit is testkit


def test_default_queue_maxsize() -> None:
    assert penguiflow.DEFAULT_QUEUE_MAXSIZE == 64


def test_core_all() -> None:
    import penguiflow.core as core

    assert list(core.__all__) == [
        "Context",
        "Floe",
        "PenguiFlow",
        "CycleError",
        "call_playbook",
        "create",
        "DEFAULT_QUEUE_MAXSIZE",
    ]


def test_core_extra_names() -> None:
    from penguiflow.core import (
        OPEN_SEA,
        ROOKERY,
        Endpoint,
        PlaybookFactory,
        TraceCancelled,
    )

    assert Endpoint("OpenSea") == OPEN_SEA
    assert Endpoint("Rookery") == ROOKERY
    assert OPEN_SEA.name == "OpenSea"
    assert PlaybookFactory is not None
    with pytest.raises(AttributeError):
        OPEN_SEA.name = "x"  # type: ignore[misc]
    err = TraceCancelled("t1")
    assert isinstance(err, Exception)
    assert err.trace_id == "t1"
    assert str(err) == "trace cancelled: t1"


def test_cycle_error_is_runtime_error() -> None:
    assert issubclass(penguiflow.CycleError, RuntimeError)


@pytest.mark.parametrize(
    ("module", "names"),
    [
        (
            "penguiflow.middlewares",
            ["Middleware", "FlowEvent", "log_flow_events", "LatencyCallback"],
        ),
        (
            "penguiflow.patterns",
            ["map_concurrent", "join_k", "predicate_router", "union_router"],
        ),
        (
            "penguiflow.streaming",
            ["format_sse_event", "chunk_to_ws_json", "stream_flow", "emit_stream_events"],
        ),
        ("penguiflow.viz", ["flow_to_mermaid", "flow_to_dot"]),
        (
            "penguiflow.testkit",
            [
                "run_one",
                "assert_node_sequence",
                "get_recorded_events",
                "simulate_error",
                "assert_preserves_message_envelope",
            ],
        ),
        (
            "penguiflow.remote",
            [
                "RemoteCallRequest",
                "RemoteCallResult",
                "RemoteStreamEvent",
                "RemoteTransport",
                "RemoteNode",
            ],
        ),
        ("penguiflow.admin", ["load_state_store", "render_events", "main"]),
    ],
)
def test_module_all(module: str, names: list[str]) -> None:
    assert list(importlib.import_module(module).__all__) == names


def test_middlewares_reexports_flow_event() -> None:
    from penguiflow.metrics import FlowEvent
    from penguiflow.middlewares import FlowEvent as Reexported

    assert Reexported is FlowEvent


def test_other_public_names_importable() -> None:
    from penguiflow.policies import (  # noqa: F401
        PolicyCallable,
        PolicyLike,
        RoutingDecisionType,
        evaluate_policy,
    )
    from penguiflow.registry import RegistryEntry  # noqa: F401
    from penguiflow.streaming import EventAdapter  # noqa: F401

    assert asyncio.iscoroutinefunction(evaluate_policy)


def test_protocols_are_typing_protocols() -> None:
    from penguiflow import MessageBus, Middleware, RemoteTransport, RoutingPolicy, StateStore

    for proto in (MessageBus, Middleware, RemoteTransport, RoutingPolicy, StateStore):
        assert getattr(proto, "_is_protocol", False), proto
        assert typing.Protocol in proto.__mro__ or proto.__mro__[-2] is typing.Protocol


def test_import_does_not_load_server_or_llm_stacks() -> None:
    code = (
        "import sys, penguiflow\n"
        "from penguiflow import create, Node, Message, testkit, FlowEvent\n"
        "import penguiflow.metrics, penguiflow.middlewares\n"
        "heavy = ('aiohttp', 'litellm', 'fastapi', 'opentelemetry', 'prometheus_client')\n"
        "bad = [m for m in heavy if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == ""


def test_a2a_exports() -> None:
    import penguiflow_a2a
    import penguiflow_a2a.server as server

    assert list(penguiflow_a2a.__all__) == [
        "A2AAgentCard",
        "A2ASkill",
        "A2AMessagePayload",
        "A2ATaskCancelRequest",
        "A2AServerAdapter",
        "create_a2a_app",
    ]
    for name in penguiflow_a2a.__all__:
        assert getattr(penguiflow_a2a, name) is getattr(server, name)
    assert issubclass(server.A2ARequestError, Exception)


def test_planner_exports() -> None:
    import penguiflow.planner as planner
    import penguiflow.planner.prompts  # noqa: F401
    import penguiflow.planner.react as react

    names = [
        "ParallelCall",
        "ParallelJoin",
        "PlannerAction",
        "PlannerFinish",
        "PlannerPause",
        "ReactPlanner",
        "Trajectory",
        "TrajectoryStep",
        "TrajectorySummary",
    ]
    for name in names:
        assert getattr(planner, name) is getattr(react, name)
    assert react.JSONLLMClient is not None
    assert react.PlannerPauseReason is not None
