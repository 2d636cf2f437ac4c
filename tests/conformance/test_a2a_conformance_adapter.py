"""Conformance: spec/a2a.md — models, adapter lifecycle, request preparation, send, stream, cancel.

Black-box over the public names of ``penguiflow_a2a`` and ``penguiflow``; no HTTP here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import penguiflow_a2a
import penguiflow_a2a.server as a2a_server
from penguiflow import (
    FinalAnswer,
    FlowError,
    Headers,
    Message,
    ModelRegistry,
    Node,
    NodePolicy,
    RemoteBinding,
    StreamChunk,
    create,
    format_sse_event,
    predicate_router,
)
from penguiflow_a2a import (
    A2AAgentCard,
    A2AMessagePayload,
    A2AServerAdapter,
    A2ASkill,
    A2ATaskCancelRequest,
)
from penguiflow_a2a.server import A2ARequestError

AGENT_URL = "http://agent.example/"


class Out(BaseModel):
    x: int


class Behaviour:
    """What the test flow's nodes do, by ``payload["op"]``; gates let tests hold them."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = {}

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    def arrived(self, name: str) -> asyncio.Event:
        return self.entered.setdefault(name, asyncio.Event())

    async def work(self, message: Message, ctx: Any) -> Any:
        payload = message.payload
        op = payload.get("op", "echo") if isinstance(payload, dict) else "echo"
        if op == "echo":
            return {"echo": payload.get("value") if isinstance(payload, dict) else payload}
        if op == "message":
            message.meta["handled"] = True
            return message.model_copy(update={"payload": {"wrapped": True}})
        if op == "final":
            return FinalAnswer(text="answer", citations=["c1"])
        if op == "model":
            return {"model": Out(x=1), "seq": (1, 2), "one": {3}}
        if op == "bare_model":
            return Out(x=2)
        if op == "chunks":
            await ctx.emit_chunk(parent=message, text="hel", meta={"k": "v"})
            await ctx.emit_chunk(parent=message, text="lo", done=True)
            return {"final": "hello"}
        if op == "fail":
            raise ValueError("boom")
        if op == "hang":
            name = payload["gate"]
            self.arrived(name).set()
            await self.gate(name).wait()
            return {"released": name}
        raise AssertionError(op)


def build_flow(behaviour: Behaviour, **kwargs: Any) -> Any:
    policy = NodePolicy(validate="none")
    a = Node(behaviour.work, name="lane_a", policy=policy)
    b = Node(behaviour.work, name="lane_b", policy=policy)

    def pick(message: Any) -> str:
        payload = message.payload
        return "lane_b" if isinstance(payload, dict) and payload.get("lane") == "b" else "lane_a"

    router = predicate_router("router", pick)
    return create(router.to(a, b), a.to(), b.to(), **kwargs)


def card() -> A2AAgentCard:
    return A2AAgentCard(name="Agent", description="Test agent", version="2.1.0")


@pytest.fixture
def behaviour() -> Behaviour:
    return Behaviour()


@pytest.fixture
async def make_adapter(behaviour: Behaviour) -> AsyncIterator[Callable[..., A2AServerAdapter]]:
    made: list[A2AServerAdapter] = []

    def factory(
        *, default_headers: Any = None, target: Any = None, **flow_kwargs: Any
    ) -> A2AServerAdapter:
        adapter = A2AServerAdapter(
            build_flow(behaviour, **flow_kwargs),
            agent_card=card(),
            agent_url=AGENT_URL,
            default_headers=default_headers,
            target=target,
        )
        made.append(adapter)
        return adapter

    yield factory
    for gate in behaviour.gates.values():
        gate.set()
    for adapter in made:
        async with asyncio.timeout(5):
            await adapter.stop()


@pytest.fixture
async def adapter(make_adapter: Callable[..., A2AServerAdapter]) -> A2AServerAdapter:
    started = make_adapter(emit_errors_to_rookery=True)
    await started.start()
    return started


def req(payload: Any, **kwargs: Any) -> A2AMessagePayload:
    kwargs.setdefault("headers", {"tenant": "acme"})
    return A2AMessagePayload(payload=payload, **kwargs)


async def send(adapter: A2AServerAdapter, request: A2AMessagePayload) -> dict[str, Any]:
    async with asyncio.timeout(5):
        return await adapter.handle_send(request)


async def collect(events: AsyncIterator[bytes]) -> list[bytes]:
    out: list[bytes] = []
    async with asyncio.timeout(5):
        async for event in events:
            out.append(event)
    return out


def sse(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


# -- exports and models -------------------------------------------------------------


def test_exports() -> None:
    names = [
        "A2AAgentCard",
        "A2ASkill",
        "A2AMessagePayload",
        "A2ATaskCancelRequest",
        "A2AServerAdapter",
        "create_a2a_app",
    ]
    assert sorted(penguiflow_a2a.__all__) == sorted(names)
    for name in names:
        assert getattr(penguiflow_a2a, name) is getattr(a2a_server, name)
    assert issubclass(A2ARequestError, Exception)


def test_skill_defaults_and_extra_fields() -> None:
    skill = A2ASkill(name="s", description="d", custom=1)  # type: ignore[call-arg]
    assert skill.model_dump() == {
        "name": "s",
        "description": "d",
        "mode": "both",
        "inputs": {},
        "outputs": {},
        "custom": 1,
    }
    with pytest.raises(ValidationError):
        A2ASkill(name="s")  # type: ignore[call-arg]


def test_agent_card_defaults_and_payload() -> None:
    base = A2AAgentCard(name="n", description="d")
    assert base.to_payload() == {
        "name": "n",
        "description": "d",
        "version": "1.0.0",
        "schema_version": "1.0",
        "tags": [],
        "capabilities": [],
        "skills": [],
        "contact_url": None,
        "documentation_url": None,
    }
    rich = A2AAgentCard(
        name="n",
        description="d",
        skills=[A2ASkill(name="s", description="sd", mode="stream")],
        region="eu",  # type: ignore[call-arg]
    )
    payload = rich.to_payload()
    assert payload["skills"] == [
        {"name": "s", "description": "sd", "mode": "stream", "inputs": {}, "outputs": {}}
    ]
    assert payload["region"] == "eu"
    json.dumps(payload)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(
            {
                "payload": 1,
                "traceId": "t",
                "contextId": "c",
                "taskId": "k",
                "deadlineSeconds": 5.5,
            },
            id="aliases",
        ),
        pytest.param(
            {"payload": 1, "trace_id": "t", "context_id": "c", "task_id": "k", "deadline_s": 5.5},
            id="field-names",
        ),
    ],
)
def test_message_payload_accepts_alias_and_field_names(data: dict[str, Any]) -> None:
    for model in (A2AMessagePayload.model_validate(data), A2AMessagePayload(**data)):
        assert (model.trace_id, model.context_id, model.task_id) == ("t", "c", "k")
        assert model.deadline_s == 5.5
    restored = A2AMessagePayload.model_validate_json(json.dumps(data))
    assert restored.trace_id == "t"


def test_message_payload_defaults_and_required_payload() -> None:
    model = A2AMessagePayload(payload=None)
    assert model.payload is None
    assert dict(model.headers) == {}
    assert model.meta == {}
    assert (model.trace_id, model.context_id, model.task_id, model.deadline_s) == (
        None,
        None,
        None,
        None,
    )
    with pytest.raises(ValidationError):
        A2AMessagePayload.model_validate({"headers": {}})


def test_cancel_request_alias_and_name() -> None:
    assert A2ATaskCancelRequest(task_id="t").task_id == "t"
    assert A2ATaskCancelRequest(taskId="t").task_id == "t"  # type: ignore[call-arg]
    assert A2ATaskCancelRequest.model_validate({"taskId": "t"}).task_id == "t"
    with pytest.raises(ValidationError):
        A2ATaskCancelRequest.model_validate({})


def test_request_error_shape() -> None:
    err = A2ARequestError(status_code=409, detail="busy")
    assert (err.status_code, err.detail, str(err)) == (409, "busy", "busy")
    with pytest.raises(TypeError):
        A2ARequestError(409, "busy")  # type: ignore[misc]


# -- lifecycle with a duck-typed flow ---------------------------------------------------


class DuckFlow:
    """Offers only what the spec lets the adapter touch."""

    def __init__(self, *, fetch_error: BaseException | None = None) -> None:
        self.run_calls: list[Any] = []
        self.stop_calls = 0
        self.fetch_error = fetch_error
        self.emit_error: BaseException | None = None
        self.bindings: list[Any] = []
        self.fetch_failed = asyncio.Event()
        self._never = asyncio.Event()

    def run(self, *, registry: Any = None) -> None:
        self.run_calls.append(registry)

    async def stop(self) -> None:
        self.stop_calls += 1

    async def emit(self, message: Any, to: Any = None) -> None:
        if self.emit_error is not None:
            raise self.emit_error

    async def fetch(self, from_: Any = None) -> Any:
        if self.fetch_error is not None:
            self.fetch_failed.set()
            raise self.fetch_error
        await self._never.wait()

    async def cancel(self, trace_id: str) -> bool:
        return False

    async def save_remote_binding(self, binding: Any) -> None:
        self.bindings.append(binding)

    def ensure_trace_event(self, trace_id: str) -> asyncio.Event:
        return asyncio.Event()


async def test_start_and_stop_are_idempotent_and_restartable() -> None:
    flow = DuckFlow()
    registry = ModelRegistry()
    adapter = A2AServerAdapter(
        flow, agent_card={"name": "n", "description": "d"}, agent_url="u", registry=registry
    )
    assert isinstance(adapter.agent_card, A2AAgentCard)
    assert adapter.agent_url == "u"
    async with asyncio.timeout(5):
        await adapter.start()
        await adapter.start()
        assert flow.run_calls == [registry]
        await adapter.stop()
        await adapter.stop()
        assert flow.stop_calls == 1
        await adapter.start()
        await adapter.stop()
    assert flow.run_calls == [registry, registry]
    assert flow.stop_calls == 2


async def test_stop_without_start_does_not_touch_the_flow() -> None:
    flow = DuckFlow()
    adapter = A2AServerAdapter(flow, agent_card=card(), agent_url="u")
    await adapter.stop()
    assert flow.stop_calls == 0
    assert flow.run_calls == []


async def test_dispatcher_errors_do_not_propagate_out_of_stop() -> None:
    flow = DuckFlow(fetch_error=RuntimeError("fetch broke"))
    adapter = A2AServerAdapter(flow, agent_card=card(), agent_url="u")
    async with asyncio.timeout(5):
        await adapter.start()
        await flow.fetch_failed.wait()
        await adapter.stop()
    assert flow.stop_calls == 1


async def test_unexpected_exception_in_send_is_500() -> None:
    flow = DuckFlow()
    flow.emit_error = ValueError("kaput")
    adapter = A2AServerAdapter(flow, agent_card=card(), agent_url="u")
    await adapter.start()
    try:
        with pytest.raises(A2ARequestError) as info:
            await send(adapter, req("x", taskId="T"))
        assert info.value.status_code == 500
        assert info.value.detail == "flow execution failed: kaput"
        # reservations are released in every case
        assert flow.bindings[0].task_id == "T"
        flow.emit_error = ValueError("again")
        with pytest.raises(A2ARequestError) as again:
            await send(adapter, req("x", taskId="T"))
        assert again.value.status_code == 500
    finally:
        await adapter.stop()


async def test_unexpected_exception_in_stream_is_internal_error_event() -> None:
    flow = DuckFlow()
    flow.emit_error = ValueError("kaput")
    adapter = A2AServerAdapter(flow, agent_card=card(), agent_url="u")
    await adapter.start()
    try:
        events, task_id, context_id = await adapter.stream(req("x", taskId="T", contextId="C"))
        assert (task_id, context_id) == ("T", "C")
        ids = {"taskId": "T", "contextId": "C"}
        assert await collect(events) == [
            sse("error", {**ids, "code": "INTERNAL_ERROR", "message": "kaput"}),
            sse("done", ids),
        ]
    finally:
        await adapter.stop()


# -- request preparation ------------------------------------------------------------------


async def test_not_started_is_503(make_adapter: Callable[..., A2AServerAdapter]) -> None:
    adapter = make_adapter()
    for attempt in (adapter.handle_send(req("x")), adapter.stream(req("x"))):
        with pytest.raises(A2ARequestError) as info:
            await attempt
        assert (info.value.status_code, info.value.detail) == (503, "flow is not running")
    with pytest.raises(A2ARequestError) as cancel:
        await adapter.cancel(A2ATaskCancelRequest(task_id="t"))
    assert (cancel.value.status_code, cancel.value.detail) == (503, "flow is not running")


async def test_invalid_headers_are_422_with_validation_text(adapter: A2AServerAdapter) -> None:
    try:
        Headers(**{})
    except ValidationError as exc:
        expected = str(exc)
    with pytest.raises(A2ARequestError) as info:
        await send(adapter, req("x", headers={}))
    assert info.value.status_code == 422
    assert info.value.detail == expected
    with pytest.raises(A2ARequestError) as stream_info:
        await adapter.stream(req("x", headers={}))
    assert stream_info.value.status_code == 422


async def test_ids_default_to_the_trace_id(adapter: A2AServerAdapter) -> None:
    reply = await send(adapter, req({"value": 1}))
    assert reply["taskId"] == reply["contextId"] == reply["traceId"]
    assert isinstance(reply["traceId"], str)
    assert reply["traceId"]


async def test_given_ids_are_used(adapter: A2AServerAdapter) -> None:
    reply = await send(adapter, req({"value": 1}, traceId="TR", contextId="CX", taskId="TK"))
    assert list(reply) == ["status", "taskId", "contextId", "traceId", "output"]
    assert (reply["taskId"], reply["contextId"], reply["traceId"]) == ("TK", "CX", "TR")


async def test_default_headers_are_merged_under_request_headers(
    make_adapter: Callable[..., A2AServerAdapter],
) -> None:
    adapter = make_adapter(default_headers={"tenant": "default", "topic": "t0"})
    await adapter.start()
    seen: list[Any] = []
    original = adapter.flow.emit

    async def spy(message: Any, to: Any = None) -> None:
        seen.append(message)
        await original(message, to=to)

    adapter.flow.emit = spy
    await send(adapter, A2AMessagePayload(payload={"value": 1}))
    await send(adapter, req({"value": 1}, headers={"tenant": "acme"}, meta={"m": 1}))
    first, second = seen
    assert (first.headers.tenant, first.headers.topic) == ("default", "t0")
    assert (second.headers.tenant, second.headers.topic) == ("acme", "t0")
    assert second.meta == {"m": 1}


async def test_message_carries_trace_deadline_and_meta(adapter: A2AServerAdapter) -> None:
    seen: list[Any] = []
    original = adapter.flow.emit

    async def spy(message: Any, to: Any = None) -> None:
        seen.append((message, to))
        await original(message, to=to)

    adapter.flow.emit = spy
    await send(adapter, req({"op": "message"}, traceId="T9", deadlineSeconds=4.0e9, meta={"a": 1}))
    ((message, to),) = seen
    assert isinstance(message, Message)
    assert message.trace_id == "T9"
    assert message.deadline_s == 4.0e9
    assert message.meta == {"a": 1, "handled": True}
    assert to is None


class BindingStore:
    def __init__(self) -> None:
        self.bindings: list[RemoteBinding] = []

    async def save_event(self, event: Any) -> None:
        return None

    async def load_history(self, trace_id: str) -> list[Any]:
        return []

    async def save_remote_binding(self, binding: RemoteBinding) -> None:
        self.bindings.append(binding)


async def test_binding_is_saved_with_agent_url(
    make_adapter: Callable[..., A2AServerAdapter],
) -> None:
    store = BindingStore()
    adapter = make_adapter(state_store=store)
    await adapter.start()
    reply = await send(adapter, req({"value": 1}, contextId="C1", taskId="K1"))
    assert store.bindings == [
        RemoteBinding(trace_id=reply["traceId"], context_id="C1", task_id="K1", agent_url=AGENT_URL)
    ]


async def test_duplicate_active_task_is_409(
    adapter: A2AServerAdapter, behaviour: Behaviour
) -> None:
    first = asyncio.create_task(adapter.handle_send(req({"op": "hang", "gate": "g"}, taskId="T")))
    try:
        async with asyncio.timeout(5):
            await behaviour.arrived("g").wait()
        with pytest.raises(A2ARequestError) as info:
            await send(adapter, req({"value": 1}, taskId="T"))
        assert (info.value.status_code, info.value.detail) == (409, "task 'T' already active")
        with pytest.raises(A2ARequestError) as stream_info:
            await adapter.stream(req({"value": 1}, taskId="T"))
        assert stream_info.value.status_code == 409
    finally:
        behaviour.gate("g").set()
        async with asyncio.timeout(5):
            reply = await first
    assert reply["output"] == {"released": "g"}
    # released: the id can be used again
    assert (await send(adapter, req({"value": 2}, taskId="T")))["output"] == {"echo": 2}


async def test_duplicate_active_trace_is_409_and_releases_the_task(
    adapter: A2AServerAdapter, behaviour: Behaviour
) -> None:
    first = asyncio.create_task(
        adapter.handle_send(req({"op": "hang", "gate": "g"}, traceId="TR", taskId="A"))
    )
    try:
        async with asyncio.timeout(5):
            await behaviour.arrived("g").wait()
        with pytest.raises(A2ARequestError) as info:
            await send(adapter, req({"value": 1}, traceId="TR", taskId="B"))
        assert (info.value.status_code, info.value.detail) == (409, "trace 'TR' already active")
    finally:
        behaviour.gate("g").set()
        async with asyncio.timeout(5):
            await first
    assert (await send(adapter, req({"value": 3}, taskId="B")))["status"] == "succeeded"


# -- handle_send outcomes --------------------------------------------------------------


async def test_bare_dict_result_has_no_meta_even_with_request_meta(
    adapter: A2AServerAdapter,
) -> None:
    reply = await send(adapter, req({"value": "penguins"}, meta={"m": 1}))
    assert reply == {
        "status": "succeeded",
        "taskId": reply["traceId"],
        "contextId": reply["traceId"],
        "traceId": reply["traceId"],
        "output": {"echo": "penguins"},
    }


async def test_message_result_output_is_payload_and_meta_included(
    adapter: A2AServerAdapter,
) -> None:
    reply = await send(adapter, req({"op": "message"}, meta={"m": 1}, taskId="K"))
    assert list(reply) == ["status", "taskId", "contextId", "traceId", "output", "meta"]
    assert reply["output"] == {"wrapped": True}
    assert reply["meta"] == {"m": 1, "handled": True}


async def test_final_answer_output(adapter: A2AServerAdapter) -> None:
    reply = await send(adapter, req({"op": "final"}))
    assert reply["output"] == {"text": "answer", "citations": ["c1"]}
    assert "meta" not in reply


async def test_jsonable_output_conversion(adapter: A2AServerAdapter) -> None:
    reply = await send(adapter, req({"op": "model"}))
    assert reply["output"] == {"model": {"x": 1}, "seq": [1, 2], "one": [3]}
    bare = await send(adapter, req({"op": "bare_model"}))
    assert bare["output"] == {"x": 2}


async def test_chunks_are_skipped_by_send(adapter: A2AServerAdapter) -> None:
    reply = await send(adapter, req({"op": "chunks"}))
    assert reply["output"] == {"final": "hello"}


async def test_flow_error_reply(adapter: A2AServerAdapter) -> None:
    reply = await send(adapter, req({"op": "fail"}, taskId="F"))
    assert list(reply) == ["status", "taskId", "contextId", "traceId", "error"]
    assert reply["status"] == "failed"
    error = reply["error"]
    assert error["code"] == "NODE_EXCEPTION"
    assert error["message"] == "Node 'lane_a' raised ValueError: boom"
    assert error["trace_id"] == reply["traceId"]
    assert error["node_name"] == "lane_a"
    assert error["exception_type"] == "ValueError"
    assert list(error)[:2] == ["code", "message"]


async def test_trace_isolation_results_in_opposite_order(
    adapter: A2AServerAdapter, behaviour: Behaviour
) -> None:
    first = asyncio.create_task(adapter.handle_send(req({"op": "hang", "gate": "one"})))
    second = asyncio.create_task(
        adapter.handle_send(req({"op": "hang", "gate": "two", "lane": "b"}))
    )
    async with asyncio.timeout(5):
        await behaviour.arrived("one").wait()
        await behaviour.arrived("two").wait()
        behaviour.gate("two").set()
        two = await second
        behaviour.gate("one").set()
        one = await first
    assert one["output"] == {"released": "one"}
    assert two["output"] == {"released": "two"}
    assert one["traceId"] != two["traceId"]


async def test_cancel_pending_send(adapter: A2AServerAdapter, behaviour: Behaviour) -> None:
    pending = asyncio.create_task(
        adapter.handle_send(req({"op": "hang", "gate": "c"}, taskId="T1", contextId="C1"))
    )
    async with asyncio.timeout(5):
        await behaviour.arrived("c").wait()
        result = await adapter.cancel(A2ATaskCancelRequest(task_id="T1"))
        reply = await pending
    assert result == {
        "taskId": "T1",
        "cancelled": True,
        "traceId": reply["traceId"],
        "contextId": "C1",
    }
    assert list(result) == ["taskId", "cancelled", "traceId", "contextId"]
    assert reply == {
        "status": "cancelled",
        "taskId": "T1",
        "contextId": "C1",
        "traceId": reply["traceId"],
    }
    # finished task: unknown now
    unknown = await adapter.cancel(A2ATaskCancelRequest(task_id="T1"))
    assert unknown == {"taskId": "T1", "cancelled": False}


async def test_stop_while_waiting_is_503(adapter: A2AServerAdapter, behaviour: Behaviour) -> None:
    pending = asyncio.create_task(adapter.handle_send(req({"op": "hang", "gate": "s"})))
    async with asyncio.timeout(5):
        await behaviour.arrived("s").wait()
        await adapter.stop()
        with pytest.raises(A2ARequestError) as info:
            await pending
    assert (info.value.status_code, info.value.detail) == (503, "flow is shutting down")


async def test_target_is_forwarded_to_emit(behaviour: Behaviour) -> None:
    node = Node(behaviour.work, name="solo", policy=NodePolicy(validate="none"))
    flow = create(node.to())
    seen: list[Any] = []
    original = flow.emit

    async def spy(message: Any, to: Any = None) -> None:
        seen.append(to)
        await original(message, to=to)

    flow.emit = spy  # type: ignore[method-assign]
    adapter = A2AServerAdapter(flow, agent_card=card(), agent_url=AGENT_URL, target=node)
    await adapter.start()
    try:
        reply = await send(adapter, req({"value": 1}))
    finally:
        await adapter.stop()
    assert seen == [node]
    assert reply["output"] == {"echo": 1}


# -- stream ------------------------------------------------------------------------------


async def test_stream_event_bytes(adapter: A2AServerAdapter) -> None:
    events, task_id, context_id = await adapter.stream(
        req({"op": "chunks"}, taskId="S", contextId="X")
    )
    assert (task_id, context_id) == ("S", "X")
    received = await collect(events)
    ids = {"taskId": "S", "contextId": "X"}
    assert (
        received[0]
        == b'event: status\ndata: {"status": "accepted", "taskId": "S", "contextId": "X"}\n\n'
    )
    assert received[1] == (
        b'event: chunk\nid: 0\ndata: hel\ndata: {"k": "v", "taskId": "S", "contextId": "X"}\n\n'
    )
    assert (
        received[2] == b'event: done\nid: 1\ndata: lo\ndata: {"taskId": "S", "contextId": "X"}\n\n'
    )
    assert received[3] == sse("artifact", {**ids, "output": {"final": "hello"}})
    assert received[4] == b'event: done\ndata: {"taskId": "S", "contextId": "X"}\n\n'
    assert len(received) == 5
    chunk = StreamChunk(stream_id="s", seq=0, text="hel", meta={"k": "v", **ids})
    assert received[1] == format_sse_event(chunk).encode()


async def test_stream_emits_only_when_iteration_starts(
    adapter: A2AServerAdapter, behaviour: Behaviour
) -> None:
    emitted: list[Any] = []
    original = adapter.flow.emit

    async def spy(message: Any, to: Any = None) -> None:
        emitted.append(message)
        await original(message, to=to)

    adapter.flow.emit = spy
    events, _, _ = await adapter.stream(req({"op": "hang", "gate": "lazy"}))
    # The scheduling contract is the subject: give a wrongly eager emit a turn.
    await asyncio.sleep(0)
    assert emitted == []
    assert not behaviour.arrived("lazy").is_set()
    iterator = aiter(events)
    async with asyncio.timeout(5):
        first = await anext(iterator)
        assert first.startswith(b"event: status\n")
        await behaviour.arrived("lazy").wait()
        behaviour.gate("lazy").set()
        rest = [event async for event in iterator]
    assert rest[0].startswith(b"event: artifact\n")
    assert rest[-1].startswith(b"event: done\n")


async def test_stream_utf8_and_non_ascii(adapter: A2AServerAdapter) -> None:
    events, _task_id, context_id = await adapter.stream(req({"value": "pingüino"}, taskId="U"))
    received = await collect(events)
    assert received[1] == sse(
        "artifact", {"taskId": "U", "contextId": context_id, "output": {"echo": "pingüino"}}
    )
    assert "pingüino".encode() in received[1]


async def test_stream_flow_error(adapter: A2AServerAdapter) -> None:
    events, _task_id, _context_id = await adapter.stream(
        req({"op": "fail"}, taskId="E", contextId="C")
    )
    received = await collect(events)
    assert len(received) == 3
    name, data = received[1].decode().split("\n", 1)
    assert name == "event: error"
    payload = json.loads(data.removeprefix("data: "))
    assert payload["code"] == "NODE_EXCEPTION"
    assert payload["message"] == "Node 'lane_a' raised ValueError: boom"
    assert (payload["taskId"], payload["contextId"]) == ("E", "C")
    assert list(payload)[-2:] == ["taskId", "contextId"]
    assert received[2] == sse("done", {"taskId": "E", "contextId": "C"})


async def test_stream_cancel(adapter: A2AServerAdapter, behaviour: Behaviour) -> None:
    events, _task_id, _context_id = await adapter.stream(
        req({"op": "hang", "gate": "sc"}, taskId="SC", contextId="CC")
    )
    iterator = aiter(events)
    async with asyncio.timeout(5):
        await anext(iterator)
        await behaviour.arrived("sc").wait()
        result = await adapter.cancel(A2ATaskCancelRequest(taskId="SC"))  # type: ignore[call-arg]
        rest = [event async for event in iterator]
    assert result["cancelled"] is True
    ids = {"taskId": "SC", "contextId": "CC"}
    assert rest == [
        sse("error", {**ids, "code": "TRACE_CANCELLED", "message": "Trace cancelled"}),
        sse("done", ids),
    ]


async def test_stream_shutdown(adapter: A2AServerAdapter, behaviour: Behaviour) -> None:
    events, _, _ = await adapter.stream(
        req({"op": "hang", "gate": "sd"}, taskId="SD", contextId="CD")
    )
    iterator = aiter(events)
    async with asyncio.timeout(5):
        await anext(iterator)
        await behaviour.arrived("sd").wait()
        await adapter.stop()
        rest = [event async for event in iterator]
    ids = {"taskId": "SD", "contextId": "CD"}
    assert rest == [
        sse("error", {**ids, "code": "INTERNAL_ERROR", "message": "flow is shutting down"}),
        sse("done", ids),
    ]


async def test_closing_an_unstarted_stream_releases_the_task(adapter: A2AServerAdapter) -> None:
    events, _, _ = await adapter.stream(req({"value": 1}, taskId="R"))
    await events.aclose()  # type: ignore[attr-defined]
    assert (await send(adapter, req({"value": 1}, taskId="R")))["status"] == "succeeded"


async def test_finished_stream_releases_the_task(adapter: A2AServerAdapter) -> None:
    events, _, _ = await adapter.stream(req({"value": 1}, taskId="R2"))
    await collect(events)
    assert (await send(adapter, req({"value": 1}, taskId="R2")))["status"] == "succeeded"
    unknown = await adapter.cancel(A2ATaskCancelRequest(task_id="R2"))
    assert unknown == {"taskId": "R2", "cancelled": False}


class TriageOut(BaseModel):
    text: str
    topic: str


class PackOut(BaseModel):
    prompt: str


async def test_multi_hop_bare_model_chain_is_served() -> None:
    """The README quickstart shape: every node returns a bare model, two hops deep."""

    async def triage(message: Message, ctx: Any) -> TriageOut:
        return TriageOut(text=message.payload["text"], topic="metrics")

    async def pack(item: TriageOut, ctx: Any) -> PackOut:
        return PackOut(prompt=f"[{item.topic}] {item.text}")

    policy = NodePolicy(validate="none")
    triage_node = Node(triage, name="triage", policy=policy)
    pack_node = Node(pack, name="pack", policy=policy)
    flow = create(triage_node.to(pack_node), pack_node.to())
    adapter = A2AServerAdapter(flow, agent_card=card(), agent_url=AGENT_URL)
    await adapter.start()
    try:
        reply = await send(adapter, req({"text": "show metrics"}))
        events, _, context_id = await adapter.stream(req({"text": "again"}, taskId="S"))
        streamed = await collect(events)
    finally:
        await adapter.stop()
    assert reply["status"] == "succeeded"
    assert reply["output"] == {"prompt": "[metrics] show metrics"}
    assert streamed[1] == sse(
        "artifact",
        {"taskId": "S", "contextId": context_id, "output": {"prompt": "[metrics] again"}},
    )


async def test_message_result_with_empty_meta_has_no_meta_key(behaviour: Behaviour) -> None:
    async def plain_message(message: Message, ctx: Any) -> Message:
        return Message(payload={"ok": 1}, headers=message.headers, trace_id=message.trace_id)

    flow = create(Node(plain_message, name="m", policy=NodePolicy(validate="none")).to())
    adapter = A2AServerAdapter(flow, agent_card=card(), agent_url=AGENT_URL)
    await adapter.start()
    try:
        reply = await send(adapter, req({"x": 1}))
    finally:
        await adapter.stop()
    assert reply["output"] == {"ok": 1}
    assert "meta" not in reply


async def test_flow_error_without_trace_gets_the_request_trace_id() -> None:
    """A FlowError a node hands over without a trace id is reported with the request's."""

    async def reports(message: Message, ctx: Any) -> FlowError:
        return FlowError(trace_id=None, node_name="reports", code="CUSTOM", message="bad input")

    flow = create(Node(reports, name="reports", policy=NodePolicy(validate="none")).to())
    adapter = A2AServerAdapter(flow, agent_card=card(), agent_url=AGENT_URL)
    await adapter.start()
    try:
        reply = await send(adapter, req({"x": 1}, traceId="TT"))
    finally:
        await adapter.stop()
    assert reply == {
        "status": "failed",
        "taskId": "TT",
        "contextId": "TT",
        "traceId": "TT",
        "error": {
            "code": "CUSTOM",
            "message": "bad input",
            "node_name": "reports",
            "trace_id": "TT",
        },
    }
