"""``penguiflow.hosting``: the low-level seam deployments, journals and observers use."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from core_support import Recorder, fetch, idle, message

from penguiflow import hosting
from penguiflow.actors import Mailbox, MailboxLike
from penguiflow.core import PenguiFlow, create
from penguiflow.node import Node, NodePolicy
from penguiflow.testkit import InMemoryMessageBus, trace_counts
from penguiflow.types import WM, Message

NONE = NodePolicy(validate="none")


async def echo(msg: Any, ctx: Any) -> Any:
    return msg


def edge_index(flow: PenguiFlow, source: str, target: str) -> int:
    names = [f"{e.source.name}->{e.target.name}" for e in flow.edges]
    return names.index(f"{source}->{target}")


# -- reading --------------------------------------------------------------------------
def test_node_named_finds_the_one_node_of_that_name() -> None:
    a = Node(echo, name="a")
    flow = create(a.to())
    assert hosting.node_named(flow, "a") is a


@pytest.mark.parametrize(
    ("names", "error"),
    [pytest.param(["a"], "no node", id="missing"), pytest.param(["b", "b"], "2 nodes", id="twice")],
)
def test_node_named_refuses_a_missing_or_ambiguous_name(names: list[str], error: str) -> None:
    nodes = [Node(echo, name=name) for name in names]
    flow = create(*(n.to() for n in nodes))
    with pytest.raises(ValueError, match=error):
        hosting.node_named(flow, "b")


async def test_capacity_running_and_emits_errors_read_the_flow(make_flow: Any) -> None:
    flow = make_flow(Node(echo, name="a").to(), queue_maxsize=7, emit_errors_to_rookery=True)
    assert (hosting.capacity(flow), hosting.is_running(flow), hosting.emits_errors(flow)) == (
        7,
        False,
        True,
    )
    flow.run()
    assert hosting.is_running(flow) is True
    await flow.stop()
    assert hosting.is_running(flow) is False


async def test_outstanding_counts_items_per_trace_until_fetched(make_flow: Any) -> None:
    flow = make_flow(Node(echo, name="a").to())
    msg = message()
    flow.emit_nowait(msg)
    assert hosting.outstanding(flow) == {msg.trace_id: 1}
    assert trace_counts(flow) == {msg.trace_id: 1}
    flow.run()
    assert await fetch(flow) is msg
    assert hosting.outstanding(flow) == {}


# -- replacing a node's mailbox ---------------------------------------------------------
async def test_a_replaced_mailbox_carries_the_node_inputs(make_flow: Any) -> None:
    a, b = Node(echo, name="a", policy=NONE), Node(echo, name="b", policy=NONE)
    flow = make_flow(a.to(b), b.to())
    replacement = Mailbox(4, lanes=1)
    assert isinstance(replacement, MailboxLike)
    lanes = hosting.replace_mailbox(flow, b, replacement)
    assert lanes == {0: edge_index(flow, "a", "b")}
    flow.run()
    msg = message()
    await flow.emit(msg)
    assert await fetch(flow) is msg
    assert flow.mailboxes()["b"].capacity == 4


async def test_replacing_a_mailbox_is_refused_while_running(make_flow: Any) -> None:
    a = Node(echo, name="a")
    flow = make_flow(a.to())
    flow.run()
    with pytest.raises(RuntimeError, match=r"before flow\.run"):
        hosting.replace_mailbox(flow, a, Mailbox(4))


async def test_replacing_a_mailbox_that_holds_items_is_refused_and_keeps_them(
    make_flow: Any,
) -> None:
    a = Node(echo, name="a", policy=NONE)
    flow = make_flow(a.to())
    msg = message()
    flow.emit_nowait(msg)  # queued before any run
    with pytest.raises(RuntimeError, match="1 queued item"):
        hosting.replace_mailbox(flow, a, Mailbox(4))
    assert flow.mailboxes()["a"].items == (msg,)
    flow.run()
    assert await fetch(flow) is msg  # still delivered by the node's own mailbox


async def test_an_item_on_the_self_lane_also_refuses_the_replacement(make_flow: Any) -> None:
    async def controller(msg: Message, ctx: Any) -> Any:
        return msg

    ctl = Node(controller, name="ctl", allow_cycle=True, policy=NONE)
    flow = make_flow(ctl.to(ctl))
    loop_msg = message(WM(query="q"))
    flow.context(ctl).emit_nowait(loop_msg, to=ctl)  # the controller's own self lane
    with pytest.raises(RuntimeError, match="strand"):
        hosting.replace_mailbox(flow, ctl, Mailbox(4))
    assert flow.mailboxes()["ctl"].items == (loop_msg,)


async def test_an_attached_edge_feeds_its_sink(make_flow: Any) -> None:
    flow = make_flow(Node(echo, name="a", policy=NONE).to())
    sink = Mailbox(0)
    hosting.attach_edge(flow, edge_index(flow, "a", "Rookery"), sink, 0)
    with pytest.raises(IndexError):
        hosting.attach_edge(flow, 99, sink, 0)
    flow.run()
    msg = message()
    await flow.emit(msg)
    async with asyncio.timeout(5):
        assert (await sink.get()).item is msg
    with pytest.raises(RuntimeError, match=r"before flow\.run"):
        hosting.attach_edge(flow, 0, sink, 0)


# -- moving items -----------------------------------------------------------------------
async def test_inject_puts_an_item_on_an_edge_as_its_source_would(make_flow: Any) -> None:
    a, b = Node(echo, name="a", policy=NONE), Node(echo, name="b", policy=NONE)
    flow = make_flow(a.to(b), b.to())
    flow.run()
    msg = message()
    await hosting.inject(flow, edge_index(flow, "a", "b"), msg)
    assert await fetch(flow) is msg
    await idle(flow)
    assert hosting.outstanding(flow) == {}


async def test_finish_ends_an_item_taken_out_of_the_flow(make_flow: Any) -> None:
    ended: list[str] = []
    flow = make_flow(Node(echo, name="a").to())
    flow.add_trace_listener(ended.append)
    msg = message()
    flow.emit_nowait(msg)
    (taken,) = flow.mailboxes()["a"].items
    # A deployment would now take the item and handle it elsewhere; here only
    # the accounting: the trace ends once its one item is finished.
    await hosting.finish(flow, taken)
    assert hosting.outstanding(flow) == {}
    assert ended == [msg.trace_id]


async def test_deliver_to_rookery_without_rookery_edges_parks_in_the_buffer() -> None:
    flow = create()  # no nodes at all: no Rookery edge
    msg = message()
    await hosting.deliver_to_rookery(flow, msg)
    assert hosting.outstanding(flow) == {msg.trace_id: 1}
    assert hosting.take_rookery_buffer(flow) == [msg]
    await asyncio.sleep(0)  # finish_nowait's event, if any, runs in a task the flow owns
    assert hosting.outstanding(flow) == {}
    assert hosting.take_rookery_buffer(flow) == []


# -- the bus --------------------------------------------------------------------------
async def test_disable_bus_on_one_edge_keeps_publishing_the_others(make_flow: Any) -> None:
    bus = InMemoryMessageBus()
    a, b = Node(echo, name="a", policy=NONE), Node(echo, name="b", policy=NONE)
    flow = make_flow(a.to(b), b.to(), message_bus=bus)
    hosting.disable_bus(flow, [edge_index(flow, "a", "b")])
    flow.run()
    await flow.emit(message())
    await fetch(flow)
    assert [e.edge for e in bus.published] == ["OpenSea->a", "b->Rookery"]


async def test_disable_bus_everywhere_publishes_nothing(make_flow: Any) -> None:
    bus = InMemoryMessageBus()
    flow = make_flow(Node(echo, name="a", policy=NONE).to(), message_bus=bus)
    hosting.disable_bus(flow)
    flow.run()
    await flow.emit(message())
    await fetch(flow)
    assert bus.published == []


# -- observing emits --------------------------------------------------------------------
class Observer:
    """Records emit_started/emit_finished calls; the handle is the start's index."""

    def __init__(self, name: str, log: list[tuple[str, ...]]) -> None:
        self.name = name
        self.log = log

    def emit_started(self, msg: Any) -> Any:
        self.log.append((self.name, "started", msg.payload))
        return len(self.log)

    def emit_finished(self, msg: Any, handle: Any, error: BaseException | None) -> None:
        self.log.append((self.name, "finished", msg.payload, str(handle), type(error).__name__))


async def test_observers_wrap_every_emit_in_reverse_order(make_flow: Any) -> None:
    log: list[tuple[str, ...]] = []
    first, second = Observer("first", log), Observer("second", log)
    flow = make_flow(Node(echo, name="a", policy=NONE).to())
    hosting.observe_emits(flow, first)
    hosting.observe_emits(flow, second)
    flow.run()
    await flow.emit(message("p"))
    flow.emit_nowait(message("q"))
    assert log == [
        ("first", "started", "p"),
        ("second", "started", "p"),
        ("second", "finished", "p", "2", "NoneType"),
        ("first", "finished", "p", "1", "NoneType"),
        ("first", "started", "q"),
        ("second", "started", "q"),
        ("second", "finished", "q", "6", "NoneType"),
        ("first", "finished", "q", "5", "NoneType"),
    ]


async def test_an_observer_hears_the_error_of_a_failed_emit(make_flow: Any) -> None:
    log: list[tuple[str, ...]] = []
    flow = make_flow(Node(echo, name="a").to())
    hosting.observe_emits(flow, Observer("o", log))
    flow.run()
    with pytest.raises(KeyError):
        await flow.emit(message("p"), to="nowhere")
    with pytest.raises(KeyError):
        flow.emit_nowait(message("q"), to="nowhere")
    assert [entry[-1] for entry in log if entry[1] == "finished"] == ["KeyError", "KeyError"]


async def test_an_observer_hears_an_emit_that_returns_early(recorder: Recorder) -> None:
    log: list[tuple[str, ...]] = []
    flow = create()  # OpenSea has no edge: emit returns at once
    hosting.observe_emits(flow, Observer("o", log))
    await flow.emit(message("p"))
    assert log == [("o", "started", "p"), ("o", "finished", "p", "1", "NoneType")]


async def test_unobserve_stops_the_calls_and_ignores_strangers(make_flow: Any) -> None:
    log: list[tuple[str, ...]] = []
    observer = Observer("o", log)
    flow = make_flow(Node(echo, name="a", policy=NONE).to())
    hosting.observe_emits(flow, observer)
    hosting.unobserve_emits(flow, observer)
    hosting.unobserve_emits(flow, Observer("stranger", log))
    flow.run()
    await flow.emit(message())
    assert log == []


# -- the surface ------------------------------------------------------------------------
HOSTING_NAMES = [
    "OPEN_SEA",
    "ROOKERY",
    "AttemptObserver",
    "EmitObserver",
    "EventListener",
    "attach_edge",
    "capacity",
    "deliver_to_rookery",
    "disable_bus",
    "emits_errors",
    "finish",
    "finish_nowait",
    "inject",
    "is_running",
    "node_named",
    "observe_attempts",
    "observe_emits",
    "observe_events",
    "outstanding",
    "parked_interrupts",
    "record_state",
    "refuse_interrupts",
    "replace_mailbox",
    "share_rate_limiter",
    "take_rookery_buffer",
    "unobserve_attempts",
    "unobserve_emits",
    "unobserve_events",
]


def test_the_hosting_surface_is_pinned() -> None:
    assert hosting.__all__ == HOSTING_NAMES
    for name in HOSTING_NAMES:
        assert getattr(hosting, name) is not None, name


def test_an_observer_is_an_emit_observer() -> None:
    assert isinstance(Observer("o", []), hosting.EmitObserver)


async def test_a_shared_rate_limiter_feeds_keyed_buckets() -> None:
    """share_rate_limiter: keyed limits draw from the given limiter, unkeyed stay local."""
    from penguiflow import RateLimit
    from penguiflow.ratelimit import InMemoryRateLimiter
    from penguiflow.testkit import FakeClock

    async def echo(msg: Any, ctx: Any) -> Any:
        return msg

    clock = FakeClock()
    keyed = Node(echo, name="keyed", policy=NodePolicy(rate_limit=RateLimit(key="api")))
    own = Node(echo, name="own", policy=NodePolicy(rate_limit=RateLimit()))
    flow = create(keyed.to(own), own.to(), clock=clock)
    shared = InMemoryRateLimiter(clock=clock)
    hosting.share_rate_limiter(flow, shared)
    flow.run()
    try:
        await flow.emit(message(1))
        await fetch(flow)
    finally:
        await flow.stop()
    assert shared.tokens("api", RateLimit(key="api")) == 19
    stats = shared.statistics()
    assert (stats.reservations, stats.buckets) == (1, 1)  # the unkeyed node's is local
