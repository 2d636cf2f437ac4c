"""Flows the Redis tests deploy; workers import them as ``redis_flows:<factory>``.

Each factory builds a fresh flow per call (a worker builds one per slot). Module
state (``CALLS``, ``GATE``) is only used by in-process tests.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from penguiflow import FinalAnswer, Message, Node, NodePolicy, create

NONE = NodePolicy(validate="none")
CALLS: list[tuple[str, Any]] = []
GATE: dict[str, asyncio.Event] = {}
ENTERED: dict[str, asyncio.Event] = {}
FAILS: dict[str, int] = {}


class Order(BaseModel):
    """A user model: must arrive as an ``Order``, not a dict."""

    sku: str
    qty: int
    notes: list[str] = []


class Loose(BaseModel):
    """A model that keeps unknown fields."""

    model_config = ConfigDict(extra="allow")
    name: str


@dataclass
class Tagged:
    tag: str
    value: int


def _msg(parent: Message, payload: Any) -> Message:
    return parent.model_copy(update={"payload": payload})


async def prep(msg: Message, ctx: Any) -> Message:
    return msg


async def enrich(msg: Message, ctx: Any) -> None:
    # Two outputs per input, in order: the egress must see seq 0 before seq 1.
    for seq in (0, 1):
        await ctx.emit(_msg(msg, {**msg.payload, "seq": seq, "enriched_by": os.getpid()}))


async def score(msg: Message, ctx: Any) -> Message:
    return _msg(msg, {**msg.payload, "scored": True})


def build_chain() -> Any:
    """prep -> enrich -> score -> Rookery; enrich and score are distributed."""
    p = Node(prep, name="prep", policy=NONE)
    e = Node(enrich, name="enrich", policy=NONE)
    s = Node(score, name="score", policy=NONE)
    return create(p.to(e), e.to(s), s.to(), queue_maxsize=32)


async def echo(item: Any, ctx: Any) -> Any:
    CALLS.append(("echo", item))
    if isinstance(item, Message) and isinstance(item.payload, Order):
        return _msg(item, item.payload.model_copy(update={"qty": item.payload.qty * 2}))
    return item


def build_echo() -> Any:
    """echo -> Rookery (echo distributed in tests)."""
    return create(Node(echo, name="echo", policy=NONE).to(), queue_maxsize=4)


async def first(msg: Any, ctx: Any) -> Any:
    return msg


async def remote(msg: Any, ctx: Any) -> Any:
    CALLS.append(("remote", msg))
    return msg


async def last(msg: Any, ctx: Any) -> Any:
    CALLS.append(("last", msg))
    return msg


def build_middle() -> Any:
    """first -> remote -> last: a distributed node between two local ones."""
    a = Node(first, name="first", policy=NONE)
    b = Node(remote, name="remote", policy=NONE)
    c = Node(last, name="last", policy=NONE)
    return create(a.to(b), b.to(c), c.to(), queue_maxsize=8)


async def flaky(msg: Message, ctx: Any) -> Message:
    left = FAILS.get(msg.trace_id, 0)
    CALLS.append(("flaky", msg.trace_id))
    if left > 0:
        FAILS[msg.trace_id] = left - 1
        raise ValueError(f"boom {left}")
    return _msg(msg, "ok")


def build_flaky() -> Any:
    """flaky with 2 retries and no backoff; final failures reach Rookery."""
    policy = NodePolicy(validate="none", max_retries=2, backoff_base=0.0)
    return create(Node(flaky, name="flaky", policy=policy).to(), emit_errors_to_rookery=True)


async def gated(msg: Message, ctx: Any) -> Message:
    CALLS.append(("gated", msg.trace_id))
    ENTERED.setdefault(msg.trace_id, asyncio.Event()).set()
    gate = GATE.setdefault(msg.trace_id, asyncio.Event())
    try:
        await gate.wait()
    except asyncio.CancelledError:
        CALLS.append(("gated-cancelled", msg.trace_id))
        raise
    return _msg(msg, "released")


def build_gated() -> Any:
    """gated -> Rookery: the node waits until the test opens the trace's gate."""
    return create(Node(gated, name="gated", policy=NONE).to(), queue_maxsize=2)


async def finisher(msg: Message, ctx: Any) -> Message:
    return _msg(msg, FinalAnswer(text="done"))


async def after(msg: Message, ctx: Any) -> Message:
    return msg


def build_finisher() -> Any:
    """finisher -> after; finisher's FinalAnswer bypasses after (runtime Rookery delivery)."""
    f = Node(finisher, name="finisher", policy=NONE)
    a = Node(after, name="after", policy=NONE)
    return create(f.to(a), a.to())


async def loop_node(msg: Message, ctx: Any) -> Message:
    wm = msg.payload
    if wm.hops >= 2:
        return _msg(msg, FinalAnswer(text=f"hops={wm.hops}"))
    return msg


def build_loop() -> Any:
    """A controller loop (self-edge): the whole loop runs in the worker."""
    node = Node(loop_node, name="loop", policy=NONE, allow_cycle=True)
    return create(node.to(node))


async def opaque(msg: Message, ctx: Any) -> Message:
    return _msg(msg, object())


def build_opaque() -> Any:
    """A node whose output cannot cross a process boundary."""
    return create(Node(opaque, name="opaque", policy=NONE).to(), emit_errors_to_rookery=True)


def build_with_registry() -> Any:
    """A factory returning (flow, registry)."""
    return build_echo(), None


NOT_CALLABLE = 42


async def unwrap(msg: Message, ctx: Any) -> Any:
    return {"req": msg.payload, "hops": ["unwrap"]}


async def bare_remote(item: Any, ctx: Any) -> Any:
    return {"req": item["req"], "hops": [*item["hops"], "bare_remote"]}


async def bare_last(item: Any, ctx: Any) -> Any:
    return {"req": item["req"], "hops": [*item["hops"], "bare_last"]}


def build_bare_middle() -> Any:
    """unwrap -> bare_remote -> bare_last: bare payloads through a distributed node."""
    a = Node(unwrap, name="unwrap", policy=NONE)
    b = Node(bare_remote, name="bare_remote", policy=NONE)
    c = Node(bare_last, name="bare_last", policy=NONE)
    return create(a.to(b), b.to(c), c.to(), queue_maxsize=8)


def build_bare_tail() -> Any:
    """unwrap -> bare_remote -> Rookery: a distributed egress node given bare payloads."""
    a = Node(unwrap, name="unwrap", policy=NONE)
    b = Node(bare_remote, name="bare_remote", policy=NONE)
    return create(a.to(b), b.to(), queue_maxsize=8)


async def relay(msg: Message, ctx: Any) -> None:
    for seq in range(3):
        await ctx.emit(_msg(msg, {"seq": seq}))


async def sink(msg: Message, ctx: Any) -> Message:
    ENTERED.setdefault("sink", asyncio.Event()).set()
    await GATE.setdefault("sink", asyncio.Event()).wait()
    return msg


def build_relay() -> Any:
    """relay (3 outputs per input, distributed) -> sink (local, waits for GATE["sink"])."""
    r = Node(relay, name="relay", policy=NONE)
    s = Node(sink, name="sink", policy=NONE)
    return create(r.to(s), s.to(), queue_maxsize=1)


async def bare_gated(item: Any, ctx: Any) -> Any:
    key = item["req"]
    CALLS.append(("bare_gated", key))
    ENTERED.setdefault(key, asyncio.Event()).set()
    try:
        await GATE.setdefault(key, asyncio.Event()).wait()
    except asyncio.CancelledError:
        CALLS.append(("bare_gated-cancelled", key))
        raise
    return item


def build_bare_gated() -> Any:
    """unwrap -> bare_gated -> Rookery: a distributed node given bare payloads that waits
    until the test opens ``GATE[req]``."""
    a = Node(unwrap, name="unwrap", policy=NONE)
    b = Node(bare_gated, name="bare_gated", policy=NONE)
    return create(a.to(b), b.to(), queue_maxsize=8)


async def split(msg: Message, ctx: Any) -> None:
    for part in ("a", "b"):
        await ctx.emit({"req": f"{msg.payload}-{part}", "hops": []})


def build_bare_split() -> Any:
    """split (two bare payloads per input) -> bare_gated -> Rookery."""
    a = Node(split, name="split", policy=NONE)
    b = Node(bare_gated, name="bare_gated", policy=NONE)
    return create(a.to(b), b.to(), queue_maxsize=8)


async def hold(msg: Message, ctx: Any) -> None:
    for part in ("a", "b"):
        await ctx.emit({"req": f"{msg.payload}-{part}", "hops": []})
    await GATE.setdefault(f"{msg.payload}-hold", asyncio.Event()).wait()


def build_bare_hold() -> Any:
    """hold (sends two bare payloads, then waits for ``GATE[payload-hold]``) -> bare_gated."""
    a = Node(hold, name="hold", policy=NONE)
    b = Node(bare_gated, name="bare_gated", policy=NONE)
    return create(a.to(b), b.to(), queue_maxsize=8)


async def asking(msg: Message, ctx: Any) -> Message:
    return _msg(msg, await ctx.interrupt("may I?"))


def build_asking() -> Any:
    """asking calls ctx.interrupt, which a worker refuses; failures reach Rookery."""
    policy = NodePolicy(validate="none")
    return create(Node(asking, name="asking", policy=policy).to(), emit_errors_to_rookery=True)
