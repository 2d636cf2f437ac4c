"""The flow's own supervision tree: how a run maps onto supervisors and node actors.

Each ``run()`` gets its own one-for-one ``Supervisor`` whose children are the
node actors, in declaration order. Node actors use the flow's mailboxes
(externally owned: stopping them keeps queued items) and ``shutdown=0``, because
``stop()`` cancels in-flight invocations at once. Crashes outside
the node function (the policy runner turns node exceptions into ``FlowError``
values) restart the actor under the supervisor's intensity limit, with the
in-flight item redelivered first.

If the run's supervisor escalates (restart intensity exceeded) its node actors
are gone for good. ``watch_supervisor`` hears that (every run has one watcher
task, owned by the flow and awaited by ``stop()``), records the failure in the
``RunState`` (``flow.failure``), ends every queued traced item with a ``FlowError``
(``metadata["reason"] == "escalated"``) and wakes ``fetch`` callers waiting for
results that can no longer arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from penguiflow._runtime.node_actor import NodeActor
from penguiflow._runtime.policy import failure
from penguiflow._runtime.signals import STOPPING
from penguiflow._runtime.tracing import trace_id_of
from penguiflow.actors import SELF_LANE
from penguiflow.errors import Escalated
from penguiflow.types import Message

if TYPE_CHECKING:
    from penguiflow._runtime.run_state import RunState
    from penguiflow.actors import ActorRef
    from penguiflow.node import Node
    from penguiflow.supervision import Supervisor

__all__ = [
    "RESTART_INTENSITY",
    "RESTART_PERIOD_S",
    "UNWIND_GRACE_S",
    "start_node_actors",
    "start_run",
    "stop_node_actors",
    "stop_run",
    "watch_supervisor",
]

RESTART_INTENSITY = 3
"""More node-actor restarts than this within ``RESTART_PERIOD_S`` escalate."""
RESTART_PERIOD_S = 5.0
UNWIND_GRACE_S = 5.0
"""How long ``stop()`` lets cancelled node functions finish their cleanup."""


def _child_ids(nodes: tuple[Node, ...]) -> list[str]:
    # Node names need not be unique in a flow; child ids must be.
    seen: dict[str | None, int] = {}
    ids = []
    for node in nodes:
        count = seen.get(node.name, 0)
        seen[node.name] = count + 1
        ids.append(node.name if count == 0 else f"{node.name}#{count}")
    return ids  # type: ignore[return-value]


def start_node_actors(
    run: RunState, nodes: tuple[Node, ...], parent: Supervisor | None
) -> tuple[Supervisor, dict[Node, ActorRef]]:
    """Start a supervisor for this run and one node actor per node (synchronously)."""
    from penguiflow.supervision import ChildSpec, Supervisor

    supervisor = Supervisor(
        "one_for_one",
        intensity=RESTART_INTENSITY,
        period=RESTART_PERIOD_S,
        name="penguiflow.flow",
        clock=run.clock,
    )
    if parent is not None:
        spec = ChildSpec(
            id=f"flow-{id(run):x}-{id(supervisor):x}",
            start=lambda: supervisor,
            restart="temporary",
            shutdown=None,
        )
        parent.start_child_nowait(spec)
    refs: dict[Node, ActorRef] = {}
    for node, child_id in zip(nodes, _child_ids(nodes), strict=True):
        spec = ChildSpec(
            id=child_id,
            start=functools.partial(NodeActor, run, node),
            restart="permanent",
            shutdown=0,
            mailbox=run.mailboxes[node],
            lazy=True,  # an idle node costs no task (see start_run for node_cancelled)
        )
        ref = supervisor.start_child_nowait(spec)
        refs[node] = ref  # type: ignore[assignment]
    return supervisor, refs


async def stop_node_actors(supervisor: Supervisor) -> None:
    """Stop the run's supervisor; children stop in reverse order, cancelled at once."""
    await supervisor.stop()


async def watch_supervisor(run: RunState, supervisor: Supervisor) -> None:
    """Wait for the run's supervisor to exit; on escalation fail the run (see above)."""
    try:
        await supervisor.wait()
    except Escalated as exc:
        await _escalated(run, exc)


def _traced(item: Any) -> bool:
    return trace_id_of(item) is not None


async def _escalated(run: RunState, exc: Escalated) -> None:
    run.fail(exc)
    io = run.io
    events = run.events
    for node, mailbox in run.mailboxes.items():
        lanes = (SELF_LANE, *range(mailbox.lanes))
        # Trace-less items stay queued (a later run() resumes them): no trace waits.
        pending = mailbox.purge(_traced, lanes=lanes)
        ctx = run.contexts[node]
        try:
            while pending:
                item = pending[0].item
                trace_id = item.trace_id
                error = failure(node, trace_id, exc, 0, 0.0)
                error.metadata["reason"] = "escalated"
                await events.emit(
                    "node_failed",
                    ctx,
                    trace_id,
                    extra={"exception": repr(exc), "flow_error": error.to_payload()},
                    exc=exc,
                )
                if run.emit_errors_to_rookery:
                    await io.to_rookery(error, source=node)
                pending.pop(0)
                await io.finish(item)
        except BaseException:
            # stop() interrupted us (e.g. waiting on a full Rookery): put the items
            # not yet ended back in front of their lanes, in order; nothing is lost.
            for delivery in reversed(pending):
                mailbox.requeue_front(delivery.item, delivery.lane)
            raise
    # Every item that will ever reach Rookery is there now: from here on a fetch
    # that finds nothing raises, and those already waiting would wait forever.
    run.fail_fetches(exc)


def start_run(
    run: RunState, nodes: tuple[Node, ...], parent: Supervisor | None, registry: Any
) -> None:
    """Start the run's supervisor, its node actors and the watcher that hears it exit.

    Raises:
        RuntimeError: no running event loop, or ``registry`` misses a node whose
            policy validates.
    """
    asyncio.get_running_loop()
    if registry is not None:
        _check_registry(nodes, registry)
    run.begin_run(registry, _message_output_nodes(nodes, registry))
    supervisor, refs = start_node_actors(run, nodes, parent)
    run.supervisor, run.refs = supervisor, refs
    loop = asyncio.get_running_loop()
    run.all_started = loop.call_soon(run.started.update, nodes)
    run.watcher = loop.create_task(
        watch_supervisor(run, supervisor), name="penguiflow.flow watcher"
    )
    run.running = True


async def stop_run(run: RunState, nodes: tuple[Node, ...]) -> None:
    """Stop every node actor, external task and background publish; then ``run.reset()``.

    Queued items stay in their mailboxes; per-trace bookkeeping is cleared.
    """
    supervisor = run.supervisor
    run.stopping = True
    try:
        if run.all_started is not None:
            run.all_started.cancel()  # the loop has not turned: nothing started
            run.all_started = None
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        for node, ref in run.refs.items():
            # Cancel the invocation in hand (its item is dropped) and wait for it to
            # unwind; one a trace cancel interrupted already is waited for too.
            interrupted = ref.interrupt(STOPPING)
            if (interrupted or (ref.busy and ref.task is not me)) and node not in run.unwinding:
                run.unwinding[node] = loop.create_future()  # a concurrent stop() shares it
        if run.parking is not None:
            await run.parking.stop()  # parked invocations too (ctx.interrupt)
        if run.unwinding:
            await _wait_unwound(run)
        if supervisor is not None:
            await stop_node_actors(supervisor)
        watcher = run.watcher
        if watcher is not None:
            # Done once the supervisor is; cancelled if still ending items.
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        for node in nodes:
            if node in run.started:
                await run.events.emit("node_cancelled", run.contexts[node], None)
        external = tuple(run.external)
        for future in external:
            future.cancel()
        if external:
            await asyncio.gather(*external, return_exceptions=True)
        await run.io.drain()
    finally:
        run.reset()


async def _wait_unwound(run: RunState) -> None:
    """Wait until every invocation ``stop()`` cancelled has unwound, up to ``UNWIND_GRACE_S``.

    The cancellation is delivered once, as 2.2.5's ``task.cancel()`` is: a node's
    ``except CancelledError``/``finally`` that awaits (closing a client, say) runs
    to its end before the actors are stopped, which would cancel it again. A node
    that swallows the cancellation and goes on waiting only delays ``stop()`` by
    the grace; the supervisor then cancels it again.
    """
    clock = run.clock
    with contextlib.suppress(TimeoutError):
        async with clock.timeout_at(clock.monotonic() + UNWIND_GRACE_S):
            await asyncio.wait(tuple(run.unwinding.values()))
    run.unwinding.clear()


def _check_registry(nodes: tuple[Node, ...], registry: Any) -> None:
    missing = []
    for node in nodes:
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
