"""``RunState``: the one mutable state of a flow, and the rules that change it.

A ``PenguiFlow`` is a facade: what its collaborators (node actors, the attempt
logic, the run's supervision tree, contexts, the hosting seam) read and change
lives here, in one object, and each rule that changes more than one field is a
method (``begin_item``/``end_item`` keep the busy count and the idle signal in
step; ``fail`` records an escalation; ``reset`` is what ``stop()`` leaves).
Collaborators receive a ``RunState``, never the flow.

Fields are plain attributes: they are read on every hop, and an attribute of a
slotted object is the cheapest read Python has. Only this package writes them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.events import EventPipeline
from penguiflow._runtime.signals import CRASH_LIMIT
from penguiflow._runtime.tracing import TraceBook

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context
    from penguiflow._runtime.observers import AttemptObserver
    from penguiflow._runtime.parking import Parking
    from penguiflow._runtime.rate_gate import RateLimits
    from penguiflow._runtime.transport import Transport
    from penguiflow._time import Clock
    from penguiflow.actors import ActorRef, Mailbox, MailboxLike
    from penguiflow.metrics import FlowEvent
    from penguiflow.node import Node
    from penguiflow.supervision import Supervisor

__all__ = ["RunState"]

Middleware = Callable[["FlowEvent"], Awaitable[None]]


class RunState:
    """Busy/idle, crashes, failure, stopping, traces, events, transport, contexts, mailboxes.

    Built once per flow (``wiring.wire`` fills the edges in); a ``run()`` starts
    with ``begin_run`` and a ``stop()`` ends with ``reset``.
    """

    __slots__ = (
        "all_started",
        "attempt_observers",
        "busy",
        "clock",
        "contexts",
        "crashes",
        "emit_errors_to_rookery",
        "events",
        "external",
        "failure",
        "fetch_failure",
        "idle",
        "io",
        "mailboxes",
        "middlewares",
        "parking",
        "queue_maxsize",
        "rate_limits",
        "refs",
        "registry",
        "rookery",
        "running",
        "started",
        "state_store",
        "stopping",
        "supervisor",
        "traces",
        "unwinding",
        "warn_nodes",
        "watcher",
    )

    def __init__(
        self,
        *,
        clock: Clock,
        queue_maxsize: int,
        middlewares: list[Middleware],
        state_store: Any,
        emit_errors_to_rookery: bool,
    ) -> None:
        self.clock = clock
        self.queue_maxsize = queue_maxsize
        self.middlewares = middlewares  # the flow's mutable list (2.2.5 ``_middlewares``)
        self.state_store = state_store
        self.emit_errors_to_rookery = emit_errors_to_rookery
        self.traces = TraceBook()
        # hosting.observe_attempts: read by the attempt loop once per attempt.
        self.attempt_observers: tuple[AttemptObserver, ...] = ()
        self.events = EventPipeline(
            clock=clock,
            traces=self.traces,
            middlewares=middlewares,
            state_store=state_store,
            maxsize=queue_maxsize,
        )
        # Filled by wiring.wire() right after construction.
        self.io: Transport = None  # type: ignore[assignment]
        self.rookery: Mailbox = None  # type: ignore[assignment]
        self.contexts: dict[Any, Context] = {}
        self.mailboxes: dict[Node, MailboxLike] = {}
        # Filled by the flow right after wiring (NodePolicy.rate_limit buckets).
        self.rate_limits: RateLimits = None  # type: ignore[assignment]
        # Per run.
        self.registry: Any = None
        self.warn_nodes: frozenset[Node] = frozenset()
        self.running = False
        self.stopping = False
        self.supervisor: Supervisor | None = None
        self.watcher: asyncio.Task[None] | None = None  # hears the supervisor exit
        # Node actors start on their first message; stop() still reports
        # node_cancelled for every node once the loop has turned after run()
        # (when 2.2.5's worker tasks would all have started): run_tree.start_run.
        self.all_started: asyncio.Handle | None = None
        self.refs: dict[Node, ActorRef] = {}
        self.started: set[Node] = set()  # nodes whose actor ran during this run
        self.failure: BaseException | None = None
        # Set once the failed run's items have all been ended (Context._take reads it).
        self.fetch_failure: BaseException | None = None
        self.crashes: dict[int, int] = {}  # id(item) -> crashes it caused
        self.external: set[asyncio.Future[Any]] = set()
        self.parking: Parking | None = None  # set by the flow (ctx.interrupt, resume)
        self.busy = 0  # items taken by node actors and not yet finished
        self.idle: asyncio.Event | None = None  # set when busy drops to 0 (wait_idle)
        # stop(): node -> future set once the invocation stop() cancelled has unwound
        # (its node function's cleanup ran to the end); see NodeActor.unwound.
        self.unwinding: dict[Node, asyncio.Future[None]] = {}

    # -- busy / idle --------------------------------------------------------------
    def begin_item(self) -> None:
        """A node actor took an item: the flow is busy until ``end_item``."""
        self.busy += 1

    def end_item(self) -> None:
        """A node actor finished (or dropped) the item it took; may wake ``wait_idle``."""
        self.busy -= 1
        if not self.busy and self.idle is not None:
            self.end_item_idle()

    def end_item_idle(self) -> None:
        """Wake ``wait_idle``: the busy count just dropped to 0 (``end_item``'s tail)."""
        if self.idle is not None:
            self.idle.set()
            self.idle = None

    async def wait_idle(self) -> None:
        """Return once every node mailbox is empty and no node handles an item."""
        while True:
            busy_box = next((m for m in self.mailboxes.values() if len(m)), None)
            if busy_box is not None:
                await busy_box.wait_empty()
                continue
            if not self.busy:
                return
            if self.idle is None:
                self.idle = asyncio.Event()
            await self.idle.wait()

    def _clear_busy(self) -> None:
        self.busy = 0
        if self.idle is not None:
            self.idle.set()
            self.idle = None

    # -- crashes ------------------------------------------------------------------
    def crashed(self, item: Any) -> bool:
        """Count a crash ``item`` caused; True once it reached ``CRASH_LIMIT`` (then forgotten).

        Keyed by identity: the kernel redelivers the very same object.
        """
        crashes = self.crashes
        key = id(item)
        count = crashes.get(key, 0) + 1
        if count < CRASH_LIMIT:
            crashes[key] = count
            return False
        crashes.pop(key, None)
        return True

    def settled(self, item: Any) -> None:
        """``item`` was handled to the end: forget the crashes it caused."""
        if self.crashes:
            self.crashes.pop(id(item), None)

    # -- run lifecycle ------------------------------------------------------------
    def begin_run(self, registry: Any, warn_nodes: frozenset[Node]) -> None:
        """A ``run()`` starts: fresh failure, fresh set of started nodes."""
        self.registry = registry
        self.warn_nodes = warn_nodes
        self.started.clear()
        self.failure = self.fetch_failure = None

    def fail(self, exc: BaseException) -> None:
        """The run's supervisor escalated: ``emit`` raises ``exc`` from now on.

        The node actors were cancelled without finishing their items (the kernel
        put in-flight ones back in front), so nothing is busy any more.
        """
        self.failure = exc
        self._clear_busy()

    def fail_fetches(self, exc: BaseException) -> None:
        """Every item that will ever reach Rookery is there: empty fetches raise ``exc``."""
        self.fetch_failure = exc
        self.rookery.fail_getters(exc)

    def reset(self) -> None:
        """What ``stop()`` leaves: no actors, no per-trace bookkeeping, nothing busy."""
        self.external.clear()
        self.unwinding.clear()
        self.crashes.clear()
        self.traces.clear()
        self.refs = {}
        self.supervisor = None
        self.watcher = None
        self.all_started = None
        self._clear_busy()
        self.stopping = False
        self.running = False
