"""Mailbox: bounded lanes, FIFO hand-off, unbounded system/self lanes, cancellation safety."""

from __future__ import annotations

import asyncio

import pytest

from penguiflow.actors import Delivery, Mailbox, MailboxEmpty, MailboxStatistics
from penguiflow.actors.mailbox import SELF_LANE, SYSTEM_LANE
from penguiflow.errors import MailboxClosed


async def _settle() -> None:
    """Let every ready callback run (the scheduling contract is what is tested)."""
    for _ in range(5):
        await asyncio.sleep(0)


def test_lanes_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Mailbox(lanes=0)


async def test_items_come_out_in_fifo_order() -> None:
    box = Mailbox(8)
    for i in range(5):
        await box.put(i)
    got = [(await box.get()).item for _ in range(5)]
    assert got == [0, 1, 2, 3, 4]


async def test_get_returns_a_delivery_with_its_lane() -> None:
    box = Mailbox(4, lanes=2)
    await box.put("x", lane=1)
    assert await box.get() == Delivery("x", 1)


def test_put_nowait_returns_false_when_lane_full() -> None:
    box = Mailbox(2)
    assert box.put_nowait(1)
    assert box.put_nowait(2)
    assert not box.put_nowait(3)
    assert box.snapshot() == (1, 2)


def test_capacity_zero_or_negative_is_unbounded() -> None:
    box = Mailbox(0)
    for i in range(500):
        assert box.put_nowait(i)
    assert len(box) == 500


def test_lanes_are_bounded_independently() -> None:
    box = Mailbox(1, lanes=2)
    assert box.put_nowait("a", 0)
    assert box.put_nowait("b", 1)
    assert not box.put_nowait("c", 0)
    assert box.depth(0) == 1
    assert box.depth(1) == 1
    assert box.depth() == 2


async def test_put_waits_while_full_and_resumes_when_space_frees() -> None:
    box = Mailbox(1)
    await box.put(1)
    producer = asyncio.create_task(box.put(2))
    await _settle()
    assert not producer.done()
    assert box.statistics().waiting_producers == 1
    assert (await box.get()).item == 1
    async with asyncio.timeout(5):
        await producer
    assert box.snapshot() == (2,)


async def test_waiting_producers_are_served_in_arrival_order() -> None:
    box = Mailbox(1)
    await box.put(0)
    producers = [asyncio.create_task(box.put(i)) for i in range(1, 5)]
    await _settle()
    got = []
    async with asyncio.timeout(5):
        for _ in range(5):
            got.append((await box.get()).item)
        await asyncio.gather(*producers)
    assert got == [0, 1, 2, 3, 4]


async def test_put_nowait_does_not_barge_past_waiting_producers() -> None:
    box = Mailbox(1)
    await box.put(0)
    producer = asyncio.create_task(box.put(1))
    await _settle()
    box.get_nowait()  # frees the slot, granted to the waiting producer
    assert not box.put_nowait("barger")
    async with asyncio.timeout(5):
        await producer
    assert box.snapshot() == (1,)


async def test_cancelled_waiting_put_enqueues_nothing() -> None:
    box = Mailbox(1)
    await box.put(0)
    producer = asyncio.create_task(box.put("lost"))
    await _settle()
    producer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await producer
    box.get_nowait()
    assert box.snapshot() == ()
    assert box.statistics().waiting_producers == 0
    assert box.put_nowait("next")


async def test_put_cancelled_after_its_grant_passes_the_slot_on() -> None:
    box = Mailbox(1)
    await box.put(0)
    first = asyncio.create_task(box.put("first"))
    second = asyncio.create_task(box.put("second"))
    await _settle()
    box.get_nowait()  # grants the slot to `first`, which has not resumed yet
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    async with asyncio.timeout(5):
        await second
    assert box.snapshot() == ("second",)


async def test_waiting_get_receives_the_next_put() -> None:
    box = Mailbox(4)
    consumer = asyncio.create_task(box.get())
    await _settle()
    assert box.statistics().waiting_consumers == 1
    await box.put("hello")
    async with asyncio.timeout(5):
        assert (await consumer).item == "hello"
    assert len(box) == 0


async def test_item_handed_to_a_consumer_counts_until_it_resumes() -> None:
    """Same capacity semantics as asyncio.Queue: the hand-off is not free room."""
    box = Mailbox(1)
    consumer = asyncio.create_task(box.get())
    await _settle()
    assert box.put_nowait("a")
    assert not box.put_nowait("b")
    assert box.depth() == 1
    async with asyncio.timeout(5):
        await consumer
    assert box.depth() == 0
    assert box.put_nowait("b")


async def test_waiting_consumers_are_served_in_arrival_order() -> None:
    box = Mailbox(4)
    consumers = [asyncio.create_task(box.get()) for _ in range(3)]
    await _settle()
    for i in range(3):
        box.put_nowait(i)
    async with asyncio.timeout(5):
        got = [(await c).item for c in consumers]
    assert got == [0, 1, 2]


async def test_cancelled_waiting_get_takes_nothing() -> None:
    box = Mailbox(4)
    consumer = asyncio.create_task(box.get())
    await _settle()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert box.statistics().waiting_consumers == 0
    box.put_nowait("kept")
    assert box.snapshot() == ("kept",)


async def test_get_cancelled_after_hand_off_puts_the_item_back_in_front() -> None:
    box = Mailbox(4)
    consumer = asyncio.create_task(box.get())
    await _settle()
    box.put_nowait("handed")  # handed to `consumer`, which has not resumed
    box.put_nowait("second")
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert box.snapshot() == ("handed", "second")
    assert len(box) == 2


async def test_get_cancelled_after_hand_off_passes_item_to_next_consumer() -> None:
    box = Mailbox(4)
    first = asyncio.create_task(box.get())
    second = asyncio.create_task(box.get())
    await _settle()
    box.put_nowait("x")
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    async with asyncio.timeout(5):
        assert (await second).item == "x"


async def test_system_then_self_then_data_lanes() -> None:
    box = Mailbox(4)
    box.put_nowait("data")
    box.put_self("self")
    box.put_system("system")
    got = [box.get_nowait() for _ in range(3)]
    assert got == [
        Delivery("system", SYSTEM_LANE),
        Delivery("self", SELF_LANE),
        Delivery("data", 0),
    ]


def test_system_and_self_lanes_are_unbounded() -> None:
    box = Mailbox(1)
    for i in range(100):
        box.put_self(i)
        box.put_system(i)
    stats = box.statistics()
    assert (stats.self_depth, stats.system_depth) == (100, 100)


def test_data_lanes_are_served_round_robin() -> None:
    box = Mailbox(4, lanes=3)
    for lane in range(3):
        box.put_nowait(f"{lane}a", lane)
        box.put_nowait(f"{lane}b", lane)
    got = [box.get_nowait().item for _ in range(6)]
    assert got == ["0a", "1a", "2a", "0b", "1b", "2b"]


def test_get_restricted_to_lanes_skips_other_lanes_and_system() -> None:
    box = Mailbox(4, lanes=3)
    box.put_system("sys")
    box.put_nowait("zero", 0)
    box.put_nowait("two", 2)
    assert box.get_nowait(lanes=[2]) == Delivery("two", 2)
    with pytest.raises(MailboxEmpty):
        box.get_nowait(lanes=[1, 2])


async def test_restricted_waiting_get_only_receives_its_lanes() -> None:
    box = Mailbox(4, lanes=2)
    consumer = asyncio.create_task(box.get(lanes=[1]))
    await _settle()
    box.put_nowait("lane0", 0)
    box.put_system("sys")
    await _settle()
    assert not consumer.done()
    box.put_nowait("lane1", 1)
    async with asyncio.timeout(5):
        assert await consumer == Delivery("lane1", 1)


def test_get_nowait_on_empty_raises_mailbox_empty() -> None:
    box = Mailbox()
    with pytest.raises(MailboxEmpty):
        box.get_nowait()
    assert issubclass(MailboxEmpty, asyncio.QueueEmpty)


def test_requeue_front_bypasses_capacity() -> None:
    box = Mailbox(1)
    box.put_nowait("queued")
    box.requeue_front("again")
    assert box.snapshot() == ("again", "queued")


def test_requeue_front_on_system_lane() -> None:
    box = Mailbox(1)
    box.put_system("b")
    box.requeue_front("a", SYSTEM_LANE)
    assert box.snapshot(SYSTEM_LANE) == ("a", "b")


def test_unknown_negative_lane_is_rejected() -> None:
    with pytest.raises(IndexError):
        Mailbox().requeue_front("x", -7)


async def test_purge_removes_matches_and_wakes_producers() -> None:
    box = Mailbox(2, lanes=2)
    box.put_nowait(1, 0)
    box.put_nowait(2, 0)
    box.put_nowait(3, 1)
    producer = asyncio.create_task(box.put(4, 0))
    await _settle()
    removed = box.purge(lambda item: item % 2 == 1)
    assert removed == [Delivery(1, 0), Delivery(3, 1)]
    async with asyncio.timeout(5):
        await producer
    assert box.snapshot() == (2, 4)
    assert len(box) == 2


def test_purge_leaves_system_and_self_lanes_alone() -> None:
    box = Mailbox()
    box.put_system("x")
    box.put_self("x")
    assert box.purge(lambda item: True) == []
    assert len(box) == 2


def test_close_returns_leftovers_in_lane_order() -> None:
    box = Mailbox(4, lanes=2)
    box.put_nowait("d1", 1)
    box.put_nowait("d0", 0)
    box.put_self("s")
    box.put_system("y")
    assert box.close() == [
        Delivery("y", SYSTEM_LANE),
        Delivery("s", SELF_LANE),
        Delivery("d0", 0),
        Delivery("d1", 1),
    ]
    assert len(box) == 0
    assert box.closed


async def test_put_after_close_raises_mailbox_closed() -> None:
    box = Mailbox()
    box.close()
    with pytest.raises(MailboxClosed):
        await box.put(1)
    with pytest.raises(MailboxClosed):
        box.put_nowait(1)
    with pytest.raises(MailboxClosed):
        box.put_system(1)
    with pytest.raises(MailboxClosed):
        box.put_self(1)
    with pytest.raises(MailboxClosed):
        await box.get()
    with pytest.raises(MailboxClosed):
        box.get_nowait()


async def test_close_wakes_waiting_producers_and_consumers() -> None:
    full = Mailbox(1)
    full.put_nowait(0)
    producer = asyncio.create_task(full.put(1))
    empty = Mailbox(1)
    consumer = asyncio.create_task(empty.get())
    await _settle()
    full.close()
    empty.close()
    async with asyncio.timeout(5):
        with pytest.raises(MailboxClosed):
            await producer
        with pytest.raises(MailboxClosed):
            await consumer


async def test_item_moved_in_before_close_is_a_leftover() -> None:
    box = Mailbox(1)
    box.put_nowait(0)
    producer = asyncio.create_task(box.put(1))
    await _settle()
    box.get_nowait()  # moves the waiting producer's item into the lane
    assert box.close() == [Delivery(1, 0)]
    async with asyncio.timeout(5):
        await producer


async def test_waiting_producer_item_is_moved_in_without_a_task_switch() -> None:
    box = Mailbox(1)
    box.put_nowait(0)
    producer = asyncio.create_task(box.put(1))
    await _settle()
    assert box.get_nowait().item == 0
    assert box.get_nowait().item == 1  # the producer has not even resumed yet
    async with asyncio.timeout(5):
        await producer


async def test_put_cancelled_after_its_item_was_taken_completes_and_rearms_cancel() -> None:
    """The put happened, so it returns; the cancellation arrives at the next await."""
    box = Mailbox(1)
    box.put_nowait(0)
    steps: list[str] = []

    async def produce() -> None:
        await box.put(1)
        steps.append("put returned")
        await asyncio.sleep(0)
        steps.append("not reached")

    producer = asyncio.create_task(produce())
    await _settle()
    box.get_nowait()
    assert box.get_nowait().item == 1  # consumed before the producer resumed
    producer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await producer
    assert steps == ["put returned"]
    assert len(box) == 0


async def test_cancelling_a_put_woken_by_close_is_clean() -> None:
    box = Mailbox(1)
    box.put_nowait(0)
    producer = asyncio.create_task(box.put(1))
    await _settle()
    box.close()
    producer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await producer


async def test_cancelling_a_get_woken_by_close_is_clean() -> None:
    box = Mailbox(1)
    consumer = asyncio.create_task(box.get())
    await _settle()
    box.close()
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer


def test_requeue_after_close_is_returned_by_next_close() -> None:
    box = Mailbox()
    box.close()
    box.requeue_front("late")
    assert box.close() == [Delivery("late", 0)]


def test_snapshot_is_a_copy_without_side_effects() -> None:
    box = Mailbox(4, lanes=2)
    box.put_nowait("a", 0)
    box.put_nowait("b", 1)
    box.put_system("s")
    assert box.snapshot() == ("a", "b")
    assert box.snapshot(1) == ("b",)
    assert box.snapshot(SYSTEM_LANE) == ("s",)
    assert len(box) == 3


def test_statistics_is_a_frozen_record() -> None:
    box = Mailbox(3, lanes=2)
    box.put_nowait("a", 1)
    box.put_self("s")
    stats = box.statistics()
    assert stats == MailboxStatistics(
        depths=(0, 1),
        capacity=3,
        system_depth=0,
        self_depth=1,
        waiting_producers=0,
        waiting_consumers=0,
        closed=False,
    )
    with pytest.raises(AttributeError):
        stats.capacity = 9  # type: ignore[misc]


async def test_wait_empty_returns_once_everything_was_taken() -> None:
    box = Mailbox(4)
    box.put_nowait(1)
    box.put_system(2)
    waiter = asyncio.create_task(box.wait_empty())
    await _settle()
    box.get_nowait()
    await _settle()
    assert not waiter.done()
    box.get_nowait()
    async with asyncio.timeout(5):
        await waiter


async def test_wait_empty_on_empty_mailbox_returns_at_once() -> None:
    async with asyncio.timeout(5):
        await Mailbox().wait_empty()


async def test_wait_empty_counts_items_in_transit() -> None:
    box = Mailbox(4)
    consumer = asyncio.create_task(box.get())
    await _settle()
    box.put_nowait("x")
    waiter = asyncio.create_task(box.wait_empty())
    async with asyncio.timeout(5):
        await consumer
        await waiter


async def test_wait_empty_is_woken_by_purge_and_close() -> None:
    box = Mailbox(4)
    box.put_nowait(1)
    purged = asyncio.create_task(box.wait_empty())
    await _settle()
    box.purge(lambda item: True)
    async with asyncio.timeout(5):
        await purged
    box.put_nowait(2)
    closed = asyncio.create_task(box.wait_empty())
    await _settle()
    box.close()
    async with asyncio.timeout(5):
        await closed


async def test_cancelled_wait_empty_leaves_no_waiter() -> None:
    box = Mailbox(4)
    box.put_nowait(1)
    waiter = asyncio.create_task(box.wait_empty())
    await _settle()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert box._empty_waiters == []


async def test_scheduling_contract_of_a_capacity_one_edge() -> None:
    """runtime.md 9a: the consumer holds its item outside the lane while it works."""
    box = Mailbox(1)
    started = asyncio.Event()
    release = asyncio.Event()

    async def worker() -> None:
        while True:
            await box.get()
            started.set()
            await release.wait()

    task = asyncio.create_task(worker())
    try:
        await _settle()
        await box.put("a")
        first = asyncio.create_task(box.put("b"))
        second = asyncio.create_task(box.put("c"))
        await asyncio.sleep(0)
        assert first.done()
        assert not second.done()
        assert started.is_set()
        second.cancel()
        with pytest.raises(asyncio.CancelledError):
            await second
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_repr_mentions_capacity_and_size() -> None:
    box = Mailbox(3)
    box.put_nowait(1)
    assert "capacity=3" in repr(box)
    assert "size=1" in repr(box)


async def test_put_to_a_negative_lane_is_rejected() -> None:
    box = Mailbox(4, lanes=2)
    with pytest.raises(IndexError):
        box.put_nowait("x", -1)
    with pytest.raises(IndexError):
        await box.put("x", -2)
    with pytest.raises(IndexError):
        box.put_nowait("x", 2)


def test_purge_of_chosen_lanes_includes_self_and_system() -> None:
    box = Mailbox(4, lanes=2)
    box.put_self("s1")
    box.put_system("y1")
    box.put_nowait("a1", 0)
    box.put_nowait("b1", 1)
    removed = box.purge(lambda item: True, lanes=(SELF_LANE, SYSTEM_LANE, 1))
    assert removed == [Delivery("s1", SELF_LANE), Delivery("y1", SYSTEM_LANE), Delivery("b1", 1)]
    assert len(box) == 1
    assert box.get_nowait() == Delivery("a1", 0)


def test_purge_of_an_unknown_lane_is_rejected() -> None:
    with pytest.raises(IndexError):
        Mailbox(4).purge(lambda item: True, lanes=(-7,))


async def test_purge_of_a_chosen_data_lane_admits_its_waiting_producer() -> None:
    box = Mailbox(1)
    box.put_nowait("a")
    producer = asyncio.create_task(box.put("b"))
    await _settle()
    assert box.purge(lambda item: item == "a", lanes=(0,)) == [Delivery("a", 0)]
    async with asyncio.timeout(5):
        await producer
    assert box.snapshot() == ("b",)


async def test_fail_getters_wakes_waiting_consumers_with_the_error() -> None:
    box = Mailbox(4)
    first = asyncio.create_task(box.get())
    second = asyncio.create_task(box.get(lanes=[0]))
    await _settle()
    assert box.fail_getters(LookupError("gone")) == 2
    async with asyncio.timeout(5):
        for getter in (first, second):
            with pytest.raises(LookupError, match="gone"):
                await getter
    box.put_nowait("later")  # the mailbox stays open for later items
    assert box.get_nowait() == Delivery("later", 0)


def test_fail_getters_without_waiting_consumers_is_a_no_op() -> None:
    box = Mailbox(4)
    box.put_nowait("kept")
    assert box.fail_getters(LookupError("gone")) == 0
    assert box.snapshot() == ("kept",)


def test_self_lanes_of_two_mailboxes_are_separate() -> None:
    first, second = Mailbox(4), Mailbox(4)
    first.put_self("mine")
    second.requeue_front("theirs", SELF_LANE)
    assert first.snapshot(SELF_LANE) == ("mine",)
    assert second.snapshot(SELF_LANE) == ("theirs",)
    assert first.get_nowait() == Delivery("mine", SELF_LANE)


async def test_waiting_producer_queue_is_per_lane() -> None:
    first, second = Mailbox(1), Mailbox(1)
    first.put_nowait("a")
    blocked = asyncio.create_task(first.put("b"))
    await _settle()
    assert first.statistics().waiting_producers == 1
    assert second.statistics().waiting_producers == 0
    assert second.put_nowait("c")
    assert first.get_nowait() == Delivery("a", 0)
    async with asyncio.timeout(5):
        await blocked


def test_poll_serves_data_lanes_round_robin() -> None:
    box = Mailbox(4, lanes=2)
    box.put_nowait("a1", 1)
    box.put_nowait("b0", 0)
    box.put_nowait("c1", 1)
    taken = []
    for _ in range(3):
        taken.append((box.poll(), box.last_lane))
    assert taken == [("b0", 0), ("a1", 1), ("c1", 1)]
    assert box.poll() is Mailbox.NOTHING
    assert len(box) == 0


def test_poll_leaves_system_and_self_lanes_to_next() -> None:
    box = Mailbox(4, lanes=2)
    box.put_nowait("data", 0)
    box.put_self("self")
    assert box.poll() is Mailbox.NOTHING  # the self lane comes first: next() serves it
    assert box.close() == [Delivery("self", SELF_LANE), Delivery("data", 0)]
    assert box.poll() is Mailbox.NOTHING


async def test_poll_admits_producers_and_wakes_empty_waiters() -> None:
    box = Mailbox(1, lanes=2)
    box.put_nowait("a", 1)
    producer = asyncio.create_task(box.put("b", 1))
    await _settle()
    assert box.poll() == "a"
    async with asyncio.timeout(5):
        await producer
    emptied = asyncio.create_task(box.wait_empty())
    await _settle()
    assert box.poll() == "b"
    async with asyncio.timeout(5):
        await emptied


async def test_poll_skips_items_already_handed_over() -> None:
    box = Mailbox(4, lanes=2)
    getter = asyncio.create_task(box.get())
    await _settle()
    box.put_nowait("x", 1)  # handed to the waiting getter: in transit, still counted
    assert len(box) == 1
    assert box.poll() is Mailbox.NOTHING
    async with asyncio.timeout(5):
        assert await getter == Delivery("x", 1)


async def test_next_takes_the_self_lane_and_waits_for_data() -> None:
    box = Mailbox(4, lanes=2)
    box.put_self("loop")
    assert await box.next() == "loop"
    assert box.last_lane == SELF_LANE
    waiting = asyncio.create_task(box.next())
    await _settle()
    box.put_nowait("later", 1)
    async with asyncio.timeout(5):
        assert await waiting == "later"
    assert box.last_lane == 1


def test_poll_takes_queued_data_items_in_order_then_reports_nothing() -> None:
    box = Mailbox(4)
    box.put_nowait("a")
    box.put_nowait("b")
    assert [box.poll(), box.poll()] == ["a", "b"]
    assert box.poll() is Mailbox.NOTHING
    assert len(box) == 0


async def test_poll_leaves_a_self_lane_item_to_get() -> None:
    box = Mailbox(4)
    box.put_nowait("data")
    box.put_self("first")
    assert box.poll() is Mailbox.NOTHING
    async with asyncio.timeout(5):
        assert (await box.get()).item == "first"
    assert box.poll() == "data"
