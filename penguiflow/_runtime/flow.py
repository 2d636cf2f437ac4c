"""``PenguiFlow``: a graph of nodes, each run by a supervised actor.

Construction builds and checks the graph, creates one multi-lane mailbox per node
(one lane per incoming edge) plus the Rookery mailbox, and one ``Context`` per
node and endpoint. The flow owns the mailboxes, so ``stop()`` then ``run()``
keeps queued items. ``run()`` starts a fresh ``Supervisor`` whose children are
the node actors; ``stop()`` stops it. This module delegates, never executes:
per-item work is in ``node_actor``, edge traffic in ``transport``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.context import Context, Target
from penguiflow._runtime.events import EventPipeline
from penguiflow._runtime.flow_hooks import FlowHooks
from penguiflow._runtime.flow_io import FlowIO, RookeryDelivery
from penguiflow._runtime.graph import OPEN_SEA, ROOKERY, Endpoint, Floe, build_graph
from penguiflow._runtime.node_actor import STOPPING
from penguiflow._runtime.rate_gate import RateLimits
from penguiflow._runtime.supervision import (
    start_node_actors,
    stop_node_actors,
    watch_supervisor,
)
from penguiflow._runtime.tracing import Carried, TraceBook
from penguiflow._runtime.transport import Transport
from penguiflow._time import SYSTEM_CLOCK, Clock
from penguiflow.actors import SELF_LANE, Mailbox
from penguiflow.metrics import FlowEvent
from penguiflow.node import Node
from penguiflow.types import Message

if TYPE_CHECKING:
    from penguiflow.actors import ActorRef
    from penguiflow.ratelimit import RateLimiter
    from penguiflow.supervision import Supervisor

__all__ = ["DEFAULT_QUEUE_MAXSIZE", "MailboxSnapshot", "PenguiFlow", "RookeryDelivery", "create"]

DEFAULT_QUEUE_MAXSIZE = 64

Middleware = Callable[[FlowEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class MailboxSnapshot:
    """A copy of one mailbox's state: queued items in order, depth, capacity, busy.

    .. versionadded:: 3.0
    """

    node: str
    depth: int
    capacity: int
    items: tuple[Any, ...]
    busy: bool


class PenguiFlow(FlowIO, FlowHooks):
    """A flow of nodes wired by edges, fed at OpenSea and drained at Rookery.

    Args:
        *adjacencies: ``node.to(...)`` tuples.
        queue_maxsize: capacity of every edge; ``<= 0`` means unbounded.
        allow_cycles: skip the cycle check.
        middlewares: async callables receiving every ``FlowEvent``.
        emit_errors_to_rookery: deliver final ``FlowError`` objects to Rookery.
        state_store: a ``StateStore`` (every event is saved).
        message_bus: a ``MessageBus`` (every edge put is published).
        clock: where deadlines, timeouts, backoff and latency read time
            (``penguiflow.testkit.FakeClock`` in tests). *versionadded 3.0*
        rate_limiter: where keyed ``NodePolicy.rate_limit`` buckets live (a
            ``penguiflow.ratelimit.RateLimiter``); default, an in-memory one of
            this flow's, on ``clock``. *versionadded 3.0*

    Raises:
        CycleError: the graph has a cycle and ``allow_cycles`` is false.
    """

    def __init__(
        self,
        *adjacencies: tuple[Node, Sequence[Node]],
        queue_maxsize: int = DEFAULT_QUEUE_MAXSIZE,
        allow_cycles: bool = False,
        middlewares: Iterable[Middleware] | None = None,
        emit_errors_to_rookery: bool = False,
        state_store: Any = None,
        message_bus: Any = None,
        clock: Clock | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        graph = build_graph(adjacencies, maxsize=queue_maxsize, allow_cycles=allow_cycles)
        self._graph = graph
        self._queue_maxsize = queue_maxsize
        self._allow_cycles = allow_cycles
        self._middlewares: list[Middleware] = list(middlewares or [])
        self._emit_errors_to_rookery = emit_errors_to_rookery
        self._state_store = state_store
        self._message_bus = message_bus
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self._traces = TraceBook()
        self._events = EventPipeline(
            clock=self._clock,
            traces=self._traces,
            middlewares=self._middlewares,
            state_store=state_store,
            maxsize=queue_maxsize,
        )
        self._registry: Any = None
        self._warn_nodes: frozenset[Node] = frozenset()
        self._running = False
        self._supervisor: Supervisor | None = None
        self._watcher: asyncio.Task[None] | None = None  # hears the supervisor exit
        self._all_started: asyncio.Handle | None = None  # see run()
        self._failure: BaseException | None = None
        # Set once the failed run's items have all been ended (context.Context._take).
        self._fetch_failure: BaseException | None = None
        self._parent: Supervisor | None = None
        self._refs: dict[Node, ActorRef] = {}
        self._started: set[Node] = set()  # nodes whose actor ran during this run
        self._crashes: dict[int, int] = {}  # id(item) -> crashes it caused (node_actor)
        self._stopping = False
        self._external: set[asyncio.Future[Any]] = set()
        self._busy = 0
        self._idle: asyncio.Event | None = None
        self._contexts: dict[Node | Any, Context] = {}
        self._mailboxes: dict[Node, Mailbox] = {}
        self._wire(graph.nodes, graph.floes)
        self._rate_limits = RateLimits(self, rate_limiter)

    def _wire(self, nodes: tuple[Node, ...], floes: tuple[Floe, ...]) -> None:
        maxsize = self._queue_maxsize
        owners: list[Any] = [OPEN_SEA, *nodes, ROOKERY]
        incoming: dict[Any, dict[Target, Floe]] = {owner: {} for owner in owners}
        outgoing: dict[Any, dict[Target, Floe]] = {owner: {} for owner in owners}
        for floe in floes:
            incoming[floe.target][floe.source] = floe
            outgoing[floe.source][floe.target] = floe
        receivers: list[Node | Endpoint] = [*nodes, ROOKERY]
        for owner in receivers:
            data = [f for src, f in incoming[owner].items() if src is not owner]
            mailbox = Mailbox(maxsize, lanes=max(1, len(data)))
            for lane, floe in enumerate(data):
                floe.attach(mailbox, lane)
            own = incoming[owner].get(owner)
            if own is not None:
                own.attach(mailbox, SELF_LANE)  # controller loop: the unbounded self lane
            if isinstance(owner, Node):
                self._mailboxes[owner] = mailbox
            else:
                self._rookery = mailbox
        for owner in owners:
            self._contexts[owner] = Context(owner, self)
        # For emit/fetch: a dict lookup by Endpoint hashes a dataclass (~0.6 µs).
        self._open_sea_ctx = self._contexts[OPEN_SEA]
        self._rookery_ctx = self._contexts[ROOKERY]
        self._io = Transport(
            traces=self._traces,
            events=self._events,
            bus=self._message_bus,
            rookery=self._rookery,
            rookery_ctx=self._contexts[ROOKERY],
        )
        for owner in owners:
            mailbox_of = self._rookery if owner is ROOKERY else self._mailboxes.get(owner)
            self._contexts[owner]._wire(incoming[owner], outgoing[owner], mailbox_of, self._io)

    # -- inspection -----------------------------------------------------------------
    @property
    def registry(self) -> Any:
        """The registry given to the last ``run()``, else ``None``."""
        return self._registry

    @property
    def clock(self) -> Clock:
        """The clock given as ``clock=`` (else the system clock). *versionadded 3.0*"""
        return self._clock

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The nodes in declaration order. *versionadded 3.0*"""
        return self._graph.nodes

    @property
    def edges(self) -> tuple[Floe, ...]:
        """Every edge, OpenSea and Rookery edges included. *versionadded 3.0*"""
        return self._graph.floes

    @property
    def _floes(self) -> tuple[Floe, ...]:
        return self._graph.floes

    @property
    def supervisor(self) -> Supervisor | None:
        """The supervisor of this run's node actors (``None`` when not running)."""
        return self._supervisor

    @property
    def failure(self) -> BaseException | None:
        """Why this run failed, else ``None``: the ``Escalated`` of its supervisor.

        Set when node actors crashed more often than the restart intensity allows.
        The node actors are then gone; every queued traced item was ended with a
        ``FlowError`` (``metadata["reason"] == "escalated"``); ``emit`` raises this
        error, and so does ``fetch`` once Rookery holds nothing more. Cleared by
        the next ``run()``.

        .. versionadded:: 3.0
        """
        return self._failure

    @property
    def _tasks(self) -> list[asyncio.Task[Any]]:
        # 2.2.5 programs read this to reach every worker: start the dormant ones.
        for ref in self._refs.values():
            ref.wake()
        return [ref.task for ref in self._refs.values() if ref.task is not None]

    @property
    def _trace_events(self) -> dict[str, asyncio.Event]:
        return self._traces.events

    def mailboxes(self) -> dict[str, MailboxSnapshot]:
        """A copy of every node's mailbox (and ``"Rookery"``); does not disturb the flow.

        .. versionadded:: 3.0
        """
        result: dict[str, MailboxSnapshot] = {}
        for node, mailbox in self._mailboxes.items():
            ref = self._refs.get(node)
            items = _shown(mailbox.snapshot(SELF_LANE) + mailbox.snapshot())
            busy = bool(ref is not None and ref.busy)
            name = str(node.name)
            result[name] = MailboxSnapshot(name, len(items), mailbox.capacity, items, busy)
        items = _shown(self._rookery.snapshot(SELF_LANE) + self._rookery.snapshot())
        result["Rookery"] = MailboxSnapshot(
            "Rookery", len(items), self._rookery.capacity, items, False
        )
        return result

    async def wait_idle(self) -> None:
        """Return once every node mailbox is empty and no node is handling an item.

        Rookery is not waited for. Wrap the call in ``asyncio.timeout``.

        .. versionadded:: 3.0
        """
        while True:
            busy_box = next((m for m in self._mailboxes.values() if len(m)), None)
            if busy_box is not None:
                await busy_box.wait_empty()
                continue
            if not self._busy:
                return
            if self._idle is None:
                self._idle = asyncio.Event()
            await self._idle.wait()

    def _busy_changed(self, delta: int) -> None:
        # Node actors increment ``_busy`` inline (hot path) and decrement through here.
        self._busy += delta
        if not self._busy and self._idle is not None:
            self._idle.set()
            self._idle = None

    # -- lifecycle --------------------------------------------------------------------
    def embed(self, parent: Supervisor) -> PenguiFlow:
        """Make ``parent`` own this flow's supervisor from the next ``run()`` on.

        .. versionadded:: 3.0
        """
        self._parent = parent
        return self

    def run(self, *, registry: Any = None, supervisor: Supervisor | None = None) -> None:
        """Start one supervised actor per node and return at once.

        Args:
            registry: a ``ModelRegistry`` (or anything with ``adapters(name)``).
            supervisor: a parent supervisor to own the flow's subtree
                (*versionadded 3.0*).

        Raises:
            RuntimeError: already running, no running event loop, or the registry
                misses a node whose policy validates.
        """
        if self._running:
            raise RuntimeError("PenguiFlow already running")
        asyncio.get_running_loop()
        if registry is not None:
            self._check_registry(registry)
        self._registry = registry
        self._warn_nodes = _message_output_nodes(self._graph.nodes, registry)
        parent = supervisor if supervisor is not None else self._parent
        self._started.clear()
        self._failure = self._fetch_failure = None
        self._supervisor, self._refs = start_node_actors(self, parent)
        # Node actors start on their first message; stop() still reports
        # node_cancelled for every node once the loop has turned (when 2.2.5's
        # worker tasks would all have started).
        self._all_started = asyncio.get_running_loop().call_soon(
            self._started.update, self._graph.nodes
        )
        self._watcher = asyncio.get_running_loop().create_task(
            watch_supervisor(self, self._supervisor), name="penguiflow.flow watcher"
        )
        self._running = True

    def _check_registry(self, registry: Any) -> None:
        missing = []
        for node in self._graph.nodes:
            if node.policy.validate == "none":
                continue
            try:
                registry.adapters(node.name)
            except KeyError:
                missing.append(str(node.name))
        if missing:
            raise RuntimeError(
                "ModelRegistry is missing entries for nodes requiring validation: "
                + ", ".join(sorted(missing))
            )

    async def stop(self) -> None:
        """Stop every node actor, external task and background publish; no-op if stopped.

        Queued items stay in their mailboxes; per-trace bookkeeping is cleared.
        """
        if not self._running:
            return
        supervisor = self._supervisor
        self._stopping = True
        try:
            if self._all_started is not None:
                self._all_started.cancel()  # the loop has not turned: nothing started
                self._all_started = None
            for ref in self._refs.values():
                ref.interrupt(STOPPING)  # cancel the invocation in hand; its item is dropped
            if supervisor is not None:
                await stop_node_actors(supervisor)
            watcher = self._watcher
            if watcher is not None:
                # Done once the supervisor is; cancelled if still ending items.
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            for node in self._graph.nodes:
                if node in self._started:
                    await self._events.emit("node_cancelled", self._contexts[node], None)
            external = tuple(self._external)
            for future in external:
                future.cancel()
            if external:
                await asyncio.gather(*external, return_exceptions=True)
            await self._io.drain()
        finally:
            self._external.clear()
            self._crashes.clear()
            self._traces.clear()
            self._refs = {}
            self._supervisor = None
            self._watcher = None
            self._busy = 0
            self._busy_changed(0)
            self._stopping = False
            self._running = False


def _shown(items: tuple[Any, ...]) -> tuple[Any, ...]:
    """Queued items as they were sent (how a bare payload carries its trace is private)."""
    return tuple(item.item if type(item) is Carried else item for item in items)


def create(*adjacencies: tuple[Node, Sequence[Node]], **kwargs: Any) -> PenguiFlow:
    """Build a ``PenguiFlow`` (same arguments as its constructor)."""
    return PenguiFlow(*adjacencies, **kwargs)


def _message_output_nodes(nodes: Iterable[Node], registry: Any) -> frozenset[Node]:
    """Nodes registered with a ``Message`` output model (they warn on bare results)."""
    models = getattr(registry, "models", None)
    if models is None:
        return frozenset()
    found = set()
    for node in nodes:
        try:
            _, out_model = models(node.name)
        except Exception:
            continue
        if isinstance(out_model, type) and issubclass(out_model, Message):
            found.add(node)
    return frozenset(found)
