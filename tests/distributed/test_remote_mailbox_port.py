"""``RemoteMailbox`` offers the kernel's ``MailboxLike`` surface (no Redis needed)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from penguiflow.actors import SYSTEM_LANE, Mailbox, MailboxLike
from penguiflow.distributed._origin import RemoteMailbox


class _ScriptOnlyRedis:
    """Enough of a Redis client to construct the mailbox; any real call fails."""

    def register_script(self, script: str) -> object:
        return object()


def _remote() -> RemoteMailbox:
    fake: Any = _ScriptOnlyRedis()
    return RemoteMailbox(
        redis=fake,
        flow=fake,
        node=SimpleNamespace(name="remote"),
        stream="s",
        reply_to="r",
        cancel_channel="c",
        origin="o",
        capacity=4,
        block_ms=10,
    )


async def test_remote_mailbox_is_mailbox_like() -> None:
    box: MailboxLike = _remote()  # checked by mypy too
    assert isinstance(box, MailboxLike)


async def test_remote_mailbox_poll_never_takes_an_item() -> None:
    assert _remote().poll() is Mailbox.NOTHING


async def test_remote_mailbox_next_returns_a_kernel_message_on_the_system_lane() -> None:
    box = _remote()
    box.put_system("stop")  # queued before the pump looks: it returns without reading
    async with asyncio.timeout(5):
        assert await box.next() == "stop"
    assert box.last_lane == SYSTEM_LANE
