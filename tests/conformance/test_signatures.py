"""Conformance: public call signatures (names, kinds, defaults) stated across the spec."""

from __future__ import annotations

import inspect
import logging
from typing import Any

import pytest

import penguiflow
from penguiflow import testkit
from penguiflow.core import Context, PenguiFlow, call_playbook
from penguiflow.remote import RemoteNode

P = inspect.Parameter
POS = P.POSITIONAL_OR_KEYWORD
KW = P.KEYWORD_ONLY
VAR = P.VAR_POSITIONAL
EMPTY = P.empty


def shape(fn: Any) -> list[tuple[str, Any, Any]]:
    params = list(inspect.signature(fn).parameters.values())
    if params and params[0].name == "self":
        params = params[1:]
    return [(p.name, p.kind, p.default) for p in params]


CASES: list[tuple[str, Any, list[tuple[str, Any, Any]]]] = [
    (
        "PenguiFlow",
        PenguiFlow.__init__,
        [
            ("adjacencies", VAR, EMPTY),
            ("queue_maxsize", KW, 64),
            ("allow_cycles", KW, False),
            ("middlewares", KW, None),
            ("emit_errors_to_rookery", KW, False),
            ("state_store", KW, None),
            ("message_bus", KW, None),
        ],
    ),
    ("run", PenguiFlow.run, [("registry", KW, None)]),
    ("flow.emit", PenguiFlow.emit, [("msg", POS, EMPTY), ("to", POS, None)]),
    ("flow.emit_nowait", PenguiFlow.emit_nowait, [("msg", POS, EMPTY), ("to", POS, None)]),
    ("flow.fetch", PenguiFlow.fetch, [("from_", POS, None)]),
    ("flow.fetch_any", PenguiFlow.fetch_any, [("from_", POS, None)]),
    ("flow.cancel", PenguiFlow.cancel, [("trace_id", POS, EMPTY)]),
    (
        "flow.emit_chunk",
        PenguiFlow.emit_chunk,
        [
            ("parent", KW, EMPTY),
            ("text", KW, EMPTY),
            ("stream_id", KW, None),
            ("seq", KW, None),
            ("done", KW, False),
            ("meta", KW, None),
            ("to", KW, None),
        ],
    ),
    ("Context", Context.__init__, [("owner", POS, EMPTY), ("runtime", POS, None)]),
    ("ctx.emit", Context.emit, [("msg", POS, EMPTY), ("to", POS, None)]),
    ("ctx.fetch_nowait", Context.fetch_nowait, [("from_", POS, None)]),
    (
        "ctx.call_playbook",
        Context.call_playbook,
        [("playbook", POS, EMPTY), ("parent_msg", POS, EMPTY), ("timeout", KW, None)],
    ),
    (
        "call_playbook",
        call_playbook,
        [
            ("playbook", POS, EMPTY),
            ("parent_msg", POS, EMPTY),
            ("timeout", POS, None),
            ("runtime", KW, None),
        ],
    ),
    (
        "record_remote_event",
        PenguiFlow.record_remote_event,
        [
            ("event", KW, EMPTY),
            ("node", KW, EMPTY),
            ("context", KW, EMPTY),
            ("trace_id", KW, EMPTY),
            ("latency_ms", KW, EMPTY),
            ("level", KW, logging.INFO),
            ("extra", KW, None),
        ],
    ),
    (
        "map_concurrent",
        penguiflow.map_concurrent,
        [("items", POS, EMPTY), ("worker", POS, EMPTY), ("max_concurrency", KW, 8)],
    ),
    (
        "predicate_router",
        penguiflow.predicate_router,
        [("name", POS, EMPTY), ("predicate", POS, EMPTY), ("policy", KW, None)],
    ),
    (
        "union_router",
        penguiflow.union_router,
        [("name", POS, EMPTY), ("union_model", POS, EMPTY), ("policy", KW, None)],
    ),
    ("join_k", penguiflow.join_k, [("name", POS, EMPTY), ("k", POS, EMPTY)]),
    (
        "format_sse_event",
        penguiflow.format_sse_event,
        [("chunk", POS, EMPTY), ("event_name", KW, None), ("retry_ms", KW, None)],
    ),
    ("chunk_to_ws_json", penguiflow.chunk_to_ws_json, [("chunk", POS, EMPTY), ("extra", KW, None)]),
    (
        "stream_flow",
        penguiflow.stream_flow,
        [
            ("flow", POS, EMPTY),
            ("parent_msg", POS, EMPTY),
            ("to", KW, None),
            ("timeout", KW, None),
            ("include_final", KW, False),
        ],
    ),
    (
        "emit_stream_events",
        penguiflow.emit_stream_events,
        [
            ("source", POS, EMPTY),
            ("ctx", POS, EMPTY),
            ("parent_msg", POS, EMPTY),
            ("adapter", KW, None),
            ("to", KW, None),
            ("final_meta", KW, None),
        ],
    ),
    (
        "log_flow_events",
        penguiflow.log_flow_events,
        [
            ("logger", POS, None),
            ("start_level", KW, logging.INFO),
            ("success_level", KW, logging.INFO),
            ("error_level", KW, logging.ERROR),
            ("latency_callback", KW, None),
        ],
    ),
    ("format_flow_event", penguiflow.format_flow_event, [("event", POS, EMPTY)]),
    (
        "flow_to_mermaid",
        penguiflow.flow_to_mermaid,
        [("flow", POS, EMPTY), ("direction", KW, "TD")],
    ),
    ("flow_to_dot", penguiflow.flow_to_dot, [("flow", POS, EMPTY), ("rankdir", KW, "TB")]),
    (
        "run_one",
        testkit.run_one,
        [
            ("flow", POS, EMPTY),
            ("message", POS, EMPTY),
            ("registry", KW, None),
            ("timeout_s", KW, 1.0),
        ],
    ),
    (
        "assert_node_sequence",
        testkit.assert_node_sequence,
        [("trace_id", POS, EMPTY), ("expected", POS, EMPTY)],
    ),
    ("get_recorded_events", testkit.get_recorded_events, [("trace_id", POS, EMPTY)]),
    (
        "simulate_error",
        testkit.simulate_error,
        [
            ("node_name", POS, EMPTY),
            ("code", POS, EMPTY),
            ("fail_times", KW, 1),
            ("result", KW, None),
            ("result_factory", KW, None),
            ("exception_type", KW, RuntimeError),
        ],
    ),
    (
        "assert_preserves_message_envelope",
        testkit.assert_preserves_message_envelope,
        [("node", POS, EMPTY), ("message", KW, None), ("ctx", KW, None)],
    ),
    (
        "RemoteNode",
        RemoteNode,
        [
            ("transport", KW, EMPTY),
            ("skill", KW, EMPTY),
            ("agent_url", KW, EMPTY),
            ("name", KW, EMPTY),
            ("agent_card", KW, None),
            ("policy", KW, None),
            ("streaming", KW, False),
            ("record_binding", KW, True),
        ],
    ),
    (
        "DictRoutingPolicy",
        penguiflow.DictRoutingPolicy.__init__,
        [("mapping", POS, EMPTY), ("default", KW, None), ("key_getter", KW, None)],
    ),
    (
        "FlowError",
        penguiflow.FlowError.__init__,
        [
            ("trace_id", KW, EMPTY),
            ("node_name", KW, EMPTY),
            ("code", KW, EMPTY),
            ("message", KW, EMPTY),
            ("original_exc", KW, None),
            ("node_id", KW, None),
            ("metadata", KW, None),
        ],
    ),
]


def _prefix_matches(actual: list[Any], expected: list[Any]) -> bool:
    # Extra trailing keyword-only parameters (project additions) are tolerated.
    extra = actual[len(expected) :]
    return actual[: len(expected)] == expected and all(kind is KW for _, kind, _ in extra)


@pytest.mark.parametrize(("label", "fn", "expected"), CASES, ids=[c[0] for c in CASES])
def test_signature(label: str, fn: Any, expected: list[tuple[str, Any, Any]]) -> None:
    actual = shape(fn)
    assert _prefix_matches(actual, expected), f"{label}: {actual}"


def test_node_invoke_and_to_signatures() -> None:
    from penguiflow import Node

    assert shape(Node.invoke) == [
        ("message", POS, EMPTY),
        ("ctx", POS, EMPTY),
        ("registry", KW, EMPTY),
    ]
    assert shape(Node.to) == [("successors", VAR, EMPTY)]
