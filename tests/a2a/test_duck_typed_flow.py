"""The adapter over a duck-typed flow: only the documented methods are used."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from penguiflow.types import Message
from penguiflow_a2a import A2AMessagePayload, A2AServerAdapter

CARD = {"name": "duck", "description": "a duck-typed flow"}


class LifecycleOnlyFlow:
    """Offers run/stop and a fetch that never returns; records every call."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self._never = asyncio.Event()

    def run(self, *, registry: Any = None) -> None:
        self.calls.append(f"run:{registry}")

    async def stop(self) -> None:
        self.calls.append("stop")

    async def fetch(self) -> Any:
        await self._never.wait()


class BrokenFetchFlow(LifecycleOnlyFlow):
    """``fetch`` raises at once: the dispatcher fails."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched = asyncio.Event()

    async def fetch(self) -> Any:
        self.fetched.set()
        raise RuntimeError("fetch exploded")


class EchoFlow(LifecycleOnlyFlow):
    """A minimal flow: every emitted message comes back on fetch as a bare dict."""

    def __init__(self) -> None:
        super().__init__()
        self.rookery: asyncio.Queue[Any] = asyncio.Queue()
        self.flags: dict[str, asyncio.Event] = {}
        self.bindings: list[Any] = []

    async def emit(self, message: Message, to: Any = None) -> None:
        self.rookery.put_nowait(message.model_copy(update={"payload": {"echo": message.payload}}))

    async def fetch(self) -> Any:
        return await self.rookery.get()

    async def cancel(self, trace_id: str) -> bool:
        return False

    async def save_remote_binding(self, binding: Any) -> None:
        self.bindings.append(binding)

    def ensure_trace_event(self, trace_id: str) -> asyncio.Event:
        return self.flags.setdefault(trace_id, asyncio.Event())


class BrokenDrainFlow(EchoFlow):
    """Serves requests but its ``fetch`` fails: requests must not hang."""

    def __init__(self) -> None:
        super().__init__()
        self.fetched = asyncio.Event()

    async def fetch(self) -> Any:
        self.fetched.set()
        raise RuntimeError("fetch exploded")


async def test_start_and_stop_touch_only_run_and_stop() -> None:
    flow = LifecycleOnlyFlow()
    adapter = A2AServerAdapter(flow, agent_card=CARD, agent_url="u", registry="reg")
    await adapter.start()
    await adapter.stop()
    assert flow.calls == ["run:reg", "stop"]


async def test_dispatcher_errors_do_not_escape_stop() -> None:
    flow = BrokenFetchFlow()
    adapter = A2AServerAdapter(flow, agent_card=CARD, agent_url="u")
    await adapter.start()
    async with asyncio.timeout(5):
        await flow.fetched.wait()
    await adapter.stop()
    assert flow.calls[-1] == "stop"


async def test_send_fails_with_500_when_the_flow_cannot_be_drained() -> None:
    from penguiflow_a2a.server import A2ARequestError

    flow = BrokenDrainFlow()
    adapter = A2AServerAdapter(flow, agent_card=CARD, agent_url="u")
    await adapter.start()
    try:
        async with asyncio.timeout(5):
            await flow.fetched.wait()
        with pytest.raises(A2ARequestError) as error:
            async with asyncio.timeout(5):
                await adapter.handle_send(A2AMessagePayload(payload=1, headers={"tenant": "a"}))
    finally:
        await adapter.stop()
    assert error.value.status_code == 500
    assert error.value.detail == "flow execution failed: fetch exploded"


async def test_send_over_a_duck_typed_flow() -> None:
    flow = EchoFlow()
    adapter = A2AServerAdapter(flow, agent_card=CARD, agent_url="u")
    await adapter.start()
    try:
        async with asyncio.timeout(5):
            reply = await adapter.handle_send(
                A2AMessagePayload(payload="hi", headers={"tenant": "a"})
            )
    finally:
        await adapter.stop()
    assert reply["output"] == {"echo": "hi"}
    assert flow.bindings[0].agent_url == "u"
