"""A bounded, multi-lane, multi-producer mailbox built on ``collections.deque``.

This module stays whole past 400 lines: one data structure whose invariants
(below) every method must keep, with the hot paths inlined on purpose.

Why not ``asyncio.Queue``: a mailbox needs several bounded data lanes (one per
inbound edge), two unbounded lanes served first (system and self), strict FIFO
hand-off to waiting producers and consumers (no barging), ``purge`` and
``requeue_front``. Built directly on deques and futures it is also faster than
``asyncio.Queue`` on a same-loop pipeline (see ``benchmarks/kernel_mailbox.py``).
It is not thread-safe: threads go through ``ActorRef.tell_threadsafe``.

Invariants:

* A waiting consumer exists only while every lane it accepts is empty, so a new
  item is handed straight to the first waiting consumer that accepts its lane.
  Such an item is *in transit* until that consumer resumes: it still counts
  towards capacity, ``depth`` and ``len`` (exactly like an item sitting in an
  ``asyncio.Queue`` whose getter was woken but has not run yet).
* A waiting producer parks its item with its future. When capacity frees up
  the oldest parked item is moved into the lane at once (so the consumer never
  waits for the producer to be scheduled) and the producer is woken. A producer
  cancelled after that takes its item back out if it is still queued (nothing
  enqueued, ``CancelledError`` raised); if a consumer already took it, the put
  has completed: ``put`` returns and the cancellation is re-armed, so it is
  delivered at the task's next suspension point instead of being lost.
* A consumer cancelled after an item was handed to it puts the item back at
  the front of its lane (or hands it to the next consumer): nothing is lost.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from penguiflow.actors.envelope import (
    SELF_LANE,
    SYSTEM_LANE,
    Delivery,
    MailboxEmpty,
    MailboxStatistics,
    _delivery,
    _new_delivery,
    _set_item,
    _set_lane,
)
from penguiflow.errors import MailboxClosed

# The records and lane numbers are defined in envelope.py; importable from here too.
__all__ = [
    "SELF_LANE",
    "SYSTEM_LANE",
    "Delivery",
    "ItemWatch",
    "Mailbox",
    "MailboxEmpty",
    "MailboxStatistics",
    "absorb_rearmed_cancel",
]


class _Putter(asyncio.Future):  # type: ignore[type-arg]
    """A waiting producer: resolved once its ``item`` is enqueued.

    The item rides on the future (a slot) instead of in a ``(future, item)``
    tuple: 10,000 producers blocked on a full lane hold ~470 KB less.
    """

    __slots__ = ("item",)

    item: Any


# What poll() returns when it has nothing (None is a valid message).
_NOTHING: Any = object()

# An empty deque costs ~760 bytes and most lanes never need some of theirs (no
# producer ever waits; the system and self lanes stay empty), so those start as
# this shared, always-empty placeholder and get their own deque on first append.
# Only ``_deliver`` (items) and ``put`` (putters) append to a lane that may still
# hold it; everything else reads it, or appends only to a lane it knows is real.
_UNUSED: deque[Any] = deque()


class _Lane:
    __slots__ = ("index", "items", "putters", "transit")

    def __init__(self, index: int) -> None:
        self.index = index
        # Data lanes take items on the hot paths, which append without the check.
        self.items: deque[Any] = deque() if index >= 0 else _UNUSED
        self.putters: deque[_Putter] = _UNUSED  # FIFO
        self.transit = 0  # items handed to consumers that have not resumed yet


# A waiting consumer: its future and the data lanes it accepts (None: all lanes
# including system and self).
_Getter = tuple["asyncio.Future[Delivery]", "frozenset[int] | None"]


class Mailbox:
    """A bounded FIFO mailbox with data lanes plus unbounded system and self lanes.

    Args:
        capacity: bound of each data lane; ``<= 0`` means unbounded.
        lanes: number of data lanes (numbered ``0 .. lanes-1``).

    ``get`` serves the system lane first, then the self lane, then the data lanes
    round-robin. Several producers and several consumers may wait at once; both
    are served strictly in arrival order. Cancelling a waiting ``put`` enqueues
    nothing and cancelling a waiting ``get`` takes nothing.

    .. versionadded:: 3.0
    """

    __slots__ = (
        "_closed",
        "_data",
        "_empty_waiters",
        "_getters",
        "_lane0",
        "_priority",
        "_rr",
        "_self",
        "_size",
        "_system",
        "capacity",
        "lanes",
        "last_lane",
    )

    def __init__(self, capacity: int = 64, *, lanes: int = 1) -> None:
        if lanes < 1:
            raise ValueError("a mailbox needs at least one data lane")
        self.capacity = capacity
        self.lanes = lanes
        self._data = [_Lane(0)] if lanes == 1 else [_Lane(index) for index in range(lanes)]
        self._system = _Lane(SYSTEM_LANE)
        self._self = _Lane(SELF_LANE)
        # The single data lane of a one-lane mailbox, for get()'s inlined hot path.
        self._lane0 = self._data[0] if lanes == 1 else None
        # The system and self deques, checked on every get (refreshed by _deliver
        # when one replaces its _UNUSED placeholder).
        self._priority = (self._system.items, self._self.items)
        #: The lane of the item ``poll()`` or ``next()`` returned last (a plain
        #: attribute, not a property: the receive loop reads it per message).
        self.last_lane = 0
        # A list, not a deque: there is rarely more than one waiting consumer (an
        # idle actor), and an empty list is 56 bytes against a deque's ~760.
        self._getters: list[_Getter] = []
        self._empty_waiters: list[asyncio.Future[None]] = []
        self._rr = 0  # next data lane to look at first
        self._size = 0  # items in every lane, in-transit ones included
        self._closed = False

    def __repr__(self) -> str:
        return f"<Mailbox capacity={self.capacity} lanes={self.lanes} size={self._size}>"

    def __len__(self) -> int:
        return self._size

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    # -- producing ----------------------------------------------------------------
    def _lane(self, lane: int) -> _Lane:
        if lane >= 0:
            return self._data[lane]
        if lane == SYSTEM_LANE:
            return self._system
        if lane == SELF_LANE:
            return self._self
        raise IndexError(f"no lane {lane}")

    def _deliver(self, ln: _Lane, item: Any, lane: int, front: bool = False) -> None:
        """Hand ``item`` to the first consumer accepting ``lane``, else queue it."""
        self._size += 1
        getters = self._getters
        if getters:
            fut, accepts = getters[0]
            if accepts is None and not fut.done():
                # The usual case: the single consumer of this mailbox is waiting.
                getters.pop(0)
                ln.transit += 1
                delivery = _new_delivery(Delivery)
                _set_item(delivery, item)
                _set_lane(delivery, lane)
                fut.set_result(delivery)
                return
            for index, (fut, accepts) in enumerate(getters):
                if fut.done():
                    continue  # cancelled, its owner removes it when it resumes
                if accepts is None or lane in accepts:
                    del getters[index]
                    ln.transit += 1
                    fut.set_result(_delivery(item, lane))
                    return
        items = ln.items
        if items is _UNUSED:
            items = ln.items = deque()
            self._priority = (self._system.items, self._self.items)
        if front:
            items.appendleft(item)
        else:
            items.append(item)

    def put_nowait(self, item: Any, lane: int = 0) -> bool:
        """Enqueue ``item`` if the lane has room and no producer is waiting on it.

        Returns False when the lane is full or producers are already waiting (a
        non-waiting put never overtakes a waiting one).

        Raises:
            MailboxClosed: the mailbox was closed.
        """
        if self._closed or lane < 0:  # one test on the hot path for both errors
            if self._closed:
                raise MailboxClosed("mailbox is closed")
            raise IndexError(f"no data lane {lane}")
        ln = self._data[lane]
        if ln.putters:
            return False
        cap = self.capacity
        if cap > 0 and len(ln.items) + ln.transit >= cap:
            return False
        getters = self._getters
        if not getters:
            # Hot path, inlined: nobody is waiting, just queue it.
            self._size += 1
            ln.items.append(item)
            return True
        self._deliver(ln, item, lane)
        return True

    async def put(self, item: Any, lane: int = 0) -> None:
        """Enqueue ``item``, waiting while the lane is full (backpressure).

        Waiting producers are served strictly in arrival order. If this raises
        ``CancelledError`` the item was not enqueued.

        Raises:
            MailboxClosed: the mailbox is or became closed.
        """
        # put_nowait has the same fast path and raises the same errors. Not
        # inlined: every local of this frame lives as long as a producer waits
        # (10,000 blocked producers: ~60 bytes each).
        if self.put_nowait(item, lane):
            return
        ln = self._data[lane]
        fut = _Putter(loop=asyncio.get_running_loop())
        fut.item = item
        putters = ln.putters
        if putters is _UNUSED:
            putters = ln.putters = deque()
        putters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.cancelled():
                _discard_putter(ln.putters, fut)
            elif fut.exception() is None and not self._retract(ln, item):
                # A consumer already took the item: the put completed. Re-arm
                # the cancellation for the next suspension point, never lose it.
                task = asyncio.current_task()
                assert task is not None
                task.uncancel()
                task.cancel()
                return
            raise

    def put_system(self, item: Any) -> None:
        """Enqueue on the unbounded system lane (served before everything else)."""
        if self._closed:
            raise MailboxClosed("mailbox is closed")
        self._deliver(self._system, item, SYSTEM_LANE)

    def put_self(self, item: Any) -> None:
        """Enqueue on the unbounded self lane (served before the data lanes)."""
        if self._closed:
            raise MailboxClosed("mailbox is closed")
        self._deliver(self._self, item, SELF_LANE)

    def put_beyond(self, item: Any, lane: int = 0) -> None:
        """Enqueue ``item`` at the back of ``lane``, ignoring its capacity.

        For restoring what a journal says was queued (a durable flow's
        ``recover``): it never waits, so a lane may hold more than ``capacity``
        until it drains. Producers already waiting are overtaken.

        Raises:
            MailboxClosed: the mailbox was closed.
        """
        if self._closed:
            raise MailboxClosed("mailbox is closed")
        self._deliver(self._lane(lane), item, lane)

    def requeue_front(self, item: Any, lane: int = 0) -> None:
        """Put ``item`` back at the front of ``lane``, ignoring capacity.

        Used to redeliver an in-flight message after a crash. Works on a closed
        mailbox too, so the item is returned by a later ``close()``.
        """
        self._deliver(self._lane(lane), item, lane, front=True)

    def _admit(self, ln: _Lane) -> None:
        """Move parked items of waiting producers into free slots, oldest first."""
        putters = ln.putters
        items = ln.items
        cap = self.capacity
        while putters and (cap <= 0 or len(items) + ln.transit < cap):
            fut = putters.popleft()
            item = fut.item
            if not fut.done():
                if self._getters:
                    self._deliver(ln, item, ln.index)
                else:
                    self._size += 1
                    items.append(item)
                fut.set_result(None)

    def _retract(self, ln: _Lane, item: Any) -> bool:
        """Take a just-enqueued ``item`` back out of ``ln`` (by identity); kernel use."""
        items = ln.items
        for index in range(len(items) - 1, -1, -1):
            if items[index] is item:
                del items[index]
                self._size -= 1
                self._admit(ln)
                self._after_take()
                return True
        return False

    # -- consuming ----------------------------------------------------------------
    def _take(self, accepts: frozenset[int] | None) -> Delivery | None:
        """Pop the next item by lane priority, or None; frees capacity."""
        if accepts is None:
            if self._system.items:
                self._size -= 1
                item = self._system.items.popleft()
                self._after_take()
                return _delivery(item, SYSTEM_LANE)
            if self._self.items:
                self._size -= 1
                item = self._self.items.popleft()
                self._after_take()
                return _delivery(item, SELF_LANE)
        data = self._data
        n = len(data)
        start = self._rr
        for step in range(n):
            lane = (start + step) % n
            ln = data[lane]
            if ln.items and (accepts is None or lane in accepts):
                item = ln.items.popleft()
                self._size -= 1
                self._rr = lane + 1 if lane + 1 < n else 0
                if ln.putters:
                    self._admit(ln)
                self._after_take()
                return _delivery(item, lane)
        return None

    def _after_take(self) -> None:
        if self._empty_waiters and not self._size:
            self._wake_empty()

    def get_nowait(self, lanes: Sequence[int] | None = None) -> Delivery:
        """Take the next item without waiting.

        Raises:
            MailboxEmpty: nothing is queued in the accepted lanes.
            MailboxClosed: the mailbox was closed.
        """
        if self._closed:
            raise MailboxClosed("mailbox is closed")
        delivery = self._take(None if lanes is None else frozenset(lanes))
        if delivery is None:
            raise MailboxEmpty
        return delivery

    def poll(self) -> Any:
        """The next data item if one can be taken now, else ``Mailbox.NOTHING``.

        Only when nothing waits on the system or self lane (those come first):
        then ``get()``/``next()`` decide (they may still find a system/self item,
        wait, or raise ``MailboxClosed``). Same order as ``get()``; the item's lane
        is in ``last_lane``. Synchronous, so a busy consumer takes its next
        message without creating a coroutine or a ``Delivery``.
        """
        ln = self._lane0
        if (
            ln is not None
            and ln.items
            and not self._priority[0]
            and not self._priority[1]
            and not self._closed
        ):
            item = ln.items.popleft()
            self._size -= 1
            if ln.putters:
                self._admit(ln)
            if self._empty_waiters and not self._size:
                self._wake_empty()
            self.last_lane = 0
            return item
        if (
            ln is not None
            or not self._size
            or self._priority[0]
            or self._priority[1]
            or self._closed
        ):
            return _NOTHING
        data = self._data
        n = len(data)
        lane = self._rr
        for _ in range(n):
            ln = data[lane]
            if ln.items:
                item = ln.items.popleft()
                self._size -= 1
                self._rr = lane + 1 if lane + 1 < n else 0
                if ln.putters:
                    self._admit(ln)
                if self._empty_waiters and not self._size:
                    self._wake_empty()
                self.last_lane = lane
                return item
            lane = lane + 1 if lane + 1 < n else 0
        return _NOTHING

    #: What ``poll()`` returns when it takes nothing (compare with ``is``).
    NOTHING: ClassVar[Any] = _NOTHING

    async def next(self) -> Any:
        """``get()`` for every lane, returning the bare item; its lane is in ``last_lane``.

        The actor loop calls this when ``poll()`` found nothing (so the item may
        come from the system or self lane, or has to be waited for); skipping
        the ``Delivery`` record saves a third of the cost of a hop.

        Raises:
            MailboxClosed: the mailbox is or became closed.
        """
        # get() inlined for lanes=None: one coroutine frame less per idle wait.
        if self._closed:
            raise MailboxClosed("mailbox is closed")
        if self._size:
            taken = self._take(None)
            if taken is not None:
                self.last_lane = taken.lane
                return taken.item
        fut: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        self._getters.append((fut, None))
        try:
            delivery = await fut
        except asyncio.CancelledError:
            self._abandon_get(fut)
            raise
        lane = self.last_lane = delivery.lane
        ln = self._data[lane] if lane >= 0 else self._lane(lane)
        ln.transit -= 1
        self._size -= 1
        if ln.putters:
            self._admit(ln)
        if self._empty_waiters and not self._size:
            self._wake_empty()
        return delivery.item

    async def get(self, lanes: Sequence[int] | None = None) -> Delivery:
        """Take the next item, waiting until one arrives.

        Order: system lane, self lane, then data lanes round-robin. With ``lanes``
        only those data lanes are served (and not system/self). Waiting consumers
        are served in arrival order. If this raises ``CancelledError`` nothing was
        taken.

        Raises:
            MailboxClosed: the mailbox is or became closed.
        """
        if self._closed:
            raise MailboxClosed("mailbox is closed")
        if lanes is None:
            ln = self._lane0
            priority = self._priority
            if ln is not None and ln.items and not priority[0] and not priority[1]:
                # Hot path, inlined: one data lane and nothing on system/self.
                item = ln.items.popleft()
                self._size -= 1
                if ln.putters:
                    self._admit(ln)
                if self._empty_waiters and not self._size:
                    self._wake_empty()
                delivery = _new_delivery(Delivery)
                _set_item(delivery, item)
                _set_lane(delivery, 0)
                return delivery
            accepts = None
        else:
            accepts = frozenset(lanes)
        if self._size:
            taken = self._take(accepts)
            if taken is not None:
                return taken
        fut: asyncio.Future[Delivery] = asyncio.get_running_loop().create_future()
        self._getters.append((fut, accepts))
        try:
            delivery = await fut
        except asyncio.CancelledError:
            self._abandon_get(fut)
            raise
        lane = delivery.lane
        ln = self._data[lane] if lane >= 0 else self._lane(lane)
        ln.transit -= 1
        self._size -= 1
        if ln.putters:
            self._admit(ln)
        if self._empty_waiters and not self._size:
            self._wake_empty()
        return delivery

    def call_on_item(self, fn: Callable[[], object]) -> ItemWatch | None:
        """Call ``fn()`` once, synchronously, when the next item is handed to the watch.

        Returns None (and does not call ``fn``) when an item is already queued,
        the mailbox is closed, or it is a subclass that overrides ``next`` (its
        consumer does work there, e.g. a remote return pump, so it must run
        now). Otherwise the watch counts as a waiting
        consumer: the next item is handed to it (``ItemWatch.delivery``) and
        ``fn`` runs inside the ``put`` (or ``requeue_front``, ...) that brought
        it; ``fn`` also runs, with no item, when waiting consumers are failed
        (``close``, ``fail_getters``). ``ItemWatch.cancel()`` withdraws an
        armed watch. A dormant actor uses this to get its task only when it
        has mail.

        .. versionadded:: 3.0
        """
        if self._size or self._closed or type(self).next is not Mailbox.next:
            return None
        watch = ItemWatch(self, fn)
        self._getters.append((watch, None))  # type: ignore[arg-type]  # a stand-in future
        return watch

    def _abandon_get(self, fut: asyncio.Future[Delivery]) -> None:
        """A waiting consumer was cancelled: take nothing, lose nothing."""
        if fut.cancelled():
            _discard_getter(self._getters, fut)
        elif fut.exception() is None:
            # An item was handed over but the consumer was cancelled before taking it.
            handed = fut.result()
            ln = self._lane(handed.lane)
            ln.transit -= 1
            self._size -= 1
            self._deliver(ln, handed.item, handed.lane, front=True)

    # -- maintenance --------------------------------------------------------------
    def purge(
        self, predicate: Callable[[Any], bool], *, lanes: Sequence[int] | None = None
    ) -> list[Delivery]:
        """Remove every queued item matching ``predicate``; return them in lane order.

        Args:
            predicate: called once per queued item; True removes it.
            lanes: the lanes to purge, data lanes and/or ``SELF_LANE`` /
                ``SYSTEM_LANE``; ``None`` (the default) means every data lane.
                *versionchanged 3.0: ``lanes`` added.*

        Items handed to a consumer that has not resumed yet are not removed.
        Freed capacity is granted to waiting producers, oldest first.

        Raises:
            IndexError: a lane does not exist.
        """
        selected = self._data if lanes is None else [self._lane(lane) for lane in lanes]
        removed: list[Delivery] = []
        for ln in selected:
            items = ln.items
            if not items:
                continue
            keep: list[Any] = []
            for item in items:
                if predicate(item):
                    removed.append(_delivery(item, ln.index))
                else:
                    keep.append(item)
            dropped = len(items) - len(keep)
            if dropped:
                self._size -= dropped
                # In place: hot paths hold references to the lane deques.
                items.clear()
                items.extend(keep)
                if ln.index >= 0 and ln.putters:
                    self._admit(ln)
        if removed:
            self._after_take()
        return removed

    def fail_getters(self, error: BaseException) -> int:
        """Make every waiting ``get`` raise ``error``; queued items are not touched.

        For an owner that learns nothing more can arrive (its producers are gone
        for good) while the mailbox stays open for what is already queued.
        Returns how many waiting consumers were woken.

        .. versionadded:: 3.0
        """
        getters, self._getters = self._getters, []
        woken = 0
        for fut, _ in getters:
            if not fut.done():
                fut.set_exception(error)
                woken += 1
        return woken

    def close(self) -> list[Delivery]:
        """Close the mailbox and return what was queued (system, self, data lanes).

        Later puts raise ``MailboxClosed``; waiting producers and consumers are
        woken with ``MailboxClosed``. Calling it again returns whatever was put
        back since (``requeue_front`` still works on a closed mailbox).
        """
        self._closed = True
        leftovers: list[Delivery] = []
        lanes = [(SYSTEM_LANE, self._system), (SELF_LANE, self._self), *enumerate(self._data)]
        for lane, ln in lanes:
            leftovers.extend(_delivery(item, lane) for item in ln.items)
            self._size -= len(ln.items)
            ln.items.clear()
            while ln.putters:
                fut = ln.putters.popleft()
                if not fut.done():
                    fut.set_exception(MailboxClosed("mailbox is closed"))
        while self._getters:
            getter, _ = self._getters.pop(0)
            if not getter.done():
                getter.set_exception(MailboxClosed("mailbox is closed"))
        self._after_take()
        return leftovers

    # -- inspection ---------------------------------------------------------------
    def snapshot(self, lane: int | None = None) -> tuple[Any, ...]:
        """Copy of the queued items in order (all data lanes, in lane order, if None).

        Items already handed to a consumer that has not resumed are not included.
        """
        if lane is not None:
            return tuple(self._lane(lane).items)
        return tuple(item for ln in self._data for item in ln.items)

    def depth(self, lane: int | None = None) -> int:
        """Items queued in ``lane`` (all data lanes if None), in-transit ones included."""
        if lane is not None:
            ln = self._lane(lane)
            return len(ln.items) + ln.transit
        # A loop, not sum(<genexpr>): every FlowEvent reads this (no generator frame).
        depth = 0
        for ln in self._data:
            depth += len(ln.items) + ln.transit
        return depth

    def statistics(self) -> MailboxStatistics:
        """A frozen record of depths, capacity and waiters."""
        return MailboxStatistics(
            depths=tuple(len(ln.items) + ln.transit for ln in self._data),
            capacity=self.capacity,
            system_depth=len(self._system.items) + self._system.transit,
            self_depth=len(self._self.items) + self._self.transit,
            waiting_producers=sum(sum(1 for f in ln.putters if not f.done()) for ln in self._data),
            waiting_consumers=sum(1 for f, _ in self._getters if not f.done()),
            closed=self._closed,
        )

    async def wait_empty(self) -> None:
        """Return once no item is queued (or in transit) in any lane."""
        while self._size:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._empty_waiters.append(fut)
            try:
                await fut
            finally:
                if fut in self._empty_waiters:
                    self._empty_waiters.remove(fut)

    def _wake_empty(self) -> None:
        waiters, self._empty_waiters = self._empty_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)


class ItemWatch:
    """A pending ``Mailbox.call_on_item``: stands in a waiting consumer's future.

    ``_deliver`` and the inlined puts hand the next item to it as they would to a
    waiting ``next()``: the item is then *in transit* (counted in ``len`` and
    ``depth``, not in ``snapshot``), exactly as for an idle actor, until the
    owner takes it with ``accept()`` or puts it back with ``give_back()``.

    .. versionadded:: 3.0
    """

    __slots__ = ("_fn", "_mailbox", "delivery")

    def __init__(self, mailbox: Mailbox, fn: Callable[[], object]) -> None:
        self._mailbox = mailbox
        self._fn: Callable[[], object] | None = fn
        #: The item handed over (with its lane), until accepted or given back.
        self.delivery: Delivery | None = None

    def done(self) -> bool:
        """False while armed (the mailbox's test for a live consumer)."""
        return self._fn is None

    def cancel(self) -> None:
        """Withdraw an armed watch; ``fn`` will not be called. Idempotent."""
        if self._fn is not None:
            self._fn = None
            _discard_getter(self._mailbox._getters, self)  # type: ignore[arg-type]

    def set_result(self, delivery: Delivery) -> None:
        fn = self._fn
        assert fn is not None
        self._fn = None
        self.delivery = delivery
        fn()

    def set_exception(self, error: BaseException) -> None:
        # close() / fail_getters(): the consumer this stands for would have been
        # woken with ``error``; wake the owner, whose next() meets it (or waits).
        fn = self._fn
        if fn is not None:
            self._fn = None
            fn()

    def accept(self) -> Any:
        """Take the item handed over (as ``next()`` does on waking); sets ``last_lane``."""
        delivery = self.delivery
        assert delivery is not None
        self.delivery = None
        mailbox = self._mailbox
        lane = mailbox.last_lane = delivery.lane
        ln = mailbox._lane(lane)
        ln.transit -= 1
        mailbox._size -= 1
        if ln.putters:
            mailbox._admit(ln)
        mailbox._after_take()
        return delivery.item

    def give_back(self) -> None:
        """Put the item handed over back at the front of its lane (nothing is lost)."""
        delivery = self.delivery
        if delivery is None:
            return
        self.delivery = None
        mailbox = self._mailbox
        ln = mailbox._lane(delivery.lane)
        ln.transit -= 1
        mailbox._size -= 1
        mailbox._deliver(ln, delivery.item, delivery.lane, front=True)


async def absorb_rearmed_cancel() -> None:
    """Deliver, and drop, a cancellation ``put`` re-armed that its canceller let go of.

    A cancellation that reaches ``put`` after a consumer took the item is re-armed
    for the task's next suspension point (the put happened; the cancellation must
    not be lost). A canceller that then decides it is over (an interrupt whose
    handler returned, an ``asyncio.timeout`` whose block ended without raising)
    uncancels the task, but on Python 3.11 and 3.12 ``uncancel`` leaves the
    re-armed cancellation armed: it would land at the next await, in work nobody
    cancelled. Await this right after such a canceller let go: an armed
    cancellation lands here and is dropped; with a cancellation still requested
    (``task.cancelling() > 0``: a stop) it propagates.
    """
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling() > 0:
            raise


def _discard_putter(putters: deque[_Putter], fut: _Putter) -> None:
    # _admit() or close() may already have dropped the cancelled entry.
    for index, candidate in enumerate(putters):
        if candidate is fut:
            del putters[index]
            return


def _discard_getter(getters: list[_Getter], fut: asyncio.Future[Delivery]) -> None:
    for index, (candidate, _) in enumerate(getters):
        if candidate is fut:
            del getters[index]
            return
