"""Where a node's result goes: successors, the controller loop, or Rookery.

A ``Message`` carrying a ``WM`` goes around the node's own self-edge under the
controller budgets (``policy.controller_step``) and, when the controller
streams, a copy goes to Rookery; one carrying a ``FinalAnswer`` goes to
Rookery; anything else goes on every outgoing edge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from penguiflow._runtime.policy import controller_step
from penguiflow.types import WM, FinalAnswer, Message

if TYPE_CHECKING:
    from penguiflow._runtime.context import Context
    from penguiflow._runtime.run_state import RunState
    from penguiflow.node import Node

__all__ = ["ROUTED_TYPES", "Router", "routed"]

# Payloads the router handles specially (controller loop, finals); a tuple, built once.
_ROUTED_PAYLOADS = (WM, FinalAnswer)
#: type(payload) -> isinstance(payload, (WM, FinalAnswer)): one dict lookup instead
#: of two ABCMeta instance checks per result. A class cannot change its bases, so
#: the answer per type never changes; bounded (see ``routed``).
ROUTED_TYPES: dict[type, bool] = {}
_ROUTED_TYPES_MAX = 256


def routed(payload: Any) -> bool:
    """Whether ``Router.route`` must look at ``payload`` (a WM or FinalAnswer); cached."""
    answer = isinstance(payload, _ROUTED_PAYLOADS)
    if len(ROUTED_TYPES) < _ROUTED_TYPES_MAX:  # classes made on the fly are not pinned
        ROUTED_TYPES[type(payload)] = answer
    return answer


class Router:
    """Delivers the non-None results of one node."""

    __slots__ = ("ctx", "node", "run")

    def __init__(self, run: RunState, node: Node, ctx: Context) -> None:
        self.run = run
        self.node = node
        self.ctx = ctx

    async def route(self, item: Any, result: Any) -> None:
        """Deliver ``result``, which the node returned for ``item``."""
        if isinstance(result, Message):
            payload = result.payload
            if isinstance(payload, WM):
                await self._controller(item, result, payload)
                return
            if isinstance(payload, FinalAnswer):
                await self.run.io.to_rookery(result, source=self.node)
                return
        # Context.emit(result) inlined for the common case: every outgoing edge.
        io = self.run.io
        for floe in self.ctx._out_list:
            if not io.offer(floe, result):  # no coroutine unless the edge is full
                await io.send(floe, result)

    async def _controller(self, item: Any, result: Message, wm: WM) -> None:
        run = self.run
        io = run.io
        step = controller_step(item, result, wm, run.clock.time())
        if step.final is not None:
            await io.to_rookery(step.final, source=self.node)
            return
        forward = step.forward
        assert forward is not None
        self_floe = self.ctx._self_floe
        if self_floe is None:
            name = self.node.name
            raise KeyError(f"Unknown target {name} for {name}")
        await io.send(self_floe, forward)
        if step.stream:
            run.traces.memo[forward.trace_id] = forward.payload.hops
            await io.to_rookery(forward.model_copy(deep=True), source=self.node)
