"""Tool calls as supervised actors: one supervisor per run, one actor per call in flight.

A ``ToolSupervisor`` belongs to one planner run (or one resumed continuation). Every
tool invocation is handled by a ``temporary`` child actor of the run's
``Supervisor`` (``simple_one_for_one``), asked with the call and answering with its
outcome. An actor handles one call at a time, so calls in flight at once (the
branches of a parallel plan, even of the same tool) each get their own actor and run
in parallel. Leaving the run stops the supervisor and with it every actor; a caller
cancelled while waiting interrupts the actor running its call, so a cancelled run
cancels its tools.

Context variables behave as if the tool were awaited by the caller: the tool sees
the caller's values at call time, and values the tool sets are set in the caller
afterwards (so, as in 2.2.5, they reach the run and its later tools when the call
was sequential, and die with the branch task of a parallel call). A variable the
tool deletes stays set in the caller.

Idle actors are kept for the run's next calls: starting an actor costs several
times more than asking one. Reuse must not be observable, so an actor is only
reused while the caller's context equals the one its task started with (a fresh
actor would copy it), and it retires once a tool changed a context variable in its
task.

How a call ends is data (``ToolOutcome``, built by ``invoke_tool``): a tool that
raises, times out, pauses or returns bad data does not crash its actor. Only what
``invoke_tool`` lets through (a ``CancelledError`` the tool raised itself, or a
``BaseException`` such as ``KeyboardInterrupt``) is handed back and re-raised in
the caller, as if the tool had been awaited there.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import TYPE_CHECKING, Any

from penguiflow.actors import Actor, ActorContext
from penguiflow.planner._tools import ToolOutcome, invoke_tool
from penguiflow.supervision import ChildSpec, Supervisor

if TYPE_CHECKING:
    from pydantic import BaseModel

    from penguiflow._time import Clock
    from penguiflow.actors import ActorRef
    from penguiflow.catalog import NodeSpec
    from penguiflow.planner._pause import ToolContext

__all__ = ["TOOL_SHUTDOWN_S", "ToolSupervisor"]

# Seconds a tool still running when its run's supervisor stops may take to finish
# before its task is cancelled. Cancelled runs interrupt their tools first, so only
# a tool that ignores cancellation ever waits this long.
TOOL_SHUTDOWN_S = 1.0


class _ToolCall:
    """The message a tool actor handles: which tool, with what, under which limits."""

    __slots__ = ("args", "clock", "ctx", "spec", "timeout_s")

    def __init__(
        self,
        spec: NodeSpec,
        args: BaseModel,
        ctx: ToolContext,
        timeout_s: float | None,
        clock: Clock | None,
    ) -> None:
        self.spec = spec
        self.args = args
        self.ctx = ctx
        self.timeout_s = timeout_s
        self.clock = clock


class _Reply:
    """How a call ended, the context variables the tool set, and if the actor is reusable."""

    __slots__ = ("changes", "outcome", "raised")

    def __init__(
        self,
        outcome: ToolOutcome | None,
        raised: BaseException | None,
        changes: list[tuple[contextvars.ContextVar[Any], Any]] | None,
    ) -> None:
        self.outcome = outcome
        self.raised = raised  # to re-raise in the caller
        self.changes = changes  # None: nothing changed, the actor takes more calls


_RETIRE = object()  # told to an idle actor the pool drops: stop now


class _ToolActor(Actor):
    """Runs tool calls one at a time; stops when told to retire or when it changed."""

    def __init__(self) -> None:
        self._context = contextvars.Context()  # replaced in on_start

    async def on_start(self, ctx: ActorContext) -> None:
        # The task's context: a copy of the starting caller's (see the module docstring).
        self._context = contextvars.copy_context()

    async def receive(self, message: Any, ctx: ActorContext) -> _Reply | None:
        if message is _RETIRE:
            ctx.stop("retired")
            return None
        call: _ToolCall = message
        outcome: ToolOutcome | None = None
        raised: BaseException | None = None
        try:
            outcome = await invoke_tool(
                call.spec, call.args, call.ctx, timeout_s=call.timeout_s, clock=call.clock
            )
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # an interrupt or a stop: the kernel handles it
            raised = exc  # the tool raised CancelledError itself
        except BaseException as exc:
            raised = exc
        changes = None
        after = contextvars.copy_context()
        if after != self._context:
            ctx.stop("context_changed")  # the next caller must not see these values
            changes = _changes(self._context, after)
        return _Reply(outcome, raised, changes)


_MISSING = object()


def _changes(
    before: contextvars.Context, after: contextvars.Context
) -> list[tuple[contextvars.ContextVar[Any], Any]]:
    """The variables set (to a new value) between two snapshots of one task's context."""
    return [(var, value) for var, value in after.items() if before.get(var, _MISSING) is not value]


class ToolSupervisor:
    """The supervisor of one run's tool calls (see the module docstring).

    Args:
        name: the supervisor's name in logs.
        clock: the supervisor's clock (stop timeouts); ``None`` = system clock.
    """

    __slots__ = ("_idle", "_supervisor")

    def __init__(self, *, name: str = "planner_tools", clock: Clock | None = None) -> None:
        template = ChildSpec(
            "tool", _ToolActor, restart="temporary", shutdown=TOOL_SHUTDOWN_S, capacity=1
        )
        # The supervisor's task starts with its first child: a run without tool
        # calls costs no task.
        self._supervisor = Supervisor(
            "simple_one_for_one", name=name, clock=clock, children=[template]
        )
        # Idle actors, most recently used last, with the context each started with.
        self._idle: list[tuple[ActorRef, contextvars.Context]] = []

    @property
    def supervisor(self) -> Supervisor:
        """The underlying ``Supervisor``; its children are the run's tool actors."""
        return self._supervisor

    async def call(
        self,
        spec: NodeSpec,
        args: BaseModel,
        ctx: ToolContext,
        *,
        timeout_s: float | None = None,
        clock: Clock | None = None,
    ) -> ToolOutcome:
        """Run ``spec``'s tool with ``args`` and ``ctx`` in an actor; how it ended.

        Raises:
            BaseException: what the tool raised that is not a tool failure (its own
                ``CancelledError``, ``KeyboardInterrupt``, ...).
        """
        context = contextvars.copy_context()
        ref = self._acquire(context)
        try:
            reply: _Reply = await ref.ask(_ToolCall(spec, args, ctx, timeout_s, clock))
        except asyncio.CancelledError:
            # The run is cancelled: cancel the tool too (False if it had not started,
            # then the actor skips the abandoned call). It is not reused.
            ref.interrupt("cancelled")
            raise
        if reply.changes is None:
            self._idle.append((ref, context))
        else:
            for var, value in reply.changes:
                var.set(value)  # as if the tool had run in the caller's task
        if reply.raised is not None:
            raise reply.raised
        assert reply.outcome is not None
        return reply.outcome

    def _acquire(self, context: contextvars.Context) -> ActorRef:
        """An idle actor that started with ``context``, else a new one."""
        idle = self._idle
        while idle:
            ref, started_with = idle.pop()
            if not ref.alive:
                continue  # stopped from outside the run (its supervisor reported it)
            if started_with == context:
                return ref
            ref.try_tell(_RETIRE)  # idle, so its one-slot mailbox has room
        made = self._supervisor.start_child_nowait()
        assert not isinstance(made, Supervisor)
        return made

    async def aclose(self) -> None:
        """Stop the supervisor and every tool actor it still has; idempotent."""
        self._idle.clear()
        await self._supervisor.stop()
