"""Conformance: spec/distribution.md (state/bus records, RemoteNode, admin CLI)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
import types
from collections.abc import AsyncIterator
from typing import Any

import pytest
from conformance_support import EventLog, emit, fetch, msg

from penguiflow import (
    BusEnvelope,
    FlowError,
    Node,
    NodePolicy,
    RemoteBinding,
    RemoteCallRequest,
    RemoteCallResult,
    RemoteNode,
    RemoteStreamEvent,
    RemoteTransport,
    StateStore,
    StoredEvent,
)
from penguiflow.admin import load_state_store, main, render_events
from penguiflow.core import Context, TraceCancelled

NONE = NodePolicy(validate="none")


def fields(cls: type) -> list[tuple[str, Any]]:
    return [
        (f.name, f.default if f.default is not dataclasses.MISSING else "<required>")
        for f in dataclasses.fields(cls)
    ]


# --- records -----


def test_stored_event_fields() -> None:
    assert [n for n, _ in fields(StoredEvent)] == [
        "trace_id",
        "ts",
        "kind",
        "node_name",
        "node_id",
        "payload",
    ]
    assert all(d == "<required>" for _, d in fields(StoredEvent))


def test_remote_binding_fields_and_equality() -> None:
    assert fields(RemoteBinding) == [
        ("trace_id", "<required>"),
        ("context_id", "<required>"),
        ("task_id", "<required>"),
        ("agent_url", "<required>"),
    ]
    assert RemoteBinding("t", "c", "k", "u") == RemoteBinding("t", "c", "k", "u")


def test_bus_envelope_fields() -> None:
    assert [n for n, _ in fields(BusEnvelope)] == [
        "edge",
        "source",
        "target",
        "trace_id",
        "payload",
        "headers",
        "meta",
    ]


def test_remote_dataclass_fields() -> None:
    assert fields(RemoteCallRequest) == [
        ("message", "<required>"),
        ("skill", "<required>"),
        ("agent_url", "<required>"),
        ("agent_card", None),
        ("metadata", None),
        ("timeout_s", None),
    ]
    assert fields(RemoteCallResult) == [
        ("result", "<required>"),
        ("context_id", None),
        ("task_id", None),
        ("agent_url", None),
        ("meta", None),
    ]
    assert fields(RemoteStreamEvent) == [
        ("text", None),
        ("done", False),
        ("meta", None),
        ("context_id", None),
        ("task_id", None),
        ("agent_url", None),
        ("result", None),
    ]


def test_protocols_are_subclassable() -> None:
    class Store(StateStore):
        async def save_event(self, event: StoredEvent) -> None:
            return None

        async def load_history(self, trace_id: str) -> list[StoredEvent]:
            return []

        async def save_remote_binding(self, binding: RemoteBinding) -> None:
            return None

    assert isinstance(Store(), StateStore)


# --- RemoteNode -----


class Transport(RemoteTransport):
    def __init__(
        self,
        *,
        result: Any = None,
        events: list[RemoteStreamEvent] | None = None,
        block: bool = False,
        fail: BaseException | None = None,
        cancel_fails: bool = False,
    ) -> None:
        self.result = result
        self.events = events or []
        self.block = block
        self.fail = fail
        self.cancel_fails = cancel_fails
        self.requests: list[RemoteCallRequest] = []
        self.cancels: list[dict[str, str]] = []
        self.streamed = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def send(self, request: RemoteCallRequest) -> RemoteCallResult:
        self.requests.append(request)
        if self.fail is not None:
            raise self.fail
        return RemoteCallResult(
            result=self.result, context_id="ctx-1", task_id="task-1", agent_url="https://remote"
        )

    async def stream(self, request: RemoteCallRequest) -> AsyncIterator[RemoteStreamEvent]:
        self.requests.append(request)
        for event in self.events:
            yield event
        self.streamed.set()
        if self.block:
            await asyncio.Event().wait()

    async def cancel(self, *, agent_url: str, task_id: str) -> None:
        self.cancels.append({"agent_url": agent_url, "task_id": task_id})
        self.cancelled.set()
        if self.cancel_fails:
            raise RuntimeError("cancel failed")


class Store(StateStore):
    def __init__(self) -> None:
        self.events: list[StoredEvent] = []
        self.bindings: list[RemoteBinding] = []

    async def save_event(self, event: StoredEvent) -> None:
        self.events.append(event)

    async def load_history(self, trace_id: str) -> list[StoredEvent]:
        return [e for e in self.events if e.trace_id == trace_id]

    async def save_remote_binding(self, binding: RemoteBinding) -> None:
        self.bindings.append(binding)


def remote(transport: Transport, **kwargs: Any) -> Node:
    kwargs.setdefault("policy", NONE)
    return RemoteNode(
        transport=transport, skill="search", agent_url="https://agent", name="remote", **kwargs
    )


def test_remote_node_defaults() -> None:
    node = RemoteNode(transport=Transport(), skill="s", agent_url="u", name="r")
    assert isinstance(node, Node)
    assert node.name == "r"
    assert node.policy.validate == "both"


async def test_remote_unary_call(make_flow: Any) -> None:
    log = EventLog()
    store = Store()
    transport = Transport(result={"answer": 42})
    flow = make_flow(remote(transport).to(), middlewares=[log], state_store=store)
    flow.run()
    m = msg(meta={"k": "v"})
    await emit(flow, m)
    assert await fetch(flow) == {"answer": 42}
    (request,) = transport.requests
    assert request.message is m
    assert (request.skill, request.agent_url, request.timeout_s) == (
        "search",
        "https://agent",
        None,
    )
    assert request.metadata is m.meta
    assert store.bindings == [
        RemoteBinding(
            trace_id=m.trace_id, context_id="ctx-1", task_id="task-1", agent_url="https://remote"
        )
    ]
    await log.wait_for("node_success")
    kinds = [k for k in log.kinds(m.trace_id) if k.startswith("remote_")]
    assert kinds == ["remote_call_start", "remote_call_success"]
    start, success = log.of("remote_call_start")[0], log.of("remote_call_success")[0]
    assert start.latency_ms == 0.0
    assert list(start.extra)[:4] == [
        "remote_skill",
        "remote_transport",
        "remote_streaming",
        "remote_request_bytes",
    ]
    assert start.extra["remote_skill"] == "search"
    assert start.extra["remote_transport"] == "Transport"
    assert start.extra["remote_streaming"] is False
    assert start.extra["remote_request_bytes"] > 0
    assert "remote_context_id" not in start.extra
    assert success.extra["remote_status"] == "success"
    assert success.extra["remote_stream_events"] == 0
    assert success.extra["remote_response_bytes"] > 0
    assert success.extra["remote_context_id"] == "ctx-1"
    assert success.extra["remote_task_id"] == "task-1"
    assert success.extra["remote_agent_url"] == "https://remote"


async def test_remote_requires_message(make_flow: Any) -> None:
    log = EventLog()
    flow = make_flow(remote(Transport()).to(), middlewares=[log])
    flow.run()
    await emit(flow, "bare")
    (error,) = await log.wait_for("node_error")
    assert error.extra["exception"] == repr(
        TypeError("Remote nodes require penguiflow.types.Message inputs")
    )


async def test_remote_requires_runtime() -> None:
    node = remote(Transport())
    with pytest.raises(RuntimeError) as info:
        await node.invoke(msg(), Context(node), registry=None)
    assert str(info.value) == "Context is not bound to a running PenguiFlow"


async def test_remote_transport_error(make_flow: Any) -> None:
    log = EventLog()
    boom = ConnectionError("down")
    flow = make_flow(
        remote(Transport(fail=boom)).to(), middlewares=[log], emit_errors_to_rookery=True
    )
    flow.run()
    m = msg()
    await emit(flow, m)
    err = await fetch(flow)
    assert isinstance(err, FlowError)
    assert err.unwrap() is boom
    (event,) = log.of("remote_call_error")
    assert event.extra["remote_error"] == repr(boom)
    assert event.extra["remote_status"] == "error"
    assert "remote_call_success" not in log.kinds()


async def test_remote_streaming(make_flow: Any) -> None:
    log = EventLog()
    store = Store()
    transport = Transport(
        events=[
            RemoteStreamEvent(text="he", context_id="c1"),
            RemoteStreamEvent(text="llo", meta={"b": 1, "a": 2}, context_id="c1", task_id="t1"),
            RemoteStreamEvent(done=True, result={"final": True}),
        ]
    )
    flow = make_flow(
        remote(transport, streaming=True).to(),
        middlewares=[log],
        state_store=store,
        queue_maxsize=8,
    )
    flow.run()
    m = msg()
    await emit(flow, m)
    first, second, final = await fetch(flow), await fetch(flow), await fetch(flow)
    assert [first.payload.text, second.payload.text] == ["he", "llo"]
    assert second.payload.meta == {"b": 1, "a": 2}
    assert final == {"final": True}
    assert store.bindings == [
        RemoteBinding(trace_id=m.trace_id, context_id="c1", task_id="t1", agent_url="https://agent")
    ]
    await log.wait_for("remote_call_success")
    stream_events = log.of("remote_stream_event")
    assert [e.extra["remote_stream_seq"] for e in stream_events] == [0, 1, 2]
    assert stream_events[1].extra["remote_chunk_meta_keys"] == ["a", "b"]
    assert stream_events[0].extra["remote_chunk_bytes"] > 0
    assert "remote_chunk_bytes" not in stream_events[2].extra
    assert stream_events[2].extra["remote_chunk_done"] is True
    assert log.of("remote_call_success")[0].extra["remote_stream_events"] == 3


async def test_remote_streaming_cancel_mirrors_to_transport(make_flow: Any) -> None:
    log = EventLog()
    transport = Transport(
        events=[RemoteStreamEvent(text="partial", context_id="c1", task_id="t1")], block=True
    )
    flow = make_flow(remote(transport, streaming=True).to(), middlewares=[log])
    flow.run()
    m = msg()
    await emit(flow, m)
    async with asyncio.timeout(5):
        await transport.streamed.wait()
    assert await flow.cancel(m.trace_id) is True
    await log.wait_for("trace_cancel_finish")
    await log.wait_for("remote_call_cancelled")
    assert transport.cancels == [{"agent_url": "https://agent", "task_id": "t1"}]
    (cancelled,) = log.of("remote_call_cancelled")
    assert cancelled.extra["remote_cancel_reason"] == "trace_cancel"
    assert cancelled.extra["remote_status"] == "cancelled"
    assert "remote_call_success" not in log.kinds()


async def test_remote_pre_cancelled_trace(make_flow: Any) -> None:
    log = EventLog()
    transport = Transport(result="r")
    node = remote(transport)
    flow = make_flow(node.to(), middlewares=[log])
    flow.run()
    m = msg()
    flag = flow.ensure_trace_event(m.trace_id)
    flag.set()
    with pytest.raises(TraceCancelled):
        await node.invoke(m, flow._contexts[node], registry=None)
    assert transport.cancels == [{"agent_url": "https://remote", "task_id": "task-1"}]
    (event,) = log.of("remote_call_cancelled")
    assert event.extra["remote_cancel_reason"] == "pre_cancelled"


async def test_remote_cancel_error_is_swallowed(make_flow: Any) -> None:
    log = EventLog()
    transport = Transport(result="r", cancel_fails=True)
    node = remote(transport)
    flow = make_flow(node.to(), middlewares=[log])
    flow.run()
    m = msg()
    flow.ensure_trace_event(m.trace_id).set()
    with pytest.raises(TraceCancelled):
        await node.invoke(m, flow._contexts[node], registry=None)
    (event,) = log.of("remote_cancel_error")
    assert event.extra["remote_status"] == "cancel_error"
    assert event.extra["remote_error"] == repr(RuntimeError("cancel failed"))


async def test_remote_record_binding_false(make_flow: Any) -> None:
    store = Store()
    flow = make_flow(remote(Transport(result=1), record_binding=False).to(), state_store=store)
    flow.run()
    await emit(flow, msg())
    assert await fetch(flow) == 1
    assert store.bindings == []


# --- admin CLI -----


FACTORY_MODULE = "pf_conformance_admin_store"


@pytest.fixture
def store_module(monkeypatch: pytest.MonkeyPatch) -> Store:
    store = Store()
    store.events = [
        StoredEvent(trace_id="T", ts=1.0, kind="k", node_name=None, node_id=None, payload={"z": 1}),
        StoredEvent(
            trace_id="T", ts=2.0, kind="k2", node_name="n", node_id="i", payload={"event": "own"}
        ),
    ]
    module = types.ModuleType(FACTORY_MODULE)
    module.make = lambda: store  # type: ignore[attr-defined]

    async def amake() -> Store:
        return store

    module.amake = amake  # type: ignore[attr-defined]
    module.not_callable = 5  # type: ignore[attr-defined]
    module.bad = lambda: object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, FACTORY_MODULE, module)
    return store


def test_render_events(store_module: Store) -> None:
    lines = render_events(store_module.events)
    assert lines[0] == (
        '{"event": "k", "node_id": null, "node_name": null, "trace_id": "T", "ts": 1.0, "z": 1}'
    )
    assert json.loads(lines[1])["event"] == "own"
    assert render_events(store_module.events, tail=1) == lines[1:]
    assert render_events(store_module.events, tail=0) == []
    assert render_events(store_module.events, tail=-1) == []


async def test_load_state_store(store_module: Store) -> None:
    assert await load_state_store(f"{FACTORY_MODULE}:make") is store_module
    assert await load_state_store(f"{FACTORY_MODULE}:amake") is store_module
    for spec in ("nocolon", ":x", f"{FACTORY_MODULE}:"):
        with pytest.raises(ValueError) as info:
            await load_state_store(spec)
        assert str(info.value) == "state store spec must be in the form 'package.module:callable'"
    with pytest.raises(ValueError) as missing:
        await load_state_store(f"{FACTORY_MODULE}:ghost")
    assert str(missing.value) == f"'{FACTORY_MODULE}:ghost' does not resolve to a callable"
    with pytest.raises(TypeError) as not_callable:
        await load_state_store(f"{FACTORY_MODULE}:not_callable")
    assert str(not_callable.value) == (
        f"'{FACTORY_MODULE}:not_callable' resolved to <class 'int'>, not a callable"
    )
    with pytest.raises(TypeError) as bad:
        await load_state_store(f"{FACTORY_MODULE}:bad")
    assert str(bad.value) == (
        "StateStore factories must implement save_event/load_history/save_remote_binding"
    )
    with pytest.raises(ModuleNotFoundError):
        await load_state_store("nomod_conformance:x")


def test_main_history(store_module: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "T", "--state-store", f"{FACTORY_MODULE}:make"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == render_events(store_module.events)
    assert main(["history", "--tail", "1", "--state-store", f"{FACTORY_MODULE}:make", "T"]) == 0
    assert capsys.readouterr().out.splitlines() == render_events(store_module.events)[1:]
    assert main(["history", "none", "--state-store", f"{FACTORY_MODULE}:make"]) == 0
    assert capsys.readouterr().out == ""


def test_main_replay(store_module: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "T", "--state-store", f"{FACTORY_MODULE}:make"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "# replay trace=T events=2"
    assert out[1:] == render_events(store_module.events)
    assert main(["replay", "none", "--state-store", f"{FACTORY_MODULE}:make"]) == 0
    assert capsys.readouterr().out.splitlines() == ["# trace none has no stored events"]


def test_main_errors(store_module: Store, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "T", "--state-store", "bad"]) == 1
    assert capsys.readouterr().err.strip() == (
        "error: state store spec must be in the form 'package.module:callable'"
    )
    assert main(["history", "T", "--state-store", "nomod:x"]) == 1
    assert capsys.readouterr().err.strip() == "error: No module named 'nomod'"


def test_main_argument_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--state-store", "x:y", "history", "T"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main([])
    assert "usage: penguiflow-admin [-h] {history,replay} ..." in capsys.readouterr().err


def test_python_dash_m_admin() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "penguiflow.admin", "history", "T", "--state-store", "bad"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1
    assert out.stderr.strip().startswith("error: state store spec")


async def test_remote_streaming_ids_on_separate_events_do_not_bind(make_flow: Any) -> None:
    log = EventLog()
    store = Store()
    transport = Transport(
        events=[
            RemoteStreamEvent(text="a", context_id="c1"),
            RemoteStreamEvent(text="b", task_id="t1", done=True),
        ]
    )
    flow = make_flow(remote(transport, streaming=True).to(), middlewares=[log], state_store=store)
    flow.run()
    await emit(flow, msg())
    chunks = [(await fetch(flow)).payload for _ in range(2)]
    assert [c.text for c in chunks] == ["a", "b"]
    await log.wait_for("remote_call_success")
    assert store.bindings == []
    success = log.of("remote_call_success")[0]
    assert success.extra["remote_context_id"] == "c1"
    assert success.extra["remote_task_id"] == "t1"
