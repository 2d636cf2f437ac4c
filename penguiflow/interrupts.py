"""``Interrupt``: what Rookery receives when a node waits for outside input.

A node calls ``value = await ctx.interrupt(payload)``; the trace parks and an
``Interrupt`` reaches Rookery (``fetch``/``fetch_traced``). Whoever answers
calls ``await flow.resume(interrupt.token, value)`` and ``ctx.interrupt``
returns ``value`` in the node. See docs/interrupts.md.

``ParkedInterrupt`` is what ``penguiflow.hosting.parked_interrupts(flow)``
lists: the interrupts of a flow still waiting for their ``resume``.

.. versionadded:: 3.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Interrupt", "ParkedInterrupt"]


@dataclass(frozen=True, slots=True)
class Interrupt:
    """A parked trace waiting for ``flow.resume(token, value)``.

    Attributes:
        trace_id: the trace that waits (that of the item the node had in hand).
        node: the name of the node that called ``ctx.interrupt``.
        payload: what the node passed to ``ctx.interrupt`` (a question, a draft...).
        token: the one-time key ``flow.resume`` takes (unguessable; used once).

    .. versionadded:: 3.0
    """

    trace_id: str | None
    node: str
    payload: Any
    token: str

    def __repr__(self) -> str:
        # The token is a capability: keep it out of logs and reprs.
        return (
            f"Interrupt(trace_id={self.trace_id!r}, node={self.node!r}, payload={self.payload!r})"
        )


@dataclass(frozen=True, slots=True)
class ParkedInterrupt:
    """An interrupt still waiting for ``flow.resume``, as ``hosting.parked_interrupts`` lists it.

    Attributes:
        trace_id: the trace that waits.
        node: the name of the node that called ``ctx.interrupt``.
        payload: what the node passed to ``ctx.interrupt``.
        token: the one-time key ``flow.resume`` takes (kept out of the repr).
        since: wall-clock epoch seconds at which this process parked it;
            ``None`` for an interrupt ``recover()`` brought back from a journal
            (the journal keeps no time).

    .. versionadded:: 3.0
    """

    trace_id: str | None
    node: str
    payload: Any
    token: str
    since: float | None

    def __repr__(self) -> str:
        return (
            f"ParkedInterrupt(trace_id={self.trace_id!r}, node={self.node!r}, "
            f"payload={self.payload!r}, since={self.since!r})"
        )
