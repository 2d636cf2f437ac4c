"""Mailbox.call_on_item: a stand-in waiting consumer for a dormant actor."""

from __future__ import annotations

import asyncio

from penguiflow.actors import Mailbox
from penguiflow.actors.mailbox import SYSTEM_LANE


def test_no_watch_on_a_mailbox_with_mail_or_closed() -> None:
    calls: list[str] = []
    box = Mailbox(4)
    box.put_nowait("x")
    assert box.call_on_item(lambda: calls.append("woken")) is None
    closed = Mailbox(4)
    closed.close()
    assert closed.call_on_item(lambda: calls.append("woken")) is None
    assert calls == []


def test_the_next_item_is_handed_to_the_watch_and_fn_runs_inside_the_put() -> None:
    calls: list[int] = []
    box = Mailbox(4, lanes=2)
    watch = box.call_on_item(lambda: calls.append(len(box)))
    assert watch is not None
    assert box.statistics().waiting_consumers == 1
    assert box.put_nowait("a", 1)
    assert calls == [1]  # synchronously, with the item counted
    assert watch.delivery is not None
    assert (watch.delivery.item, watch.delivery.lane) == ("a", 1)
    assert box.snapshot() == ()  # in transit
    assert box.put_nowait("b", 1)
    assert calls == [1]  # once
    assert watch.accept() == "a"
    assert box.last_lane == 1
    assert len(box) == 1
    assert box.snapshot() == ("b",)


def test_give_back_puts_the_item_in_front() -> None:
    box = Mailbox(4)
    watch = box.call_on_item(lambda: None)
    assert watch is not None
    box.put_system("stop")
    box.put_nowait("later")
    watch.give_back()
    watch.give_back()  # idempotent
    assert box.snapshot(SYSTEM_LANE) == ("stop",)
    assert len(box) == 2


def test_a_cancelled_watch_is_never_called() -> None:
    calls: list[str] = []
    box = Mailbox(4)
    watch = box.call_on_item(lambda: calls.append("woken"))
    assert watch is not None
    watch.cancel()
    watch.cancel()
    assert box.statistics().waiting_consumers == 0
    assert box.put_nowait("x")
    assert calls == []
    assert box.snapshot() == ("x",)


def test_close_and_fail_getters_call_fn_without_an_item() -> None:
    for fail in (lambda b: b.close(), lambda b: b.fail_getters(RuntimeError("gone"))):
        calls: list[str] = []
        box = Mailbox(4)
        watch = box.call_on_item(lambda calls=calls: calls.append("woken"))
        assert watch is not None
        fail(box)
        assert calls == ["woken"]
        assert watch.delivery is None


async def test_a_waiting_get_behind_the_watch_is_served_after_it() -> None:
    box = Mailbox(4)
    watch = box.call_on_item(lambda: None)
    assert watch is not None
    getter = asyncio.ensure_future(box.get())
    await asyncio.sleep(0)
    box.put_nowait("first")
    box.put_nowait("second")
    async with asyncio.timeout(5):
        assert (await getter).item == "second"
    assert watch.accept() == "first"
    assert len(box) == 0
