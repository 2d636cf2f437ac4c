"""Property: across any pattern of crashes, every told message ends exactly once,
processed (in order) or dead-lettered as poison; none is lost or duplicated."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from penguiflow.actors import Actor, ActorContext, DeadLetter
from penguiflow.supervision import ActorSystem


async def _scenario(crashes: list[int]) -> None:
    done = asyncio.Event()
    processed: list[int] = []
    attempts: dict[int, int] = {}
    dead: list[DeadLetter] = []
    expected_ok = [i for i, c in enumerate(crashes) if c < 3]
    expected_dead = [i for i, c in enumerate(crashes) if c >= 3]

    def check_done() -> None:
        if len(processed) + len(dead) == len(crashes):
            done.set()

    class Flaky(Actor):
        poison_limit = 3

        async def receive(self, message: Any, ctx: ActorContext) -> None:
            attempts[message] = attempts.get(message, 0) + 1
            if attempts[message] <= crashes[message]:
                raise RuntimeError(f"crash {attempts[message]} on {message}")
            processed.append(message)
            check_done()

    def on_dead(letter: DeadLetter) -> None:
        dead.append(letter)
        check_done()

    async with ActorSystem("prop", on_dead_letter=on_dead, intensity=10_000) as system:
        ref = system.spawn(Flaky, name="flaky", capacity=4)
        async with asyncio.timeout(5):
            for i in range(len(crashes)):
                await ref.tell(i)
            if crashes:
                await done.wait()
    assert processed == expected_ok
    assert [d.message for d in dead] == expected_dead
    assert all(d.reason == "poison" for d in dead)


@settings(max_examples=60, deadline=None)
@given(crashes=st.lists(st.integers(0, 4), max_size=12))
def test_every_message_ends_exactly_once(crashes: list[int]) -> None:
    asyncio.run(_scenario(crashes))
