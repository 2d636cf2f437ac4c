"""ActorSystem: spawn (synchronous), lookup, shutdown, dead letters, external mailboxes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kernel_helpers import Recorder, until

from penguiflow.actors import ActorRef, DeadLetter, Mailbox
from penguiflow.errors import ActorStopped, SupervisionError
from penguiflow.supervision import ActorSystem, Supervisor


async def test_spawn_works_from_synchronous_code_in_the_loop() -> None:
    async with ActorSystem("sync") as system:
        refs: list[ActorRef] = []
        done = asyncio.Event()

        def sync_callback() -> None:
            refs.append(system.spawn(lambda: Recorder([]), name="from-sync"))
            done.set()

        asyncio.get_running_loop().call_soon(sync_callback)
        async with asyncio.timeout(5):
            await done.wait()
            assert await refs[0].ask("x") == "x"


async def test_lookup_finds_live_actors_only() -> None:
    async with ActorSystem("lookup") as system:
        ref = system.spawn(lambda: Recorder([]), name="a")
        assert system.lookup("a") is ref
        assert system.lookup("missing") is None
        async with asyncio.timeout(5):
            await ref.stop()
        assert system.lookup("a") is None


async def test_leaving_async_with_stops_every_actor() -> None:
    async with ActorSystem("bye") as system:
        refs = [system.spawn(lambda: Recorder([]), name=str(i)) for i in range(3)]
    assert not any(ref.alive for ref in refs)
    assert not system.root.running


async def test_spawn_after_shutdown_raises() -> None:
    system = ActorSystem("closed")
    system.spawn(lambda: Recorder([]), name="a")
    await system.shutdown()
    with pytest.raises(SupervisionError):
        system.spawn(lambda: Recorder([]), name="b")


async def test_spawn_under_a_given_supervisor() -> None:
    async with ActorSystem("tree") as system:
        team = Supervisor("one_for_all", name="team")
        system.root.start_child_nowait(_spec("team", team))
        ref = system.spawn(lambda: Recorder([]), name="member", supervisor=team)
        assert [i.id for i in team.which_children()] == ["member"]
        assert system.lookup("member") is ref


async def test_spawn_of_a_supervisor_factory_is_rejected() -> None:
    async with ActorSystem("wrong") as system:
        with pytest.raises(TypeError):
            system.spawn(lambda: Supervisor(), name="sup")


async def test_external_mailbox_is_not_closed_when_the_actor_stops() -> None:
    box = Mailbox(8)
    dead: list[DeadLetter] = []
    async with ActorSystem("ext", on_dead_letter=dead.append) as system:
        gate, entered = asyncio.Event(), asyncio.Event()
        ref = system.spawn(lambda: Recorder([], gate, entered), name="ext", mailbox=box)
        assert ref.mailbox is box
        async with asyncio.timeout(5):
            await ref.tell("wait")
            await entered.wait()
            await box.put("kept for the next owner")
            pending = asyncio.create_task(ref.ask("an ask fails"))
            await until(lambda: box.depth() == 2)
            stopping = asyncio.create_task(ref.stop())
            await until(lambda: box.statistics().system_depth == 1)
            gate.set()
            await stopping
            with pytest.raises(ActorStopped):
                await pending
    assert not box.closed
    assert box.snapshot() == ("kept for the next owner",)
    assert box.statistics().system_depth == 0
    assert [d.message for d in dead] == ["an ask fails"]


async def test_dead_letter_counter_counts_without_a_hook() -> None:
    async with ActorSystem("count") as system:
        ref = system.spawn(lambda: Recorder([]), name="a")
        await ref.stop()
        for _ in range(2):
            with pytest.raises(ActorStopped):
                ref.try_tell("x")
        assert system.dead_letters == 2


async def test_repr_mentions_name() -> None:
    system = ActorSystem("shown")
    assert "shown" in repr(system)
    await system.shutdown()


def _spec(name: str, sup: Supervisor) -> Any:
    from penguiflow.supervision import ChildSpec

    return ChildSpec(name, lambda: sup)


async def test_restart_child_of_a_spawned_actor_registers_the_new_ref() -> None:
    async with ActorSystem("again") as system:
        old = system.spawn(lambda: Recorder([]), name="svc")
        await system.root.terminate_child("svc")
        assert system.lookup("svc") is None
        new = await system.root.restart_child("svc")
        assert system.lookup("svc") is new
        assert new is not old
