"""Actors: lifecycle hooks, tell/ask, redelivery after a crash, interrupt, dead letters."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from kernel_helpers import Recorder, until

from penguiflow.actors import Actor, ActorContext, DeadLetter
from penguiflow.errors import ActorCrashed, ActorInterrupted, ActorStopped
from penguiflow.supervision import ActorSystem


class Hooks(Actor):
    """Records lifecycle hooks into a shared list."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    async def on_start(self, ctx: ActorContext) -> None:
        self.events.append(f"start#{ctx.incarnation}")

    async def receive(self, message: Any, ctx: ActorContext) -> Any:
        self.events.append(f"receive:{message}")
        if message == "crash":
            raise RuntimeError("crash")
        if message == "exit":
            ctx.stop("done")
        return message

    async def on_stop(self, reason: object) -> None:
        self.events.append(f"stop:{reason}")

    async def on_restart(self, reason: object) -> None:
        self.events.append(f"restart:{type(reason).__name__}")


async def test_ask_returns_what_receive_returns(system: ActorSystem) -> None:
    ref = system.spawn(lambda: Recorder([]), name="echo")
    async with asyncio.timeout(5):
        assert await ref.ask("hi") == "hi"


async def test_tell_delivers_in_order(system: ActorSystem) -> None:
    log: list[Any] = []
    ref = system.spawn(lambda: Recorder(log), name="rec")
    async with asyncio.timeout(5):
        for i in range(5):
            await ref.tell(i)
        await ref.ask("sync")
    assert log == [0, 1, 2, 3, 4, "sync"]


async def test_on_start_runs_before_first_message(system: ActorSystem) -> None:
    events: list[str] = []
    ref = system.spawn(lambda: Hooks(events), name="hooks")
    async with asyncio.timeout(5):
        await ref.ask("x")
    assert events == ["start#1", "receive:x"]


async def test_stop_runs_on_stop_and_marks_ref_dead(system: ActorSystem) -> None:
    events: list[str] = []
    ref = system.spawn(lambda: Hooks(events), name="hooks")
    async with asyncio.timeout(5):
        await ref.ask("x")
        await ref.stop()
    assert events[-1] == "stop:stopped"
    assert not ref.alive
    assert system.lookup("hooks") is None


async def test_tell_to_stopped_actor_raises_and_dead_letters(
    system: ActorSystem, dead: list[DeadLetter]
) -> None:
    ref = system.spawn(lambda: Recorder([]), name="gone")
    async with asyncio.timeout(5):
        await ref.stop()
        with pytest.raises(ActorStopped):
            await ref.tell("late")
    with pytest.raises(ActorStopped):
        ref.try_tell("later")
    assert [d.message for d in dead] == ["late", "later"]
    assert system.dead_letters == 2


async def test_ask_to_stopped_actor_raises_actor_stopped(system: ActorSystem) -> None:
    ref = system.spawn(lambda: Recorder([]), name="gone")
    async with asyncio.timeout(5):
        await ref.stop()
        with pytest.raises(ActorStopped):
            await ref.ask("late")


async def test_queued_messages_become_dead_letters_and_asks_fail_on_stop(
    system: ActorSystem, dead: list[DeadLetter]
) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    log: list[Any] = []
    ref = system.spawn(lambda: Recorder(log, gate, entered), name="busy")
    async with asyncio.timeout(5):
        await ref.tell("wait")
        await entered.wait()
        pending_ask = asyncio.create_task(ref.ask("queued-ask"))
        await ref.tell("queued-tell")
        await until(lambda: ref.mailbox.depth() == 2)
        stopping = asyncio.create_task(ref.stop())
        await until(lambda: ref.mailbox.statistics().system_depth == 1)
        gate.set()
        await stopping
        with pytest.raises(ActorStopped):
            await pending_ask
    assert log == ["wait"]
    assert sorted(d.message for d in dead) == ["queued-ask", "queued-tell"]
    assert all(d.reason == "stopped" for d in dead)


async def test_try_tell_returns_false_when_full(system: ActorSystem) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    ref = system.spawn(lambda: Recorder([], gate, entered), name="slow", capacity=1)
    async with asyncio.timeout(5):
        await ref.tell("wait")
        await entered.wait()
        assert ref.try_tell("one")
        assert not ref.try_tell("two")
        gate.set()


async def test_tell_waits_while_full(system: ActorSystem) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    ref = system.spawn(lambda: Recorder([], gate, entered), name="slow", capacity=1)
    async with asyncio.timeout(5):
        await ref.tell("wait")
        await entered.wait()
        await ref.tell("queued")
        blocked = asyncio.create_task(ref.tell("blocked"))
        await until(lambda: ref.mailbox.statistics().waiting_producers == 1)
        assert not blocked.done()
        gate.set()
        await blocked


async def test_ask_gets_actor_crashed_with_cause(system: ActorSystem) -> None:
    ref = system.spawn(lambda: Recorder([]), name="crashy")
    async with asyncio.timeout(5):
        with pytest.raises(ActorCrashed) as info:
            await ref.ask("boom")
    assert isinstance(info.value.__cause__, RuntimeError)
    assert info.value.actor == "crashy"


async def test_a_tell_that_crashes_a_plain_actor_is_dead_lettered_and_the_queue_kept(
    system: ActorSystem, dead: list[DeadLetter]
) -> None:
    seen: list[tuple[int, Any]] = []
    gate, entered = asyncio.Event(), asyncio.Event()

    class CrashOnce(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            seen.append((ctx.incarnation, message))
            if message == "wait" and ctx.incarnation == 1:
                entered.set()
                await gate.wait()
                raise RuntimeError("crash with messages queued behind")
            return message

    ref = system.spawn(CrashOnce, name="worker", restart="permanent")
    async with asyncio.timeout(5):
        await ref.tell("wait")
        await entered.wait()
        await ref.tell("x1")
        await ref.tell("x2")
        assert ref.mailbox.snapshot() == ("x1", "x2")
        gate.set()
        await ref.ask("sync")
    # One restart; the crashing message died with incarnation 1 (as in OTP and Akka).
    assert seen == [(1, "wait"), (2, "x1"), (2, "x2"), (2, "sync")]
    assert ref.incarnation == 2
    assert dead == [DeadLetter("worker", "wait", "crashed")]


async def test_poison_limit_above_one_opts_into_redelivery_to_the_next_incarnation(
    system: ActorSystem, dead: list[DeadLetter]
) -> None:
    seen: list[tuple[int, Any]] = []

    class FailsFirst(Actor):
        poison_limit = 2

        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            seen.append((ctx.incarnation, message))
            if ctx.incarnation == 1 and message == "m1":
                raise RuntimeError("first incarnation fails on m1")
            return message

    ref = system.spawn(FailsFirst, name="redeliver")
    async with asyncio.timeout(5):
        await ref.tell("m1")
        await ref.tell("m2")
        assert await ref.ask("sync") == "sync"
    assert seen == [(1, "m1"), (2, "m1"), (2, "m2"), (2, "sync")]
    assert ref.incarnation == 2
    assert dead == []


async def test_poison_message_is_dead_lettered_after_limit(
    system: ActorSystem, dead: list[DeadLetter]
) -> None:
    log: list[Any] = []

    class Poisoned(Recorder):
        poison_limit = 2

    ref = system.spawn(lambda: Poisoned(log), name="poisoned")
    async with asyncio.timeout(5):
        await ref.tell("boom")
        await ref.tell("after")
        assert await ref.ask("sync") == "sync"
    assert log == ["boom", "boom", "after", "sync"]
    assert dead == [DeadLetter("poisoned", "boom", "poison")]


async def test_on_restart_is_called_on_the_old_instance(system: ActorSystem) -> None:
    events: list[str] = []
    instances: list[Hooks] = []

    def make() -> Hooks:
        instances.append(Hooks(events))
        return instances[-1]

    ref = system.spawn(make, name="hooks", restart="permanent")
    async with asyncio.timeout(5):
        with pytest.raises(ActorCrashed):
            await ref.ask("crash")
        await ref.ask("after")
    assert events == [
        "start#1",
        "receive:crash",
        "restart:RuntimeError",
        "start#2",
        "receive:after",
    ]
    assert len(instances) == 2


async def test_ctx_stop_is_a_normal_exit(system: ActorSystem) -> None:
    events: list[str] = []
    ref = system.spawn(lambda: Hooks(events), name="hooks", restart="transient")
    async with asyncio.timeout(5):
        await ref.tell("exit")
        await until(lambda: not ref.alive)
    assert events == ["start#1", "receive:exit", "stop:done"]


async def test_send_self_uses_the_unbounded_self_lane(system: ActorSystem) -> None:
    log: list[Any] = []

    class Looper(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            log.append((message, ctx.lane))
            if isinstance(message, int) and message < 100:
                ctx.send_self(message + 1)
            return message

    ref = system.spawn(Looper, name="looper", capacity=1)
    async with asyncio.timeout(5):
        await ref.tell(0)
        await until(lambda: len(log) == 101)
    assert [m for m, _ in log] == list(range(101))
    assert log[1][1] == -2


async def test_context_exposes_ref_system_and_current(system: ActorSystem) -> None:
    seen: dict[str, Any] = {}

    class Introspect(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            seen.update(ref=ctx.self_ref, system=ctx.system, current=ctx.current, log=ctx.log)
            return None

    ref = system.spawn(Introspect, name="intro")
    async with asyncio.timeout(5):
        await ref.ask("msg")
    assert seen["ref"] is ref
    assert seen["system"] is system
    assert seen["current"] == "msg"
    assert seen["log"] is not None


async def test_busy_is_true_while_handling(system: ActorSystem) -> None:
    gate, entered = asyncio.Event(), asyncio.Event()
    ref = system.spawn(lambda: Recorder([], gate, entered), name="slow")
    async with asyncio.timeout(5):
        assert not ref.busy
        await ref.tell("wait")
        await entered.wait()
        assert ref.busy
        gate.set()
        await ref.ask("sync")
    assert not ref.busy


async def test_interrupt_cancels_handler_and_continues(system: ActorSystem) -> None:
    events: list[Any] = []
    entered = asyncio.Event()

    class Slow(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            events.append(("receive", message))
            if message == "slow":
                entered.set()
                await asyncio.Event().wait()
            return message

        async def on_interrupt(self, message: Any, reason: object, ctx: ActorContext) -> None:
            events.append(("interrupted", message, reason))

    ref = system.spawn(Slow, name="slow")
    async with asyncio.timeout(5):
        await ref.tell("slow")
        await entered.wait()
        assert ref.interrupt("cancel-trace")
        assert await ref.ask("next") == "next"
    assert events == [
        ("receive", "slow"),
        ("interrupted", "slow", "cancel-trace"),
        ("receive", "next"),
    ]
    assert ref.incarnation == 1
    assert ref.task is not None
    assert ref.task.cancelling() == 0


async def test_interrupt_respects_when_predicate(system: ActorSystem) -> None:
    entered = asyncio.Event()
    gate = asyncio.Event()

    class Slow(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            entered.set()
            await gate.wait()
            return message

    ref = system.spawn(Slow, name="slow")
    async with asyncio.timeout(5):
        task = asyncio.create_task(ref.ask("a"))
        await entered.wait()
        assert not ref.interrupt("x", when=lambda m: m == "b")
        gate.set()
        assert await task == "a"


def test_interrupt_when_idle_returns_false() -> None:
    async def run() -> bool:
        async with ActorSystem("idle") as system:
            ref = system.spawn(lambda: Recorder([]), name="idle")
            await ref.ask("x")
            return ref.interrupt("nothing")

    assert asyncio.run(run()) is False


async def test_interrupted_ask_gets_actor_interrupted(system: ActorSystem) -> None:
    entered = asyncio.Event()

    class Slow(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            entered.set()
            await asyncio.Event().wait()

    ref = system.spawn(Slow, name="slow")
    async with asyncio.timeout(5):
        task = asyncio.create_task(ref.ask("a"))
        await entered.wait()
        assert ref.interrupt("why")
        with pytest.raises(ActorInterrupted) as info:
            await task
    assert info.value.reason == "why"


async def test_interrupt_swallowed_by_handler_is_balanced(system: ActorSystem) -> None:
    entered = asyncio.Event()

    class Stubborn(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            if message == "first":
                entered.set()
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    return "swallowed"  # bad practice, but must not wedge the actor
            return message

    ref = system.spawn(Stubborn, name="stubborn")
    async with asyncio.timeout(5):
        first = asyncio.create_task(ref.ask("first"))
        await entered.wait()
        assert ref.interrupt("x")
        assert await first == "swallowed"
        assert await ref.ask("second") == "second"
    assert ref.task is not None
    assert ref.task.cancelling() == 0


async def test_ask_timeout_uses_the_system_clock(system: ActorSystem, clock: Any) -> None:
    entered = asyncio.Event()
    gate = asyncio.Event()
    log: list[Any] = []

    class Slow(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            log.append(message)
            if message == "slow":
                entered.set()
                await gate.wait()
            return message

    ref = system.spawn(Slow, name="slow")
    async with asyncio.timeout(5):
        await ref.tell("slow")
        await entered.wait()
        asking = asyncio.create_task(ref.ask("late", timeout=30))
        await clock.wait_for_timers(1)
        clock.advance(30)
        with pytest.raises(TimeoutError):
            await asking
        gate.set()
        assert await ref.ask("after") == "after"
    assert log == ["slow", "after"]  # the abandoned ask was skipped


async def test_spawn_with_taken_name_raises(system: ActorSystem) -> None:
    from penguiflow.errors import AlreadyStarted

    system.spawn(lambda: Recorder([]), name="dup")
    with pytest.raises(AlreadyStarted):
        system.spawn(lambda: Recorder([]), name="dup")


async def test_factory_returning_non_actor_crashes_the_incarnation(system: ActorSystem) -> None:
    async def make() -> Any:
        return object()

    ref = system.spawn(make, name="bad", restart="temporary")
    assert ref.task is not None
    async with asyncio.timeout(5):
        await asyncio.wait({ref.task})
    assert isinstance(ref.task.exception(), TypeError)


async def test_async_factory_is_awaited(system: ActorSystem) -> None:
    async def make() -> Actor:
        return Recorder([])

    ref = system.spawn(make, name="async")
    async with asyncio.timeout(5):
        assert await ref.ask("x") == "x"


async def test_repr_of_ref_names_actor(system: ActorSystem) -> None:
    ref = system.spawn(lambda: Recorder([]), name="named")
    assert "named" in repr(ref)
    assert "named" in repr(system.lookup("named"))


async def test_actor_cannot_interrupt_its_own_handler(system: ActorSystem) -> None:
    results: list[bool] = []

    class SelfInterrupt(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            results.append(ctx.self_ref.interrupt("myself"))
            return message

    ref = system.spawn(SelfInterrupt, name="self")
    async with asyncio.timeout(5):
        assert await ref.ask(1) == 1
        assert await ref.ask(2) == 2
    assert results == [False, False]
    assert ref.incarnation == 1


async def test_interrupt_from_a_plain_thread_reaches_the_handler(system: ActorSystem) -> None:
    entered = asyncio.Event()
    interrupted = asyncio.Event()

    class Slow(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            entered.set()
            await asyncio.Event().wait()

        async def on_interrupt(self, message: Any, reason: object, ctx: ActorContext) -> None:
            interrupted.set()

    ref = system.spawn(Slow, name="slow")
    loop = asyncio.get_running_loop()
    async with asyncio.timeout(5):
        await ref.tell("x")
        await entered.wait()
        # Cancelling a task is not thread-safe; a thread hops onto the loop first.
        done = await asyncio.to_thread(
            lambda: asyncio.run_coroutine_threadsafe(_interrupt(ref), loop).result()
        )
        assert done
        await interrupted.wait()


async def _interrupt(ref: Any) -> bool:
    return bool(ref.interrupt("from a thread"))


async def test_handler_turning_an_interrupt_into_a_crash_restarts_cleanly(
    system: ActorSystem,
) -> None:
    entered = asyncio.Event()

    class Converts(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            if message == "slow" and ctx.incarnation == 1:
                entered.set()
                try:
                    await asyncio.Event().wait()
                except asyncio.CancelledError:
                    raise RuntimeError("converted") from None
            return message

    ref = system.spawn(Converts, name="converts")
    async with asyncio.timeout(5):
        await ref.tell("slow")
        await entered.wait()
        assert ref.interrupt("x")
        assert await ref.ask("after") == "after"
    assert ref.incarnation == 2
    assert ref.task is not None
    assert ref.task.cancelling() == 0


class BrokenInvariant(BaseException):
    """Not an ordinary error: the actor's state can no longer be trusted."""


async def test_base_exception_escaping_the_handler_is_a_crash(
    system: ActorSystem, dead: list[DeadLetter]
) -> None:
    seen: list[tuple[int, Any]] = []

    class Fragile(Actor):
        async def receive(self, message: Any, ctx: ActorContext) -> Any:
            seen.append((ctx.incarnation, message))
            if message == "corrupt" and ctx.incarnation == 1:
                raise BrokenInvariant("state corrupted")
            return message

    ref = system.spawn(Fragile, name="fragile")
    async with asyncio.timeout(5):
        await ref.tell("corrupt")
        assert await ref.ask("after") == "after"
    assert seen == [(1, "corrupt"), (2, "after")]
    assert dead == [DeadLetter("fragile", "corrupt", "crashed")]
