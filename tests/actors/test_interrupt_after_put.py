"""An interrupt that arrives just after a handler's blocked put completed stays with it.

``Mailbox.put`` re-arms a cancellation that arrives after a consumer already
took its item (the put happened; the cancellation must not be lost). When that
cancellation is an interrupt and the handler then returns without another
await, the re-armed cancellation must not land in the *next* message's handler:
it would abort a message nobody interrupted (a trace cancel hitting a trace
that was not cancelled).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from penguiflow.actors import Actor, ActorContext, Mailbox
from penguiflow.actors.mailbox import absorb_rearmed_cancel
from penguiflow.supervision import ActorSystem


async def test_an_interrupt_after_a_completed_put_does_not_reach_the_next_message(
    system: ActorSystem,
) -> None:
    downstream = Mailbox(capacity=1)
    downstream.put_nowait("filler")  # full: the handler's put waits
    waiting = asyncio.Event()
    log: list[Any] = []

    class Forwarder(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            if message == "first":
                waiting.set()
                await downstream.put("out")  # blocks until a consumer takes "filler"
                log.append("first sent")
                return "first done"  # no await after the put
            await asyncio.sleep(0)  # any await: a stray cancellation would land here
            log.append(f"{message} handled")
            return message

        async def on_interrupt(self, message: Any, reason: object, ctx: ActorContext) -> None:
            log.append(("interrupted", message))

    ref = system.spawn(Forwarder, name="forwarder")
    async with asyncio.timeout(5):
        first = asyncio.create_task(ref.ask("first"))
        await waiting.wait()
        # The next message is queued already: the actor takes it without waiting.
        second = asyncio.create_task(ref.ask("second"))
        await asyncio.sleep(0)  # the handler is parked in its put; "second" is queued
        # The consumer takes the filler, then the parked put's item: that put is
        # done for good (nothing to retract) and the handler is due to resume.
        # Before it runs, it is interrupted.
        assert downstream.poll() == "filler"
        assert downstream.poll() == "out"
        assert ref.interrupt("cancel the first message")
        assert await first == "first done"
        assert await second == "second"
    assert log == ["first sent", "second handled"]
    assert ref.incarnation == 1  # no stray cancellation took the actor down either
    assert ref.task is not None
    assert ref.task.cancelling() == 0


async def _armed_then(count_left: int) -> str:
    """Arm a cancellation the way put re-arms one, with ``count_left`` requests left."""
    task = asyncio.current_task()
    assert task is not None
    task.cancel()  # armed for the next suspension point
    if count_left == 0:
        task.uncancel()  # the canceller let go (3.11: still armed)
    await absorb_rearmed_cancel()
    await asyncio.sleep(0)  # nothing stray is left for later awaits
    return "went on"


async def test_absorb_drops_a_cancellation_its_canceller_let_go_of() -> None:
    async with asyncio.timeout(5):
        assert await asyncio.create_task(_armed_then(0)) == "went on"


async def test_absorb_lets_a_requested_cancellation_through() -> None:
    task = asyncio.create_task(_armed_then(1))
    async with asyncio.timeout(5):
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_absorb_returns_when_nothing_is_armed() -> None:
    async with asyncio.timeout(5):
        await absorb_rearmed_cancel()
