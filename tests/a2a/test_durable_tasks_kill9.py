"""kill -9 a durable A2A server with tasks in every state; a new one carries them on.

The child (``_durable_a2a_child.py``) serves the durable routing flow on a
SQLite file (or Redis, when ``PENGUIFLOW_TEST_REDIS_URL`` is set). Through the
official a2a-sdk client (1.0) the test creates a task that completes, one that
waits for input and one whose node hangs, then SIGKILLs the child while that
node runs. A server started in this process on the same store returns the
finished task, runs the hanging one again to ``completed`` and resumes the
input-required one to ``completed``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _durable_a2a_child import open_store
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types.a2a_pb2 import (
    TASK_STATE_COMPLETED,
    TASK_STATE_INPUT_REQUIRED,
    GetTaskRequest,
    SubscribeToTaskRequest,
)
from test_durable_tasks import ASK, Server, data_of, responses, send

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("_durable_a2a_child.py")


async def line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    async with asyncio.timeout(20):
        return (await process.stdout.readline()).decode().strip()


REDIS_URL = os.environ.get("PENGUIFLOW_TEST_REDIS_URL")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "redis",
            marks=pytest.mark.skipif(REDIS_URL is None, reason="PENGUIFLOW_TEST_REDIS_URL not set"),
        ),
    ]
)
async def store_spec(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """What the child opens: a SQLite file, or ``<redis url>#<namespace>``."""
    if request.param == "sqlite":
        yield str(tmp_path / "tasks.db")
        return
    namespace = f"a2a-kill9-{uuid.uuid4().hex}"
    yield f"{REDIS_URL}#{namespace}"
    async with open_store(f"{REDIS_URL}#{namespace}") as cleaner:
        await cleaner.clear()


async def test_tasks_survive_a_kill_9_of_the_server(store_spec: str) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable, str(CHILD), store_spec, stdout=asyncio.subprocess.PIPE
    )
    try:
        ready = await line(child)
        assert ready.startswith("ready "), ready
        url = f"http://127.0.0.1:{ready.split()[1]}/"
        async with httpx.AsyncClient(timeout=30) as http:
            async with asyncio.timeout(5):
                card = await A2ACardResolver(http, url).get_agent_card()
            factory = ClientFactory(ClientConfig(httpx_client=http, streaming=False))
            polling = ClientFactory(ClientConfig(httpx_client=http, streaming=False, polling=True))
            sdk, sdk_polling = factory.create(card), polling.create(card)
            done = (await responses(sdk, send({"value": 5})))[-1].task
            asked = (await responses(sdk, send(ASK, message_id="m2")))[-1].task
            hanging = (
                await responses(sdk_polling, send({"op": "hang", "gate": "g"}, message_id="m3"))
            )[0].task
            assert await line(child) == "entered g"
    finally:
        child.send_signal(signal.SIGKILL)
        async with asyncio.timeout(10):
            await child.wait()
    assert (done.status.state, asked.status.state) == (
        TASK_STATE_COMPLETED,
        TASK_STATE_INPUT_REQUIRED,
    )

    b = await Server(lambda: open_store(store_spec), auth=None).start()
    try:
        client = await b.sdk("1.0")
        async with asyncio.timeout(5):
            fetched = await client.get_task(GetTaskRequest(id=done.id))
        assert data_of(fetched.artifacts[-1].parts[0]) == {"echo": 5}
        # One ``work`` node serves both: the hanging item runs again first.
        await b.gates.wait_entered("g")
        events = (await b.sdk("1.0", streaming=True)).subscribe(
            SubscribeToTaskRequest(id=hanging.id)
        )
        async with asyncio.timeout(10):
            first = await anext(events)
            b.gates.open("g")
            seen: list[Any] = [first, *[event async for event in events]]
        assert seen[-1].status_update.status.state == TASK_STATE_COMPLETED
        answer = send({"approved": True}, task_id=asked.id, message_id="m4")
        resumed = (await responses(client, answer))[-1].task
        assert resumed.status.state == TASK_STATE_COMPLETED
        assert data_of(resumed.artifacts[-1].parts[0]) == {"answer": {"approved": True}}
    finally:
        await b.stop()
