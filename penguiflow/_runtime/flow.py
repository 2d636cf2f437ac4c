"""``PenguiFlow``: the 2.2.5 facade over one ``RunState``.

Construction builds and checks the graph and wires it (``wiring``: one
multi-lane mailbox per node plus Rookery's, one ``Context`` per node and
endpoint, one ``Transport``). The flow owns the mailboxes, so ``stop()`` then
``run()`` keeps queued items. Everything mutable lives in the ``RunState``;
each job is done by the module that owns it: the run's supervision tree
(``run_tree``), trace cancellation (``cancel``), node work (``node_actor``),
edge traffic (``transport``), store hooks (``store_hooks``), low-level hooks for
deployments (``hosting``). This module delegates; only ``emit`` and ``fetch``
keep their bodies here, because an emitter waiting on a full edge should hold
one coroutine frame, not two (10,000 concurrent emitters: megabytes), and both
run once per message.

It stays one module past ~400 lines: the facade's public methods, each with its
2.2.5 docstring, are one API read in one place; their logic lives elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from penguiflow._runtime import store_hooks
from penguiflow._runtime.cancel import cancel_trace
from penguiflow._runtime.graph import OPEN_SEA, ROOKERY, Floe, build_graph
from penguiflow._runtime.observers import EmitObserver, emit_finished, emit_started
from penguiflow._runtime.parking import Parking
from penguiflow._runtime.rate_gate import RateLimits
from penguiflow._runtime.recovery import (
    Release,
    claim_journal,
    durable_journal,
    no_release,
    recover,
)
from penguiflow._runtime.run_state import RunState
from penguiflow._runtime.run_tree import start_run, stop_run
from penguiflow._runtime.tracing import Carried, Journaled, trace_id_of
from penguiflow._runtime.wiring import wire
from penguiflow._time import SYSTEM_CLOCK, Clock
from penguiflow.actors import SELF_LANE, Mailbox
from penguiflow.errors import DurabilityError, InterruptTokenError
from penguiflow.metrics import FlowEvent
from penguiflow.node import Node
from penguiflow.types import WM, Message, StreamChunk

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context, Target
    from penguiflow._runtime.tracing import CancelFlag
    from penguiflow.ratelimit import RateLimiter
    from penguiflow.supervision import Supervisor

__all__ = ["DEFAULT_QUEUE_MAXSIZE", "MailboxSnapshot", "PenguiFlow", "RookeryDelivery", "create"]

DEFAULT_QUEUE_MAXSIZE = 64

Middleware = Callable[[FlowEvent], Awaitable[None]]
_NOTHING = Mailbox.NOTHING


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


@dataclass(frozen=True, slots=True)
class RookeryDelivery:
    """An item fetched from Rookery and the trace that produced it (``fetch_traced``).

    .. versionadded:: 3.0
    """

    item: Any
    trace_id: str | None


class PenguiFlow:
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
        durable: journal every edge, join bucket and Rookery item in
            ``state_store``'s journal, so that ``recover()`` in a new process
            resumes every trace (docs/durability.md). *versionadded 3.0*

    Raises:
        CycleError: the graph has a cycle and ``allow_cycles`` is false.
        DurabilityError: ``durable`` without a store that keeps a journal, or
            with two nodes of one name.
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
        durable: bool = False,
    ) -> None:
        graph = build_graph(adjacencies, maxsize=queue_maxsize, allow_cycles=allow_cycles)
        journal = durable_journal(state_store, graph) if durable else None
        #: The journal of a durable flow (``None``: not durable).
        self._journal = journal
        self._durable = journal is not None
        self._release_journal: Release = no_release
        self._recovered = False
        self._graph = graph
        self._clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        run = RunState(
            clock=self._clock,
            queue_maxsize=queue_maxsize,
            middlewares=list(middlewares or []),
            state_store=state_store,
            emit_errors_to_rookery=emit_errors_to_rookery,
        )
        self._run = run
        self._parent: Supervisor | None = None
        # hosting.observe_emits: called around every emit/emit_nowait (empty: free).
        self._emit_observers: list[EmitObserver] = []
        wire(run, graph, runtime=self, bus=message_bus, journal=journal)
        run.parking = Parking(run, journal)  # ctx.interrupt / resume
        run.rate_limits = RateLimits(run, graph.nodes, rate_limiter)
        # For emit/fetch: a dict lookup by Endpoint hashes a dataclass (~0.6 µs);
        # the transport and trace book never change after wiring.
        self._open_sea_ctx = run.contexts[OPEN_SEA]
        self._rookery_ctx = run.contexts[ROOKERY]
        self._io = run.io
        self._traces = run.traces

    # -- inspection -----------------------------------------------------------------
    @property
    def registry(self) -> Any:
        """The registry given to the last ``run()``, else ``None``."""
        return self._run.registry

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
    def state_store(self) -> Any:
        """The store given as ``state_store=`` (``None`` without one). *versionadded 3.0*"""
        return self._run.state_store

    @property
    def durable(self) -> bool:
        """True for a flow created with ``durable=True``. *versionadded 3.0*"""
        return self._durable

    @property
    def running(self) -> bool:
        """True between ``run()`` and the end of ``stop()``. *versionadded 3.0*"""
        return self._run.running

    @property
    def supervisor(self) -> Supervisor | None:
        """The supervisor of this run's node actors (``None`` when not running)."""
        return self._run.supervisor

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
        return self._run.failure

    def context(self, owner: Node | Any) -> Context:
        """The ``Context`` of a node of this flow, or of ``OPEN_SEA``/``ROOKERY``.

        Raises:
            KeyError: ``owner`` is not part of this flow.

        .. versionadded:: 3.0
        """
        return self._run.contexts[owner]

    def mailboxes(self) -> dict[str, MailboxSnapshot]:
        """A copy of every node's mailbox (and ``"Rookery"``); does not disturb the flow.

        .. versionadded:: 3.0
        """
        run = self._run
        result: dict[str, MailboxSnapshot] = {}
        for node, mailbox in run.mailboxes.items():
            ref = run.refs.get(node)
            items = _shown(mailbox.snapshot(SELF_LANE) + mailbox.snapshot())
            busy = bool(ref is not None and ref.busy)
            name = str(node.name)
            result[name] = MailboxSnapshot(name, len(items), mailbox.capacity, items, busy)
        rookery = run.rookery
        items = _shown(rookery.snapshot(SELF_LANE) + rookery.snapshot())
        result["Rookery"] = MailboxSnapshot("Rookery", len(items), rookery.capacity, items, False)
        return result

    async def wait_idle(self) -> None:
        """Return once every node mailbox is empty and no node is handling an item.

        Rookery is not waited for. Wrap the call in ``asyncio.timeout``.

        .. versionadded:: 3.0
        """
        await self._run.wait_idle()

    # -- the 2.2.5 private names real programs touch (docs/architecture.md) --------
    @property
    def _contexts(self) -> dict[Any, Context]:
        return self._run.contexts

    @property
    def _running(self) -> bool:
        return self._run.running

    @property
    def _tasks(self) -> list[asyncio.Task[Any]]:
        # 2.2.5 programs read this to reach every worker: start the dormant ones.
        refs = self._run.refs.values()
        for ref in refs:
            ref.wake()
        return [ref.task for ref in refs if ref.task is not None]

    @property
    def _trace_events(self) -> dict[str, asyncio.Event]:
        return self._run.traces.events

    @property
    def _middlewares(self) -> list[Middleware]:
        return self._run.middlewares

    @property
    def _floes(self) -> tuple[Floe, ...]:
        return self._graph.floes

    async def _emit_to_rookery(self, item: Any, *, source: Node | None = None) -> None:
        """Deliver any object to Rookery as the runtime does for finals (compat)."""
        await self._run.io.to_rookery(item, source=source)

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
        if self._run.running:
            raise RuntimeError("PenguiFlow already running")
        parent = supervisor if supervisor is not None else self._parent
        # A durable flow owns its journal while it runs: a second flow on it would
        # put its entries back and handle them twice (JournalInUse instead).
        release = claim_journal(self._journal)
        try:
            start_run(self._run, self._graph.nodes, parent, registry)
        except BaseException:
            freeing = release()  # nothing was journaled yet: no lease was taken
            if asyncio.iscoroutine(freeing):
                freeing.close()
            raise
        self._release_journal = release

    async def recover(self) -> list[str]:
        """Put everything this flow's journal holds unfinished back in flight.

        Call it right after ``run()``, once per flow object: every edge entry
        goes back on its edge (the ones a node had in hand are handled again),
        join buckets back in their ``join_k`` node, Rookery items not fetched yet
        back in Rookery; cancelled traces stay cancelled.

        Returns:
            The ids of the traces put back, oldest first.

        Raises:
            DurabilityError: the flow is not durable, not running, or already
                recovered; or the journal names edges this flow does not have.
            JournalError: the journal could not be read.

        .. versionadded:: 3.0
        """
        journal = self._journal
        if journal is None:
            raise DurabilityError("recover() needs a flow created with durable=True")
        if not self._run.running:
            raise DurabilityError("call flow.run() before flow.recover()")
        if self._recovered:
            raise DurabilityError("recover() was already called on this flow")
        self._recovered = True
        try:
            return await recover(self._run, self._graph, journal, self)
        except BaseException:
            self._recovered = False  # nothing was restored: it may be called again
            raise

    async def stop(self) -> None:
        """Stop every node actor, external task and background publish; no-op if stopped.

        Queued items stay in their mailboxes; per-trace bookkeeping is cleared.
        """
        if self._run.running:
            try:
                await stop_run(self._run, self._graph.nodes)
            finally:
                release, self._release_journal = self._release_journal, no_release
                freeing = release()
                if freeing is not None:
                    await freeing

    # -- OpenSea and Rookery ------------------------------------------------------
    def _wm_duplicate(self, msg: Any) -> bool:
        if isinstance(msg, Message) and isinstance(msg.payload, WM):
            memo = self._run.traces.memo.get(msg.trace_id)
            # <= rather than ==: the loop may run ahead of a caller re-emitting hops.
            return memo is not None and msg.payload.hops <= memo
        return False

    async def emit(
        self,
        msg: Any,
        to: Target | Sequence[Target] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """Feed ``msg`` to the ingress nodes (or the ``to`` ones), waiting on full edges.

        On a durable flow it returns once ``msg`` is in the journal; an
        ``idempotency_key`` already journaled makes it do nothing (*versionadded
        3.0*, durable flows only).

        Raises:
            KeyError: a target is not an ingress node.
            Escalated: the run failed (see ``failure``); nothing would take it.
            DurabilityError: ``idempotency_key`` on a flow that is not durable.
            SerializationError: a durable flow cannot journal ``msg`` (nothing was).
            JournalError: a durable flow's journal did not store it.
        """
        if self._emit_observers or self._durable or idempotency_key is not None:
            # Observed (hosting.observe_emits) or journaled: the same steps, not inlined.
            await self._observed_emit(msg, to, idempotency_key)
            return
        # Locals kept few: each is 8 bytes more in every waiting emitter's frame.
        if self._run.failure is not None:
            raise self._run.failure
        # No memo, no duplicate: the memo is only filled by WM streaming.
        if self._traces.memo and self._wm_duplicate(msg):
            return
        # Context.emit inlined: an emitter waiting on a full edge holds one
        # coroutine frame less (10k concurrent emitters: megabytes).
        ctx = self._open_sea_ctx
        if not ctx._outgoing:
            return
        io = self._io
        floes = ctx._out_list if to is None else ctx._targets(to)
        if len(floes) == 1:
            # One ingress (the usual flow): no tuple iterator held while waiting.
            floe = floes[0]
            floes = ()
            if io.offer(floe, msg):
                return
            mailbox = floe.mailbox
            if type(msg) is Message and io.bus is None and floe.lane >= 0 and mailbox is not None:
                # Transport.send inlined for a Message on a data lane with no bus: an
                # emitter waiting on a full edge holds one coroutine frame less again
                # (workload g: 10k waiting emitters, ~2 MB). Counted before the put,
                # uncounted if it fails, as send does.
                traces = self._traces
                trace_id = msg.trace_id
                traces.add(trace_id)
                try:
                    await mailbox.put(msg, floe.lane)
                except BaseException:
                    traces.done(trace_id)
                    raise
                return
            await io.send(floe, msg)
            return
        for floe in floes:
            if not io.offer(floe, msg):
                await io.send(floe, msg)

    async def _observed_emit(
        self, msg: Any, to: Target | Sequence[Target] | None, idempotency_key: str | None
    ) -> None:
        observers = self._emit_observers
        handles = emit_started(observers, msg) if observers else None
        error: BaseException | None = None
        try:
            failure = self._run.failure
            if failure is not None:
                raise failure
            if not self._durable:
                if idempotency_key is not None:
                    raise DurabilityError(
                        "idempotency_key needs a durable flow (create(..., durable=True))"
                    )
                if not self._wm_duplicate(msg):
                    await self._open_sea_ctx.emit(msg, to)
            elif not self._wm_duplicate(msg):
                ctx = self._open_sea_ctx
                if ctx._outgoing:
                    await self._io.emit(ctx._targets(to), msg, idempotency_key)  # type: ignore[attr-defined]
        except BaseException as exc:
            error = exc
            raise
        finally:
            if handles is not None:
                emit_finished(observers, msg, handles, error)
            error = None  # no cycle through the traceback

    def emit_nowait(self, msg: Any, to: Target | Sequence[Target] | None = None) -> None:
        """Like ``emit`` without waiting; ``asyncio.QueueFull`` if an edge is full.

        Raises:
            DurabilityError: the flow is durable (journaling waits: ``await emit``).
        """
        if self._durable:
            raise DurabilityError(
                "emit_nowait cannot journal a message without waiting; on a durable "
                "flow use 'await flow.emit(msg)'"
            )
        observers = self._emit_observers
        handles = emit_started(observers, msg) if observers else None
        error: BaseException | None = None
        try:
            failure = self._run.failure
            if failure is not None:
                raise failure
            if not self._wm_duplicate(msg):
                self._open_sea_ctx.emit_nowait(msg, to)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if handles is not None:
                emit_finished(observers, msg, handles, error)
            error = None  # no cycle through the traceback

    async def emit_chunk(
        self,
        *,
        parent: Message,
        text: str,
        stream_id: str | None = None,
        seq: int | None = None,
        done: bool = False,
        meta: dict[str, Any] | None = None,
        to: Target | Sequence[Target] | None = None,
    ) -> StreamChunk:
        """``Context.emit_chunk`` run from OpenSea (delivers to ingress nodes).

        Raises:
            DurabilityError: the flow is durable (emit the chunk's ``Message``
                with ``await flow.emit(...)``: that one is journaled).
        """
        if self._durable:
            raise DurabilityError(
                "emit_chunk from OpenSea is not journaled; on a durable flow emit the "
                "chunk's Message with 'await flow.emit(Message(payload=StreamChunk(...)))'"
            )
        return await self._open_sea_ctx.emit_chunk(
            parent=parent, text=text, stream_id=stream_id, seq=seq, done=done, meta=meta, to=to
        )

    async def fetch(self, from_: Target | Sequence[Target] | None = None) -> Any:
        """Wait for and return the next item delivered to Rookery.

        Raises:
            KeyError: ``from_`` is not an egress node.
            RuntimeError: Rookery has no incoming edges and nothing buffered.
            Escalated: the run failed (see ``failure``) and nothing is left to fetch.
        """
        if self._durable:
            return (await self._io.fetch(self._rookery_ctx._lanes(from_)))[0]  # type: ignore[attr-defined]
        # Context.fetch inlined for Rookery: one coroutine frame less per fetch.
        ctx = self._rookery_ctx
        mailbox = ctx._in_mailbox
        run = self._run
        if (
            from_ is None
            and run.fetch_failure is None
            and mailbox is not None
            and (ctx._incoming or len(mailbox))
        ):
            # The usual call: every lane, a healthy run (what _lanes/_mailbox check).
            # An item already queued is taken synchronously (no Delivery record);
            # get() handles the rest (system/self lanes first, waiting, closed).
            item = mailbox.poll()
            if item is _NOTHING:
                item = (await mailbox.get(None)).item
        else:
            lanes = ctx._lanes(from_)
            if run.fetch_failure is None:
                delivery = await ctx._mailbox().get(lanes)
            else:
                delivery = await ctx._take(lanes)
            item = delivery.item
        # Fetching from Rookery ends the item's life for trace accounting; the
        # common case of TraceBook.done (other items of the trace are still out,
        # nobody waits for capacity) in place.
        if type(item) is Message:
            traces = run.traces
            counts = traces.counts
            left = counts.get(item.trace_id, 0) - 1
            if left > 0 and not traces.waiters:
                counts[item.trace_id] = left
                return item
        elif type(item) is Carried:
            return item.item  # a bare payload: never counted, nothing to settle
        io = run.io
        finished = io.settle(item)
        if finished is not None:
            await io.cancel_finished(finished)
        return item

    async def fetch_any(self, from_: Target | Sequence[Target] | None = None) -> Any:
        """Like ``fetch``: the first item on any selected Rookery edge."""
        if self._durable:
            return await self.fetch(from_)
        return await self._rookery_ctx.fetch_any(from_)

    async def fetch_traced(self, from_: Target | Sequence[Target] | None = None) -> RookeryDelivery:
        """Like ``fetch``, and also say which trace produced the item.

        ``trace_id`` is the item's own ``trace_id``, or for a trace-less item (a
        bare payload a node returned) the trace it carries: the trace of the item
        the producing node was handling, handed on from hop to hop however many
        bare payloads follow the traced ``Message``. ``None`` only for an item
        with no trace anywhere on its way (e.g. a bare payload emitted from
        outside any node). Used by servers that share one flow between concurrent
        requests.

        .. versionadded:: 3.0
        """
        ctx = self._rookery_ctx
        if self._durable:
            got, trace = await self._io.fetch(ctx._lanes(from_))  # type: ignore[attr-defined]
            return RookeryDelivery(item=got, trace_id=trace)
        delivery = await ctx._take(ctx._lanes(from_))
        item = delivery.item
        if type(item) is Carried:
            return RookeryDelivery(item=item.item, trace_id=item.trace)
        await self._run.io.finish(item)
        return RookeryDelivery(item=item, trace_id=trace_id_of(item))

    # -- observers, traces, stores ------------------------------------------------
    def add_middleware(self, middleware: Callable[[FlowEvent], Awaitable[None]]) -> None:
        """Append a middleware; it receives every later event, even while running."""
        self._run.middlewares.append(middleware)

    def add_trace_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(trace_id)`` each time a trace becomes inactive.

        A trace is inactive once its last outstanding item finished (fetched from
        Rookery, dropped by ``cancel``, or ended by a node) and no invocation of it
        runs; ``stop()`` ends the traces still active. Called
        synchronously from the runtime: keep it short, never await. Its exceptions
        are logged (``trace_listener_error``) and swallowed. Observers such as
        ``penguiflow.otel`` use it to end a trace's span.

        .. versionadded:: 3.0
        """
        self._run.traces.listeners.append(listener)

    def remove_trace_listener(self, listener: Callable[[str], None]) -> None:
        """Stop calling ``listener`` (no-op if it was not added).

        .. versionadded:: 3.0
        """
        with contextlib.suppress(ValueError):
            self._run.traces.listeners.remove(listener)

    async def cancel(self, trace_id: str) -> bool:
        """Cancel one trace: drop its queued items and abort its running invocations.

        Returns:
            True if the trace was active, False otherwise (nothing happens). On a
            durable flow the cancellation is journaled first (it survives
            ``recover()``), and True also means the journal had not cancelled it.

        Raises:
            RuntimeError: the flow is not running.
        """
        if not self._run.running:
            raise RuntimeError("PenguiFlow is not running")
        journal = self._journal
        if journal is None:
            return await cancel_trace(self._run, trace_id)
        # Journaled first: a cancelled trace stays cancelled across recover().
        journaled = await journal.cancel(trace_id)
        return await cancel_trace(self._run, trace_id) or journaled

    async def resume(self, token: str, value: Any = None) -> None:
        """Continue the trace parked by ``ctx.interrupt`` under ``token``: it returns ``value``.

        ``token`` is the ``Interrupt.token`` fetched from Rookery; it is good once.

        On a durable flow the value is journaled first: from then on it
        survives a crash (``recover`` runs the node again, and its
        ``ctx.interrupt`` returns ``value``).

        Raises:
            InterruptTokenError: the token is unknown, already used, or was
                withdrawn (its trace cancelled, its node timed out, ``stop()``
                of a flow that is not durable).
            JournalError: a durable flow's journal did not store the value.

        .. versionadded:: 3.0
        """
        parking = self._run.parking
        if parking is None:
            raise InterruptTokenError("unknown interrupt token", token=token)
        await parking.resume(token, value)

    def ensure_trace_event(self, trace_id: str) -> asyncio.Event:
        """Return the trace's cancel flag, creating it if absent (set by ``cancel``)."""
        return self._run.traces.ensure_event(trace_id)

    def cancel_flag(self, trace_id: str) -> CancelFlag:
        """Return a flag that ``cancel`` sets if it cancels the trace while it is active.

        A lighter ``ensure_trace_event`` for code that only needs to learn of the
        cancel afterwards (``join_k``): the flag is not an ``asyncio.Event`` and
        is not one the node actors test per item. It is forgotten (a new one is
        made) once the trace ends; a holder keeps seeing how it was left.

        .. versionadded:: 3.0
        """
        return self._run.traces.watch(trace_id)

    def register_external_task(self, trace_id: str | None, task: asyncio.Future[Any]) -> None:
        """Track ``task`` so ``stop()`` cancels and awaits it; ignored without a trace."""
        if trace_id is None:
            return
        external = self._run.external
        external.add(task)
        task.add_done_callback(external.discard)

    async def save_remote_binding(self, binding: Any) -> None:
        """Persist a remote binding in the state store (no-op without one)."""
        await store_hooks.save_remote_binding(self._run, binding)

    async def load_history(self, trace_id: str) -> Any:
        """Return the stored events of ``trace_id``.

        Raises:
            RuntimeError: the flow has no state store.
        """
        return await store_hooks.load_history(self._run, trace_id)

    async def record_remote_event(
        self,
        *,
        event: str,
        node: Node,
        context: Context,
        trace_id: str | None,
        latency_ms: float | None,
        level: int = logging.INFO,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        """Emit a ``FlowEvent`` named ``event`` for ``node`` (remote telemetry)."""
        await store_hooks.record_remote_event(
            self._run,
            event=event,
            context=context,
            trace_id=trace_id,
            latency_ms=latency_ms,
            level=level,
            extra=extra,
        )


def _shown(items: tuple[Any, ...]) -> tuple[Any, ...]:
    """Queued items as they were sent (how a bare payload carries its trace, and a
    durable flow's journal entry, are private)."""
    shown = []
    for item in items:
        if type(item) is Journaled:
            item = item.item
        shown.append(item.item if type(item) is Carried else item)
    return tuple(shown)


def create(*adjacencies: tuple[Node, Sequence[Node]], **kwargs: Any) -> PenguiFlow:
    """Build a ``PenguiFlow`` (same arguments as its constructor)."""
    return PenguiFlow(*adjacencies, **kwargs)
