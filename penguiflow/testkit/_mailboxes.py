"""Looking into a running flow's mailboxes, and waiting for it to go quiet."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Its public home is penguiflow.core, which keeps it outside __all__ (2.2.5 surface).
    from penguiflow.core import MailboxSnapshot

__all__ = ["format_mailboxes", "inspect_mailboxes", "trace_counts", "wait_idle"]


def inspect_mailboxes(flow: Any) -> dict[str, MailboxSnapshot]:
    """Return a snapshot of every node's mailbox, keyed by node name.

    Each ``MailboxSnapshot`` carries ``node``, ``depth``, ``capacity``, the
    queued ``items`` in delivery order (a tuple copy: the objects themselves,
    not their payloads) and whether the node is ``busy`` handling an item now.
    Rookery is included under ``"Rookery"``. Taking the snapshot does not
    dequeue, reorder or wake anything, so it is safe at any point of a test.

    .. versionadded:: 3.0
    """
    # A fresh dict, so a test may pop or filter entries without touching the flow.
    return dict(flow.mailboxes())


def trace_counts(flow: Any) -> dict[str, int]:
    """Return the outstanding items of every active trace of ``flow``, by trace id.

    An item is outstanding from the moment it is put on an edge until a node
    finished it or it was fetched from Rookery; a trace missing from the dict
    has none. A copy, so a test may compare it (``== {}`` once every trace
    ended) without touching the flow.

    .. versionadded:: 3.0
    """
    from penguiflow import hosting

    return hosting.outstanding(flow)


async def wait_idle(flow: Any, *, timeout: float | None = None) -> None:
    """Wait until every mailbox of ``flow`` is empty and no node is handling an item.

    Tests await this instead of sleeping. ``timeout`` (wall-clock seconds) is a
    safety net; on expiry the ``TimeoutError`` names the nodes that still had
    work, which is usually the clue a hanging test needs.

    Raises:
        TimeoutError: the flow was still busy after ``timeout`` seconds.

    .. versionadded:: 3.0
    """
    try:
        async with asyncio.timeout(timeout):
            await flow.wait_idle()
    except TimeoutError as exc:
        still = [
            f"{name} (depth={snap.depth}{', busy' if snap.busy else ''})"
            for name, snap in inspect_mailboxes(flow).items()
            if snap.depth or snap.busy
        ]
        detail = ", ".join(still) if still else "no node reported work"
        raise TimeoutError(f"flow did not become idle within {timeout}s: {detail}") from exc


def format_mailboxes(snapshots: Mapping[str, MailboxSnapshot]) -> str:
    """Render snapshots as an aligned text table (one node per line), for printing.

    Queued ``Message`` items are shown by their payload, other items as they are.

    .. versionadded:: 3.0
    """
    if not snapshots:
        return "(no mailboxes)"
    width = max(len(name) for name in snapshots)
    lines = []
    for name, snap in snapshots.items():
        capacity = "unbounded" if snap.capacity <= 0 else str(snap.capacity)
        state = "busy" if snap.busy else "idle"
        shown = ", ".join(repr(getattr(item, "payload", item)) for item in snap.items)
        lines.append(f"{name:<{width}}  {snap.depth:>3}/{capacity:<9}  {state}  [{shown}]")
    return "\n".join(lines)
