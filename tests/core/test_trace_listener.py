"""``add_trace_listener``: told once when a trace becomes inactive (runtime.md §10)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from core_support import message

from penguiflow.core import create
from penguiflow.node import Node, NodePolicy


async def passthrough(msg: Any, ctx: Any) -> Any:
    return msg


def flow_of_two() -> Any:
    a = Node(passthrough, name="a", policy=NodePolicy(validate="none"))
    b = Node(passthrough, name="b", policy=NodePolicy(validate="none"))
    return create(a.to(b), b.to())


async def test_listener_hears_a_trace_end_once_when_its_final_is_fetched() -> None:
    flow = flow_of_two()
    ended: list[str] = []
    flow.add_trace_listener(ended.append)
    flow.run()
    try:
        msg = message()
        await flow.emit(msg)
        async with asyncio.timeout(5):
            await flow.wait_idle()
        assert ended == []  # the final waits in Rookery: still outstanding
        async with asyncio.timeout(5):
            await flow.fetch()
        assert ended == [msg.trace_id]
    finally:
        await flow.stop()
    assert ended == [msg.trace_id]


async def test_stop_ends_the_traces_still_active() -> None:
    flow = flow_of_two()
    ended: list[str] = []
    flow.add_trace_listener(ended.append)
    flow.run()
    msg = message()
    await flow.emit(msg)
    await flow.stop()
    assert ended == [msg.trace_id]


async def test_removed_listener_is_not_called() -> None:
    flow = flow_of_two()
    ended: list[str] = []
    flow.add_trace_listener(ended.append)
    flow.remove_trace_listener(ended.append)
    flow.remove_trace_listener(ended.append)  # absent: no error
    flow.run()
    try:
        await flow.emit(message())
        async with asyncio.timeout(5):
            await flow.fetch()
    finally:
        await flow.stop()
    assert ended == []


async def test_listener_error_is_logged_and_the_flow_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flow = flow_of_two()
    ended: list[str] = []

    def broken(trace_id: str) -> None:
        raise RuntimeError("listener bug")

    flow.add_trace_listener(broken)
    flow.add_trace_listener(ended.append)
    flow.run()
    try:
        with caplog.at_level(logging.ERROR, logger="penguiflow.core"):
            msg = message()
            await flow.emit(msg)
            async with asyncio.timeout(5):
                await flow.fetch()
    finally:
        await flow.stop()
    assert ended == [msg.trace_id]
    assert any(r.getMessage() == "trace_listener_error" for r in caplog.records)
