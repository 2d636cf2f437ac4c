"""tell_threadsafe: plain threads send with blocking backpressure over aiologic."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from kernel_helpers import Recorder, until

from penguiflow.actors import DeadLetter
from penguiflow.errors import ActorStopped, MailboxFull
from penguiflow.supervision import ActorSystem


async def test_messages_from_a_thread_arrive_in_order() -> None:
    log: list[Any] = []
    async with ActorSystem("threads") as system:
        ref = system.spawn(lambda: Recorder(log), name="sink", capacity=2)

        def producer() -> None:
            for i in range(50):
                ref.tell_threadsafe(i)

        async with asyncio.timeout(5):
            await asyncio.to_thread(producer)
            await until(lambda: len(log) == 50)
    assert log == list(range(50))


async def test_full_mailbox_blocks_the_thread_until_timeout() -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    async with ActorSystem("threads") as system:
        ref = system.spawn(lambda: Recorder([], gate, entered), name="slow", capacity=1)
        async with asyncio.timeout(5):
            await ref.tell("wait")
            await entered.wait()
            await ref.tell("fills the mailbox")
            # One item parks in the pump (waiting for room), one in the thread slot.
            await asyncio.to_thread(ref.tell_threadsafe, "parked in the pump")
            await until(lambda: ref.mailbox.statistics().waiting_producers == 1)
            await asyncio.to_thread(ref.tell_threadsafe, "in the thread slot")
            with pytest.raises(MailboxFull):
                await asyncio.to_thread(ref.tell_threadsafe, "no room", timeout=0)
            gate.set()


async def test_tell_threadsafe_inside_the_loop_is_refused() -> None:
    async with ActorSystem("threads") as system:
        ref = system.spawn(lambda: Recorder([]), name="a")
        with pytest.raises(RuntimeError, match="tell"):
            ref.tell_threadsafe("x")


async def test_tell_threadsafe_to_a_stopped_actor_raises() -> None:
    async with ActorSystem("threads") as system:
        ref = system.spawn(lambda: Recorder([]), name="a")
        await ref.stop()
        with pytest.raises(ActorStopped):
            await asyncio.to_thread(ref.tell_threadsafe, "late")


async def test_items_in_the_bridge_become_dead_letters_on_stop() -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    dead: list[DeadLetter] = []
    async with ActorSystem("threads", on_dead_letter=dead.append) as system:
        ref = system.spawn(lambda: Recorder([], gate, entered), name="slow", capacity=1)
        async with asyncio.timeout(5):
            await ref.tell("wait")
            await entered.wait()
            await ref.tell("queued")
            await asyncio.to_thread(ref.tell_threadsafe, "parked")
            await until(lambda: ref.mailbox.statistics().waiting_producers == 1)
            await asyncio.to_thread(ref.tell_threadsafe, "slot")
            stopping = asyncio.create_task(ref.stop())
            await until(lambda: ref.mailbox.statistics().system_depth == 1)
            gate.set()
            await stopping
    assert sorted(d.message for d in dead) == ["parked", "queued", "slot"]


async def test_bridge_is_created_once_across_threads() -> None:
    log: list[Any] = []
    async with ActorSystem("threads") as system:
        ref = system.spawn(lambda: Recorder(log), name="sink")
        barrier = threading.Barrier(4)

        def producer(n: int) -> None:
            barrier.wait()
            ref.tell_threadsafe(n)

        async with asyncio.timeout(5):
            await asyncio.gather(*(asyncio.to_thread(producer, n) for n in range(4)))
            await until(lambda: len(log) == 4)
    assert sorted(log) == [0, 1, 2, 3]
