"""Kernel logging: structured lifecycle records, DEBUG per message only when enabled,
and silence when the application configured nothing."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from kernel_helpers import Recorder

from penguiflow.errors import ActorCrashed
from penguiflow.supervision import ActorSystem


def _records(caplog: pytest.LogCaptureFixture, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == event]


async def test_lifecycle_events_carry_key_value_context(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="penguiflow")
    async with ActorSystem("logs") as system:
        ref = system.spawn(lambda: Recorder([]), name="worker")
        async with asyncio.timeout(5):
            with pytest.raises(ActorCrashed):
                await ref.ask("boom")
            await ref.ask("ok")
    started = _records(caplog, "actor_started")[0]
    assert (started.actor, started.incarnation) == ("worker", 1)  # type: ignore[attr-defined]
    restarted = _records(caplog, "actor_restarted")[0]
    assert restarted.incarnation == 2  # type: ignore[attr-defined]
    crashed = _records(caplog, "child_crashed")[0]
    assert crashed.levelno == logging.ERROR
    assert crashed.exc_info is not None
    stopped = _records(caplog, "actor_stopped")[0]
    assert stopped.reason == "shutdown"  # type: ignore[attr-defined]


async def test_dead_letter_is_a_warning_with_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="penguiflow")
    async with ActorSystem("logs") as system:
        ref = system.spawn(lambda: Recorder([]), name="gone")
        await ref.stop()
        with pytest.raises(Exception, match="stopped"):
            ref.try_tell(42)
    record = _records(caplog, "dead_letter")[0]
    assert record.levelno == logging.WARNING
    assert (record.actor, record.reason, record.message_type) == (  # type: ignore[attr-defined]
        "gone",
        "stopped",
        "int",
    )


async def test_per_message_debug_events_only_when_debug_is_enabled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="penguiflow")
    async with ActorSystem("quiet") as system:
        ref = system.spawn(lambda: Recorder([]), name="quiet")
        await ref.ask("x")
    assert _records(caplog, "actor_message") == []

    caplog.set_level(logging.DEBUG, logger="penguiflow.actors")
    async with ActorSystem("chatty") as system:
        ref = system.spawn(lambda: Recorder([]), name="chatty")
        await ref.ask("x")
    records = _records(caplog, "actor_message")
    assert len(records) == 1
    assert records[0].levelno == logging.DEBUG
    assert records[0].actor == "chatty"  # type: ignore[attr-defined]


async def test_unconfigured_logging_prints_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulate an application that configured nothing: no root handlers at all.
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    async with ActorSystem("silent") as system:
        ref = system.spawn(lambda: Recorder([]), name="silent")
        with pytest.raises(ActorCrashed):
            await ref.ask("boom")
        await ref.stop()
        with pytest.raises(Exception, match="stopped"):
            ref.try_tell("x")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_library_does_not_configure_structlog() -> None:
    import structlog

    before: Any = structlog.get_config()
    import penguiflow.actors
    import penguiflow.supervision

    assert structlog.get_config() == before
    assert penguiflow.actors.__name__ == "penguiflow.actors"
