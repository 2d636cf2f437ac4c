"""The public API used as user code uses it, type-checked in strict mode.

Not a test module: pytest does not collect it (no ``test_`` prefix) and importing
it runs nothing (every use sits in a function). CI checks it with::

    .venv/bin/mypy --strict tests/typing/api_usage.py

Each ``assert_type`` pins a type users rely on; a public signature that loses its
annotations (``Any`` leaking out, a missing return type) fails the check.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, assert_type

from pydantic import BaseModel

import penguiflow
from penguiflow import (
    Context,
    DictRoutingPolicy,
    FlowError,
    FlowEvent,
    Headers,
    Message,
    ModelRegistry,
    Node,
    NodePolicy,
    NodeSpec,
    PenguiFlow,
    RateLimit,
    StreamChunk,
    build_catalog,
    call_playbook,
    chunk_to_ws_json,
    create,
    flow_to_dot,
    flow_to_mermaid,
    format_sse_event,
    join_k,
    log_flow_events,
    map_concurrent,
    predicate_router,
    stream_flow,
    testkit,
    tool,
    union_router,
)
from penguiflow.actors import (
    Actor,
    ActorContext,
    ActorHost,
    ActorRef,
    CellOwner,
    DeadLetterSink,
    Mailbox,
    MailboxLike,
)
from penguiflow.distributed._origin import RemoteMailbox
from penguiflow.planner import (
    PlannerFinish,
    PlannerPause,
    ReactPlanner,
    ToolContext,
    Trajectory,
)
from penguiflow.ratelimit import InMemoryRateLimiter, RateLimiter
from penguiflow.supervision import (
    ActorSystem,
    ChildCounts,
    ChildInfo,
    ChildSpec,
    RestartBackoff,
    Supervisor,
)
from penguiflow.testkit import EventRecorder, FakeClock, InMemoryStateStore

__all__: list[str] = []

# -- models, nodes and a flow ------------------------------------------------------


class Question(BaseModel):
    text: str


class Answer(BaseModel):
    text: str
    score: float = 0.0


async def triage(message: Message, ctx: Context) -> Message:
    question = Question.model_validate(message.payload)
    return message.model_copy(update={"payload": Answer(text=question.text)})


async def stream(message: Message, ctx: Context) -> None:
    chunk = await ctx.emit_chunk(parent=message, text="partial", done=False)
    assert_type(chunk, StreamChunk)
    assert_type(chunk.seq, int)
    await ctx.emit_chunk(parent=message, text="", stream_id=chunk.stream_id, done=True)


def build_flow() -> tuple[PenguiFlow, ModelRegistry]:
    policy = NodePolicy(validate="in", timeout_s=2.0, max_retries=2, backoff_base=0.1)
    triage_node = Node(triage, name="triage", policy=policy)
    limit = RateLimit(rate=10.0, per_s=1.0, burst=20, key="provider")
    assert_type(limit.tokens_per_s, float)
    limited = NodePolicy(validate="none", rate_limit=limit)
    stream_node = Node(stream, name="stream", policy=limited)
    limiter: RateLimiter = InMemoryRateLimiter()
    flow = create(
        triage_node.to(stream_node), stream_node.to(), queue_maxsize=16, rate_limiter=limiter
    )
    assert_type(flow, PenguiFlow)
    registry = ModelRegistry()
    registry.register("triage", Message, Message)
    models = registry.models("triage")
    assert_type(models, tuple[type[BaseModel], type[BaseModel]])
    return flow, registry


async def print_event(event: FlowEvent) -> None:
    print(event.event_type, event.node_name, event.latency_ms)


async def drive_flow() -> Answer | None:
    flow, registry = build_flow()
    recorder = EventRecorder()
    flow.add_middleware(recorder)
    flow.add_middleware(print_event)
    flow.add_middleware(log_flow_events())
    flow.run(registry=registry)
    try:
        message = Message(payload={"text": "hi"}, headers=Headers(tenant="acme"))
        assert_type(message.trace_id, str)
        assert_type(message.headers.topic, str | None)
        await flow.emit(message)
        flow.emit_nowait(message.model_copy(update={"trace_id": "t2"}))
        result: object = await flow.fetch()
        events = await recorder.wait_for("node_success", 1, node="triage")
        assert_type(events, list[FlowEvent])
        cancelled = await flow.cancel(message.trace_id)
        assert_type(cancelled, bool)
        if isinstance(result, FlowError):
            assert_type(result.trace_id, str | None)
            return None
        if isinstance(result, Message) and isinstance(result.payload, Answer):
            return result.payload
        return None
    finally:
        await flow.stop()


def make_playbook() -> tuple[PenguiFlow, ModelRegistry]:
    return build_flow()


async def use_playbook(message: Message) -> object:
    result: object = await call_playbook(make_playbook, message, timeout=5.0)
    return result


async def use_streaming() -> list[str]:
    flow, registry = build_flow()
    flow.run(registry=registry)
    frames: list[str] = []
    try:
        message = Message(payload={"text": "hi"}, headers=Headers(tenant="acme"))
        async for item in stream_flow(flow, message, timeout=5.0):
            if isinstance(item, Message) and isinstance(item.payload, StreamChunk):
                frames.append(format_sse_event(item.payload, retry_ms=1000))
                frames.append(chunk_to_ws_json(item.payload, extra={"tenant": "acme"}))
        chunk = await flow.emit_chunk(parent=message, text="direct", done=True)
        assert_type(chunk, StreamChunk)
    finally:
        await flow.stop()
    frames.append(flow_to_mermaid(flow, direction="LR"))
    frames.append(flow_to_dot(flow))
    return frames


async def persisted_flow() -> None:
    store = InMemoryStateStore()
    flow, registry = build_flow()
    durable = PenguiFlow(*[node.to() for node in flow.nodes], state_store=store)
    durable.run(registry=registry)
    await durable.stop()


# -- patterns ----------------------------------------------------------------------


async def double(item: int) -> int:
    return item * 2


async def use_patterns() -> list[int]:
    doubled = await map_concurrent(range(10), double, max_concurrency=4)
    assert_type(doubled, list[int])
    router = predicate_router("router", lambda msg: "left" if msg else None)
    join = join_k("join", 2)
    assert_type(router, Node)
    assert_type(join, Node)
    policy = DictRoutingPolicy({"tenant-a": "left"}, default="right")
    routed = predicate_router("routed", lambda msg: ["left", "right"], policy=policy)
    by_kind = union_router("by_kind", Question | Answer)
    assert_type(routed, Node)
    assert_type(by_kind, Node)
    return doubled


# -- testkit -----------------------------------------------------------------------


async def use_testkit() -> None:
    flow, registry = build_flow()
    message = Message(payload={"text": "hi"}, headers=Headers(tenant="acme"))
    result: object = await testkit.run_one(flow, message, registry=registry, timeout_s=1.0)
    del result
    testkit.assert_node_sequence(message.trace_id, ["triage", "stream"])
    clock = FakeClock()
    clock.advance(1.5)
    assert_type(clock.monotonic(), float)
    await clock.wait_for_timers(0)
    failing = Node(testkit.simulate_error("triage", "NODE_EXCEPTION", fail_times=2), name="triage")
    assert_type(failing, Node)
    kept = await testkit.assert_preserves_message_envelope(
        Node(triage, name="triage"), message=message
    )
    assert_type(kept, Message)


# -- the planner -------------------------------------------------------------------


class Echo(BaseModel):
    text: str


@tool(desc="Repeat the text", side_effects="pure", tags=["demo"])
async def echo(args: Echo, ctx: ToolContext) -> Echo:
    assert_type(ctx.meta, dict[str, Any])
    if not args.text:
        await ctx.pause("await_input", {"why": "empty"})
    return args


class ScriptedClient:
    """A ``JSONLLMClient``: any object with this ``complete`` method."""

    def __init__(self, replies: Sequence[str]) -> None:
        self.replies = list(replies)

    async def complete(
        self,
        *,
        messages: Sequence[Mapping[str, str]],
        response_format: Mapping[str, Any] | None = None,
    ) -> str:
        return self.replies.pop(0)


async def use_planner() -> object:
    registry = ModelRegistry()
    registry.register("echo", Echo, Echo)
    catalog = build_catalog([Node(echo, name="echo")], registry)
    assert_type(catalog, list[NodeSpec])
    planner = ReactPlanner(
        llm_client=ScriptedClient(['{"thought": "done", "args": {"text": "hi"}}'] * 2),
        catalog=catalog,
        max_iters=4,
        hop_budget=2,
        deadline_s=10.0,
    )
    result = await planner.run("say hi", context_meta={"tenant": "acme"})
    assert_type(result, PlannerFinish | PlannerPause)
    if isinstance(result, PlannerPause):
        resumed = await planner.resume(result.resume_token, user_input="hi")
        assert_type(resumed, PlannerFinish | PlannerPause)
        return resumed.model_dump()
    action = await planner.step(Trajectory(query="again"))
    assert_type(action.next_node, str | None)
    from_nodes = ReactPlanner(
        llm_client=ScriptedClient([]), nodes=[Node(echo, name="echo")], registry=registry
    )
    assert_type(from_nodes.catalog, tuple[NodeSpec, ...])
    payload: object = result.payload
    return payload


# -- interrupts ------------------------------------------------------------------------


async def approve(message: Message, ctx: Context) -> Message:
    answer: Any = await ctx.interrupt({"question": "ok?"})
    return message.model_copy(update={"payload": answer})


async def use_interrupts(flow: PenguiFlow) -> None:
    item = await flow.fetch()
    if isinstance(item, penguiflow.Interrupt):
        assert_type(item.token, str)
        assert_type(item.trace_id, str | None)
        assert_type(item.node, str)
        await flow.resume(item.token, True)
    from penguiflow import hosting
    from penguiflow.interrupts import ParkedInterrupt

    for parked in hosting.parked_interrupts(flow):
        assert_type(parked, ParkedInterrupt)
        assert_type(parked.since, float | None)
        await flow.resume(parked.token, "yes")


# -- actors and supervision ----------------------------------------------------------


class Counter(Actor):
    def __init__(self) -> None:
        self.total = 0

    async def receive(self, message: Any, ctx: ActorContext) -> int:
        self.total += int(message)
        if message == 0:
            assert_type(ctx.detach(Counter()), bool)
        return self.total


async def use_actors() -> int:
    async with ActorSystem("demo", clock=FakeClock()) as system:
        counter = system.spawn(Counter, name="counter", capacity=8)
        assert_type(counter, ActorRef)
        await counter.tell(1)
        reply: object = await counter.ask(2, timeout=1.0)
        looked_up = system.lookup("counter")
        assert_type(looked_up, ActorRef | None)

        supervisor = Supervisor("one_for_one", intensity=3, period=5.0, name="workers")
        spec = ChildSpec("worker", Counter, restart="transient", backoff=RestartBackoff(0.1))
        worker = supervisor.start_child_nowait(spec)
        assert_type(worker, ActorRef | Supervisor)
        children = supervisor.which_children()
        assert_type(children, list[ChildInfo])
        assert_type(supervisor.count_children(), ChildCounts)
        await supervisor.terminate_child("worker")
        await supervisor.stop(timeout=1.0)
        return int(str(reply))


def kernel_ports(
    system: ActorSystem, box: Mailbox, remote: RemoteMailbox
) -> tuple[ActorHost, DeadLetterSink, CellOwner, MailboxLike, MailboxLike]:
    """The concrete neighbours satisfy the kernel's ports (structurally)."""
    return system, system, system.root, box, remote


def main() -> None:
    assert penguiflow.__version__
    asyncio.run(drive_flow())


if __name__ == "__main__":
    main()


class _CountingObserver:
    """An emit observer (penguiflow.hosting.EmitObserver) as user code writes one."""

    def __init__(self) -> None:
        self.finished = 0

    def emit_started(self, msg: Any) -> Any:
        return None

    def emit_finished(self, msg: Any, handle: Any, error: BaseException | None) -> None:
        self.finished += 1


async def use_hosting() -> None:
    from penguiflow import hosting
    from penguiflow.actors import Mailbox

    flow, _ = build_flow()
    node = hosting.node_named(flow, "triage")
    assert_type(hosting.replace_mailbox(flow, node, Mailbox(8)), dict[int, int])
    assert_type(hosting.capacity(flow), int)
    assert_type(hosting.is_running(flow), bool)
    assert_type(hosting.outstanding(flow), dict[str, int])
    hosting.observe_emits(flow, _CountingObserver())
    flow.run()
    await hosting.inject(flow, 0, "item")
    await hosting.deliver_to_rookery(flow, "status", source=node)
    await flow.stop()


async def use_durable_flow(store_path: str) -> object:
    """A durable flow: journaled emit with an idempotency key, recover, fetch once."""
    from penguiflow import hosting
    from penguiflow.errors import DurabilityError
    from penguiflow.stores import SQLiteStateStore

    async def triage(msg: Message, ctx: Context) -> Message:
        return msg

    node = Node(triage, name="triage", policy=NodePolicy(validate="none"))
    async with SQLiteStateStore(store_path) as store:
        flow = PenguiFlow(node.to(), state_store=store, durable=True)
        assert_type(flow.durable, bool)
        flow.run()
        try:
            resumed = await flow.recover()
            assert_type(resumed, list[str])
            message = Message(payload={"order": 17}, headers=Headers(tenant="acme"))
            await flow.emit(message, idempotency_key="order-17")
            result: object = await flow.fetch()
            recorded = hosting.record_state("join:triage", [1], delete=False)
            assert_type(recorded, bool)
        except DurabilityError:
            return None
        finally:
            await flow.stop()
    return result
