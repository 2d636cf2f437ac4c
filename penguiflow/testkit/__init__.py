"""Test helpers for PenguiFlow programs: the 2.2.5 FlowTestKit and actor-runtime tools.

``__all__`` lists exactly the PenguiFlow 2.2.5 names (``run_one``,
``assert_node_sequence``, ``get_recorded_events``, ``simulate_error``,
``assert_preserves_message_envelope``), as the 2.2.5 contract pins it. The
3.0 additions are importable from here too (explicit re-exports below):
``FakeClock``, ``EventRecorder``, ``inspect_mailboxes``, ``wait_idle``,
``format_mailboxes``, ``trace_counts``, ``clear_recorded_events``, ``Simulation``, the
in-memory fakes ``InMemoryStateStore``, ``InMemoryMessageBus`` and
``InMemoryRemoteTransport`` (with ``HOLD``, ``RemoteCancel``), the fault-injection
harness ``FaultPlan``, ``FaultKind``, ``FaultStatistics``, ``InjectedFault``,
``SlowConsumer`` and ``kill_actor``, and the contract
suites ``check_state_store``, ``check_state_store_reopen``,
``check_message_bus``, ``STATE_STORE_CHECKS``, ``MESSAGE_BUS_CHECKS``, and for
durable flows the in-memory ``InMemoryJournal`` with its contract suite
``check_journal``, ``check_journal_reopen``, ``JOURNAL_CHECKS``, and for rate limits
``InMemoryRateLimiter`` (the in-process limiter; give it the ``FakeClock``) with the
contract suite ``check_rate_limiter``, ``RATE_LIMITER_CHECKS``. The pytest fixtures live in
``penguiflow.testkit.pytest_plugin`` so importing this package never imports
pytest.
"""

from __future__ import annotations

from penguiflow.ratelimit import InMemoryRateLimiter as InMemoryRateLimiter
from penguiflow.testkit._clock import FakeClock as FakeClock
from penguiflow.testkit._contracts import MESSAGE_BUS_CHECKS as MESSAGE_BUS_CHECKS
from penguiflow.testkit._contracts import STATE_STORE_CHECKS as STATE_STORE_CHECKS
from penguiflow.testkit._contracts import check_message_bus as check_message_bus
from penguiflow.testkit._contracts import check_state_store as check_state_store
from penguiflow.testkit._contracts import check_state_store_reopen as check_state_store_reopen
from penguiflow.testkit._events import EventRecorder as EventRecorder
from penguiflow.testkit._faults import FaultKind as FaultKind
from penguiflow.testkit._faults import FaultPlan as FaultPlan
from penguiflow.testkit._faults import FaultStatistics as FaultStatistics
from penguiflow.testkit._faults import InjectedFault as InjectedFault
from penguiflow.testkit._faults import SlowConsumer as SlowConsumer
from penguiflow.testkit._faults import kill_actor as kill_actor
from penguiflow.testkit._harness import (
    assert_node_sequence,
    assert_preserves_message_envelope,
    get_recorded_events,
    run_one,
)
from penguiflow.testkit._journal import InMemoryJournal as InMemoryJournal
from penguiflow.testkit._journal_contracts import JOURNAL_CHECKS as JOURNAL_CHECKS
from penguiflow.testkit._journal_contracts import check_journal as check_journal
from penguiflow.testkit._journal_contracts import check_journal_reopen as check_journal_reopen
from penguiflow.testkit._mailboxes import format_mailboxes as format_mailboxes
from penguiflow.testkit._mailboxes import inspect_mailboxes as inspect_mailboxes
from penguiflow.testkit._mailboxes import trace_counts as trace_counts
from penguiflow.testkit._mailboxes import wait_idle as wait_idle
from penguiflow.testkit._ratelimit_contracts import RATE_LIMITER_CHECKS as RATE_LIMITER_CHECKS
from penguiflow.testkit._ratelimit_contracts import check_rate_limiter as check_rate_limiter
from penguiflow.testkit._recorder import clear_recorded_events as clear_recorded_events
from penguiflow.testkit._remote import HOLD as HOLD
from penguiflow.testkit._remote import InMemoryRemoteTransport as InMemoryRemoteTransport
from penguiflow.testkit._remote import RemoteCancel as RemoteCancel
from penguiflow.testkit._simulate import SimulatedNodeFunc as SimulatedNodeFunc
from penguiflow.testkit._simulate import Simulation as Simulation
from penguiflow.testkit._simulate import simulate_error
from penguiflow.testkit._stores import InMemoryMessageBus as InMemoryMessageBus
from penguiflow.testkit._stores import InMemoryStateStore as InMemoryStateStore

__all__ = [  # noqa: RUF022 - the 2.2.5 order, pinned by the spec
    "run_one",
    "assert_node_sequence",
    "get_recorded_events",
    "simulate_error",
    "assert_preserves_message_envelope",
]
