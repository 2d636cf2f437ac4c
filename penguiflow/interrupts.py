"""``Interrupt``: what Rookery receives when a node waits for outside input.

A node calls ``value = await ctx.interrupt(payload)``; the trace parks and an
``Interrupt`` reaches Rookery (``fetch``/``fetch_traced``). Whoever answers
calls ``await flow.resume(interrupt.token, value)`` and ``ctx.interrupt``
returns ``value`` in the node. See docs/interrupts.md.

.. versionadded:: 3.0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Interrupt"]


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
