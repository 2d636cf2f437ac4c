"""The buckets of one ``join_k`` node: per-trace arrival lists, cancel, redelivery.

``penguiflow.patterns.join_k`` builds the node; this is its state, kept on the
node object (so it persists across ``stop()``/``run()``), and on a durable flow
journaled by the node with each step and put back by ``recover`` (``restore``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from penguiflow._logging import get_logger

if TYPE_CHECKING:
    from penguiflow.node import Node

__all__ = ["JoinState"]

_log = get_logger("penguiflow.patterns")


class _Flag(Protocol):
    """A trace's cancel flag: the runtime's ``cancel_flag``, or its ``ensure_trace_event``."""

    def is_set(self) -> bool: ...


def _cancel_flag(trace_id: str, runtime: Any) -> _Flag | None:
    """The trace's cancel flag from ``runtime``: ``cancel_flag`` if it has one.

    PenguiFlow's ``cancel_flag`` is a plain flag the node actors never test, where
    ``ensure_trace_event`` makes an ``asyncio.Event`` that each of them tests on
    every hop of the trace; a duck-typed runtime may have only the latter.
    """
    hook = getattr(runtime, "cancel_flag", None)
    if hook is None:
        hook = getattr(runtime, "ensure_trace_event", None)
        if hook is None:
            return None
    return hook(trace_id)  # type: ignore[no-any-return]


@dataclass(slots=True, eq=False)
class _Bucket:
    items: list[Any]
    runtime: Any  # the flow whose run delivered the first item (None when detached)
    flag: _Flag | None  # the trace's cancel flag when the bucket was last fed


@dataclass(slots=True, eq=False)
class _Handed:
    item: Any  # the k-th item, which completed the batch
    aggregate: Any
    task: asyncio.Task[Any] | None  # the actor incarnation that returned it
    flag: _Flag | None
    checked: bool = False  # a later incarnation looked for the item in the mailbox


_SWEEP_MIN = 64


class JoinState:
    """Per-trace buckets of one ``join_k`` node, and how partial buckets are released.

    Why not a middleware or a task per bucket: a middleware makes the flow build
    every event of every node, and a task per trace costs more than the join
    itself; both showed up in the fan-out/join benchmark. Instead:

    * **Stop.** Nothing is dropped: the buckets are the node's own state and
      persist across ``stop()``/``run()`` of the same node object, as in 2.2.5
      (spec/patterns-routing.md, join_k).
    * **Trace cancel.** Each bucket remembers the trace's cancel flag (the
      flow's ``cancel_flag``; ``ensure_trace_event`` on a runtime without it).
      A set flag marks the bucket stale: it is never completed or emitted. It
      is discarded when the trace id shows up again (which then starts an
      empty bucket), when the table is swept (each time it doubles past 64
      buckets, so stale buckets never exceed the live ones by more than that).
    * **Redelivery.** An aggregate is handed back before it is delivered; if the
      node's actor is killed while routing it (or the flow stops), the kernel
      redelivers the k-th item to a new incarnation. ``handed`` remembers each
      completion until the same task takes its next item (the aggregate was
      routed); a different task getting that very item gets the aggregate
      again instead of starting a bucket that would never complete. The first
      time a new incarnation sees a record whose item is neither in hand nor
      queued in the node's mailbox (the old one was killed while idle), the
      record is dropped, so records never pile up.
    """

    __slots__ = ("buckets", "handed", "k", "node", "sweep_at")

    def __init__(self, k: int) -> None:
        self.k = k
        self.buckets: dict[str, _Bucket] = {}
        self.handed: list[_Handed] = []
        self.node: Node | None = None
        self.sweep_at = _SWEEP_MIN

    def redelivered(self, item: Any, runtime: Any) -> _Handed | None:
        """The completion ``item`` made in a killed incarnation, if this is its redelivery."""
        task = asyncio.current_task()
        found: _Handed | None = None
        queued: tuple[Any, ...] | None = None
        kept: list[_Handed] = []
        for handed in self.handed:
            if handed.task is task or (handed.flag is not None and handed.flag.is_set()):
                continue  # routed (this task went on to a new item), or the trace is over
            if found is None and handed.item is item:
                found = handed
                continue
            if not handed.checked:
                handed.checked = True
                if queued is None:
                    queued = self._queued(runtime)
                if not any(q is handed.item for q in queued):
                    continue  # nothing of it was in flight: the actor died idle
            kept.append(handed)
        self.handed = kept
        return found

    def _queued(self, runtime: Any) -> tuple[Any, ...]:
        """The items waiting in this node's mailbox (empty when unknown)."""
        mailboxes = getattr(runtime, "mailboxes", None)
        if mailboxes is None or self.node is None:
            return ()
        snapshot = mailboxes().get(self.node.name)
        return tuple(snapshot.items) if snapshot is not None else ()

    def add(self, trace_id: str, item: Any, runtime: Any) -> list[Any] | None:
        """Append ``item``; return the full batch when it reaches ``k`` items."""
        flag = _cancel_flag(trace_id, runtime)
        bucket = self.buckets.get(trace_id)
        if bucket is not None and bucket.flag is not None and bucket.flag.is_set():
            self._drop(trace_id, "trace_cancelled")
            bucket = None
        if bucket is None:
            if self.k == 1:
                return [item]
            if len(self.buckets) >= self.sweep_at:
                self._sweep()
            self.buckets[trace_id] = _Bucket([item], runtime, flag)
            return None
        bucket.items.append(item)
        if len(bucket.items) >= self.k:
            del self.buckets[trace_id]
            self.handed.append(_Handed(item, None, asyncio.current_task(), flag))
            return bucket.items
        if runtime is bucket.runtime:
            # A trace that went quiet and resumed has a new flag: cancel() sets that one.
            bucket.flag = flag
        return None

    def restore(self, trace_id: str, items: list[Any], runtime: Any) -> None:
        """Put back the bucket a durable flow journaled for ``trace_id`` (``recover``)."""
        self.buckets[trace_id] = _Bucket(list(items), runtime, _cancel_flag(trace_id, runtime))

    def _sweep(self) -> None:
        stale = [tid for tid, b in self.buckets.items() if b.flag is not None and b.flag.is_set()]
        for trace_id in stale:
            self._drop(trace_id, "trace_cancelled")
        self.sweep_at = max(_SWEEP_MIN, 2 * len(self.buckets))

    def _drop(self, trace_id: str, reason: str) -> None:
        bucket = self.buckets.pop(trace_id)
        _log.debug(
            "join_k_partial_dropped",
            node_name=self.node.name if self.node is not None else None,
            trace_id=trace_id,
            size=len(bucket.items),
            reason=reason,
        )
