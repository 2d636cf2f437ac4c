"""The public surface of ``penguiflow.testkit`` (2.2.5 names plus the 3.0 additions)."""

from __future__ import annotations

import subprocess
import sys

import penguiflow
import penguiflow.testkit as testkit

V225_NAMES = [
    "run_one",
    "assert_node_sequence",
    "get_recorded_events",
    "simulate_error",
    "assert_preserves_message_envelope",
]

ADDITIONS = [
    "FakeClock",
    "EventRecorder",
    "inspect_mailboxes",
    "wait_idle",
    "format_mailboxes",
    "trace_counts",
    "clear_recorded_events",
    "Simulation",
    "SimulatedNodeFunc",
    "InMemoryStateStore",
    "InMemoryMessageBus",
    "InMemoryRemoteTransport",
    "HOLD",
    "RemoteCancel",
    "check_state_store",
    "check_state_store_reopen",
    "check_message_bus",
    "STATE_STORE_CHECKS",
    "MESSAGE_BUS_CHECKS",
    "InMemoryJournal",
    "check_journal",
    "check_journal_reopen",
    "JOURNAL_CHECKS",
    "InMemoryRateLimiter",
    "check_rate_limiter",
    "RATE_LIMITER_CHECKS",
]


def test_all_is_exactly_the_225_list() -> None:
    assert testkit.__all__ == V225_NAMES


def test_every_name_is_importable() -> None:
    for name in V225_NAMES + ADDITIONS:
        assert getattr(testkit, name) is not None, name


def test_reachable_from_the_top_level_package() -> None:
    from penguiflow import testkit as imported

    assert penguiflow.testkit is testkit
    assert imported is testkit


def test_importing_the_testkit_does_not_import_pytest() -> None:
    code = "import sys, penguiflow.testkit; print('pytest' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"
