"""Low-level hooks for hosting a flow somewhere else: deployments, journals, observers.

A ``PenguiFlow`` runs every node in this process by default. A deployment moves
where a node's work happens without changing the flow's code: it swaps the
node's mailbox for one of its own (``replace_mailbox``), takes items from it,
has them handled elsewhere, puts the results back on the flow's edges
(``inject``, ``deliver_to_rookery``) and ends the item for trace accounting
(``finish``). A process hosting one node of a copy of the flow sends that
node's outputs to a sink (``attach_edge``) and turns the bus off
(``disable_bus``). Observers watch what is fed to the flow (``observe_emits``), every node
attempt (``observe_attempts``, with no ``FlowEvent`` built per hop) and the
flow's events but the per-hop ones (``observe_events``);
``PenguiFlow.add_trace_listener`` tells when a trace ends; ``parked_interrupts``
lists the traces waiting in ``ctx.interrupt``.

These are public on purpose, like trio's ``lowlevel``: few, documented
(docs/hosting.md), and the only way code outside the runtime reaches the
flow's state. ``penguiflow.distributed`` is written against them alone; a
durable journal plugs in the same way. Rewiring (``replace_mailbox``,
``attach_edge``) is refused while the flow runs; the rest may be called at
any time from the flow's event loop.

.. versionadded:: 3.0
"""

from __future__ import annotations

from penguiflow._runtime.graph import OPEN_SEA as OPEN_SEA
from penguiflow._runtime.graph import ROOKERY as ROOKERY
from penguiflow._runtime.hosting import AttemptObserver as AttemptObserver
from penguiflow._runtime.hosting import EmitObserver as EmitObserver
from penguiflow._runtime.hosting import EventListener as EventListener
from penguiflow._runtime.hosting import attach_edge as attach_edge
from penguiflow._runtime.hosting import capacity as capacity
from penguiflow._runtime.hosting import deliver_to_rookery as deliver_to_rookery
from penguiflow._runtime.hosting import disable_bus as disable_bus
from penguiflow._runtime.hosting import emits_errors as emits_errors
from penguiflow._runtime.hosting import finish as finish
from penguiflow._runtime.hosting import finish_nowait as finish_nowait
from penguiflow._runtime.hosting import inject as inject
from penguiflow._runtime.hosting import is_running as is_running
from penguiflow._runtime.hosting import node_named as node_named
from penguiflow._runtime.hosting import observe_attempts as observe_attempts
from penguiflow._runtime.hosting import observe_emits as observe_emits
from penguiflow._runtime.hosting import observe_events as observe_events
from penguiflow._runtime.hosting import outstanding as outstanding
from penguiflow._runtime.hosting import parked_interrupts as parked_interrupts
from penguiflow._runtime.hosting import record_state as record_state
from penguiflow._runtime.hosting import refuse_interrupts as refuse_interrupts
from penguiflow._runtime.hosting import replace_mailbox as replace_mailbox
from penguiflow._runtime.hosting import share_rate_limiter as share_rate_limiter
from penguiflow._runtime.hosting import take_rookery_buffer as take_rookery_buffer
from penguiflow._runtime.hosting import unobserve_attempts as unobserve_attempts
from penguiflow._runtime.hosting import unobserve_emits as unobserve_emits
from penguiflow._runtime.hosting import unobserve_events as unobserve_events

__all__ = [
    "OPEN_SEA",
    "ROOKERY",
    "AttemptObserver",
    "EmitObserver",
    "EventListener",
    "attach_edge",
    "capacity",
    "deliver_to_rookery",
    "disable_bus",
    "emits_errors",
    "finish",
    "finish_nowait",
    "inject",
    "is_running",
    "node_named",
    "observe_attempts",
    "observe_emits",
    "observe_events",
    "outstanding",
    "parked_interrupts",
    "record_state",
    "refuse_interrupts",
    "replace_mailbox",
    "share_rate_limiter",
    "take_rookery_buffer",
    "unobserve_attempts",
    "unobserve_emits",
    "unobserve_events",
]
