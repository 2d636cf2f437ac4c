"""``inspect_mailboxes``, ``wait_idle`` and ``format_mailboxes``."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from penguiflow import Headers, Message, Node, NodePolicy
from penguiflow.testkit import format_mailboxes, inspect_mailboxes, wait_idle


@dataclass
class Gate:
    """Holds a node inside its handler until the test opens it."""

    entered: asyncio.Event = field(default_factory=asyncio.Event)
    opened: asyncio.Event = field(default_factory=asyncio.Event)
    seen: list[Any] = field(default_factory=list)

    async def handler(self, message: Any, _ctx: Any) -> Any:
        self.seen.append(message)
        self.entered.set()
        await self.opened.wait()
        return message


def make_message(payload: Any) -> Message:
    return Message(payload=payload, headers=Headers(tenant="t"))


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
async def blocked_flow(flow_factory: Any, gate: Gate) -> tuple[Any, list[Message]]:
    """A running one-node flow whose node holds the first of three messages."""
    node = Node(gate.handler, name="worker", policy=NodePolicy(validate="none"))
    flow = flow_factory(node.to(), queue_maxsize=8)
    flow.run()
    messages = [make_message(i) for i in range(3)]
    async with asyncio.timeout(5):
        for message in messages:
            await flow.emit(message)
        await gate.entered.wait()
    return flow, messages  # flow_factory stops the flow at teardown


async def test_snapshot_shows_depth_capacity_items_and_busy(
    blocked_flow: tuple[Any, list[Message]],
) -> None:
    flow, messages = blocked_flow
    snap = inspect_mailboxes(flow)["worker"]
    assert snap.node == "worker"
    assert snap.depth == 2
    assert snap.capacity == 8
    assert snap.items == (messages[1], messages[2])
    assert snap.busy is True


async def test_snapshot_includes_rookery(blocked_flow: tuple[Any, list[Message]]) -> None:
    flow, _ = blocked_flow
    assert "Rookery" in inspect_mailboxes(flow)


async def test_inspecting_does_not_disturb_the_flow(
    blocked_flow: tuple[Any, list[Message]], gate: Gate
) -> None:
    flow, messages = blocked_flow
    inspect_mailboxes(flow)
    inspect_mailboxes(flow)
    gate.opened.set()
    async with asyncio.timeout(5):
        results = [await flow.fetch() for _ in messages]
    assert results == messages
    assert gate.seen == messages


async def test_snapshot_is_a_copy(blocked_flow: tuple[Any, list[Message]]) -> None:
    flow, _ = blocked_flow
    first = inspect_mailboxes(flow)
    first.pop("worker")
    assert inspect_mailboxes(flow)["worker"].depth == 2


async def test_results_waiting_in_rookery_are_visible(flow_factory: Any) -> None:
    async def echo(message: Any, _ctx: Any) -> Any:
        return message

    flow = flow_factory(Node(echo, name="echo", policy=NodePolicy(validate="none")).to())
    flow.run()
    message = make_message("r")
    async with asyncio.timeout(5):
        await flow.emit(message)
        await wait_idle(flow)
    rookery = inspect_mailboxes(flow)["Rookery"]
    assert rookery.items == (message,)


async def test_wait_idle_returns_once_everything_was_processed(
    blocked_flow: tuple[Any, list[Message]], gate: Gate
) -> None:
    flow, messages = blocked_flow
    gate.opened.set()
    async with asyncio.timeout(5):
        await wait_idle(flow)
    snap = inspect_mailboxes(flow)["worker"]
    assert (snap.depth, snap.busy) == (0, False)
    assert gate.seen == messages


async def test_wait_idle_timeout_names_the_busy_node(
    blocked_flow: tuple[Any, list[Message]],
) -> None:
    flow, _ = blocked_flow
    with pytest.raises(TimeoutError) as info:
        await wait_idle(flow, timeout=0)
    assert str(info.value) == "flow did not become idle within 0s: worker (depth=2, busy)"


async def test_wait_idle_timeout_without_visible_work() -> None:
    class Stuck:
        async def wait_idle(self) -> None:
            await asyncio.Event().wait()

        def mailboxes(self) -> dict[str, Any]:
            return {}

    with pytest.raises(TimeoutError, match=r"no node reported work$"):
        await wait_idle(Stuck(), timeout=0)


async def test_format_lists_each_mailbox(blocked_flow: tuple[Any, list[Message]]) -> None:
    flow, _ = blocked_flow
    snapshots = {"worker": inspect_mailboxes(flow)["worker"]}
    assert format_mailboxes(snapshots) == "worker    2/8          busy  [1, 2]"


def test_format_shows_unbounded_and_idle_mailboxes() -> None:
    @dataclass(frozen=True)
    class Snap:
        node: str
        depth: int
        capacity: int
        items: tuple[Any, ...]
        busy: bool

    text = format_mailboxes(
        {"a": Snap("a", 1, 0, ("raw",), False), "bb": Snap("bb", 0, 4, (), False)}
    )
    assert text.splitlines() == [
        "a     1/unbounded  idle  ['raw']",
        "bb    0/4          idle  []",
    ]


def test_format_of_nothing() -> None:
    assert format_mailboxes({}) == "(no mailboxes)"
