"""PenguiFlow: typed, async message passing between supervised actors.

The package re-exports the PenguiFlow 2.2.5 public API. Every name resolves
lazily on first access (PEP 562), so ``import penguiflow`` loads only this
module; heavy or optional dependencies (litellm, aiohttp) load when a feature
that needs them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "3.0.0.dev0"

# name -> home module (spec/README.md, "penguiflow top-level exports"); order is __all__'s.
_EXPORTS: dict[str, str] = {
    "Context": "penguiflow.core",
    "CycleError": "penguiflow.core",
    "PenguiFlow": "penguiflow.core",
    "DEFAULT_QUEUE_MAXSIZE": "penguiflow.core",
    "Node": "penguiflow.node",
    "NodePolicy": "penguiflow.node",
    "ModelRegistry": "penguiflow.registry",
    "NodeSpec": "penguiflow.catalog",
    "SideEffect": "penguiflow.catalog",
    "build_catalog": "penguiflow.catalog",
    "tool": "penguiflow.catalog",
    "Middleware": "penguiflow.middlewares",
    "log_flow_events": "penguiflow.middlewares",
    "LatencyCallback": "penguiflow.middlewares",
    "FlowEvent": "penguiflow.metrics",
    "format_flow_event": "penguiflow.debug",
    "FlowError": "penguiflow.errors",
    "FlowErrorCode": "penguiflow.errors",
    "MessageBus": "penguiflow.bus",
    "BusEnvelope": "penguiflow.bus",
    "call_playbook": "penguiflow.core",
    "Headers": "penguiflow.types",
    "Message": "penguiflow.types",
    "StreamChunk": "penguiflow.types",
    "PlanStep": "penguiflow.types",
    "Thought": "penguiflow.types",
    "WM": "penguiflow.types",
    "FinalAnswer": "penguiflow.types",
    "map_concurrent": "penguiflow.patterns",
    "join_k": "penguiflow.patterns",
    "predicate_router": "penguiflow.patterns",
    "union_router": "penguiflow.patterns",
    "DictRoutingPolicy": "penguiflow.policies",
    "RoutingPolicy": "penguiflow.policies",
    "RoutingRequest": "penguiflow.policies",
    "format_sse_event": "penguiflow.streaming",
    "chunk_to_ws_json": "penguiflow.streaming",
    "stream_flow": "penguiflow.streaming",
    "emit_stream_events": "penguiflow.streaming",
    "flow_to_mermaid": "penguiflow.viz",
    "flow_to_dot": "penguiflow.viz",
    "create": "penguiflow.core",
    "testkit": "penguiflow.testkit",
    "StateStore": "penguiflow.state",
    "StoredEvent": "penguiflow.state",
    "RemoteBinding": "penguiflow.state",
    "RemoteTransport": "penguiflow.remote",
    "RemoteCallRequest": "penguiflow.remote",
    "RemoteCallResult": "penguiflow.remote",
    "RemoteStreamEvent": "penguiflow.remote",
    "RemoteNode": "penguiflow.remote",
    "ReactPlanner": "penguiflow.planner",
    "PlannerAction": "penguiflow.planner",
    "PlannerFinish": "penguiflow.planner",
    "Trajectory": "penguiflow.planner",
    "TrajectoryStep": "penguiflow.planner",
}

# 3.0 names importable from the top level but kept out of ``__all__``, which lists
# exactly the 2.2.5 names (``from penguiflow import *`` stays 2.2.5's).
_ADDITIONS: dict[str, str] = {
    "Interrupt": "penguiflow.interrupts",
    "RateLimit": "penguiflow.ratelimit",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name) or _ADDITIONS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'penguiflow' has no attribute {name!r}")
    module = importlib.import_module(module_name)
    value = module if module_name == f"penguiflow.{name}" else getattr(module, name)
    globals()[name] = value  # cache: later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_ADDITIONS))


if TYPE_CHECKING:  # pragma: no cover - static re-exports for type checkers
    from penguiflow import testkit as testkit
    from penguiflow.bus import BusEnvelope as BusEnvelope
    from penguiflow.bus import MessageBus as MessageBus
    from penguiflow.catalog import NodeSpec as NodeSpec
    from penguiflow.catalog import SideEffect as SideEffect
    from penguiflow.catalog import build_catalog as build_catalog
    from penguiflow.catalog import tool as tool
    from penguiflow.core import DEFAULT_QUEUE_MAXSIZE as DEFAULT_QUEUE_MAXSIZE
    from penguiflow.core import Context as Context
    from penguiflow.core import CycleError as CycleError
    from penguiflow.core import PenguiFlow as PenguiFlow
    from penguiflow.core import call_playbook as call_playbook
    from penguiflow.core import create as create
    from penguiflow.debug import format_flow_event as format_flow_event
    from penguiflow.errors import FlowError as FlowError
    from penguiflow.errors import FlowErrorCode as FlowErrorCode
    from penguiflow.interrupts import Interrupt as Interrupt
    from penguiflow.metrics import FlowEvent as FlowEvent
    from penguiflow.middlewares import LatencyCallback as LatencyCallback
    from penguiflow.middlewares import Middleware as Middleware
    from penguiflow.middlewares import log_flow_events as log_flow_events
    from penguiflow.node import Node as Node
    from penguiflow.node import NodePolicy as NodePolicy
    from penguiflow.patterns import join_k as join_k
    from penguiflow.patterns import map_concurrent as map_concurrent
    from penguiflow.patterns import predicate_router as predicate_router
    from penguiflow.patterns import union_router as union_router
    from penguiflow.planner import PlannerAction as PlannerAction
    from penguiflow.planner import PlannerFinish as PlannerFinish
    from penguiflow.planner import ReactPlanner as ReactPlanner
    from penguiflow.planner import Trajectory as Trajectory
    from penguiflow.planner import TrajectoryStep as TrajectoryStep
    from penguiflow.policies import DictRoutingPolicy as DictRoutingPolicy
    from penguiflow.policies import RoutingPolicy as RoutingPolicy
    from penguiflow.policies import RoutingRequest as RoutingRequest
    from penguiflow.ratelimit import RateLimit as RateLimit
    from penguiflow.registry import ModelRegistry as ModelRegistry
    from penguiflow.remote import RemoteCallRequest as RemoteCallRequest
    from penguiflow.remote import RemoteCallResult as RemoteCallResult
    from penguiflow.remote import RemoteNode as RemoteNode
    from penguiflow.remote import RemoteStreamEvent as RemoteStreamEvent
    from penguiflow.remote import RemoteTransport as RemoteTransport
    from penguiflow.state import RemoteBinding as RemoteBinding
    from penguiflow.state import StateStore as StateStore
    from penguiflow.state import StoredEvent as StoredEvent
    from penguiflow.streaming import chunk_to_ws_json as chunk_to_ws_json
    from penguiflow.streaming import emit_stream_events as emit_stream_events
    from penguiflow.streaming import format_sse_event as format_sse_event
    from penguiflow.streaming import stream_flow as stream_flow
    from penguiflow.types import WM as WM
    from penguiflow.types import FinalAnswer as FinalAnswer
    from penguiflow.types import Headers as Headers
    from penguiflow.types import Message as Message
    from penguiflow.types import PlanStep as PlanStep
    from penguiflow.types import StreamChunk as StreamChunk
    from penguiflow.types import Thought as Thought
    from penguiflow.viz import flow_to_dot as flow_to_dot
    from penguiflow.viz import flow_to_mermaid as flow_to_mermaid
