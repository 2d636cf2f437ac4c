"""A durable A2A server keeps its tasks' push configs across a restart.

Server A (a durable flow on a SQLite file) parks a task in input-required and
registers a webhook for it; A stops without draining, as a crash would leave
the file. Server B on the same file still lists the config, and when the task
is answered its webhook hears the task complete. A config deleted before the
restart stays deleted.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from a2a_support import AGENT_URL, Gates, build_flow, make_card
from aiohttp.test_utils import TestClient, TestServer
from push_support import Receiver

from penguiflow.stores import SQLiteStateStore
from penguiflow_a2a import A2AServerAdapter, create_a2a_app

ASK = {
    "messageId": "ask",
    "role": "ROLE_USER",
    "parts": [{"data": {"op": "ask", "question": {"approve": "order-9"}}}],
    "metadata": {"headers": {"tenant": "acme"}},
}


def _answer(task_id: str) -> dict[str, Any]:
    return {
        "messageId": "answer",
        "role": "ROLE_USER",
        "parts": [{"text": "yes"}],
        "taskId": task_id,
    }


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[[], Any]]:
    """``await start()`` -> a client of a new server on the one store file of this test."""
    running: list[tuple[TestClient[Any, Any], SQLiteStateStore]] = []

    async def factory() -> TestClient[Any, Any]:
        store = SQLiteStateStore(tmp_path / "tasks.db")
        adapter = A2AServerAdapter(
            build_flow(Gates(), state_store=store, durable=True),
            agent_card=make_card(),
            agent_url=AGENT_URL,
        )
        app = create_a2a_app(adapter, push_allow_hosts=["127.0.0.1"])
        client: TestClient[Any, Any] = TestClient(TestServer(app, host="127.0.0.1"))
        async with asyncio.timeout(10):
            await client.start_server()
        running.append((client, store))
        return client

    async def stop_all() -> None:
        while running:
            client, store = running.pop()
            async with asyncio.timeout(10):
                await client.close()
            await store.close()

    factory.stop_all = stop_all  # type: ignore[attr-defined]
    yield factory
    await stop_all()


async def _parked_task(client: TestClient[Any, Any]) -> str:
    response = await client.post("/message:send", json={"message": ASK})
    task = (await response.json())["task"]
    assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
    task_id: str = task["id"]
    return task_id


async def test_a_webhook_registered_before_a_restart_hears_the_task_complete_after(
    start: Any, receiver: Receiver
) -> None:
    async with asyncio.timeout(30):
        first = await start()
        task_id = await _parked_task(first)
        base = f"/tasks/{task_id}/pushNotificationConfigs"
        created = await first.post(base, json={"id": "hook", "url": receiver.url, "token": "t0k"})
        assert created.status == 200, await created.text()
        await receiver.wait_for(1)  # the task as it was when the config was set
        await start.stop_all()  # no draining: what a crash leaves

        second = await start()
        listed = await (await second.get(base)).json()
        assert [(c["id"], c["url"]) for c in listed["configs"]] == [("hook", receiver.url)]
        done = await second.post("/message:send", json={"message": _answer(task_id)})
        assert (await done.json())["task"]["status"]["state"] == "TASK_STATE_COMPLETED"
        while not any(_state(body) == "TASK_STATE_COMPLETED" for body in receiver.bodies()):
            await receiver.wait_for(len(receiver.accepted) + 1)
    assert all(r.headers.get("X-A2A-Notification-Token") == "t0k" for r in receiver.accepted)


async def test_a_config_deleted_before_a_restart_stays_deleted(
    start: Any, receiver: Receiver
) -> None:
    async with asyncio.timeout(30):
        first = await start()
        task_id = await _parked_task(first)
        base = f"/tasks/{task_id}/pushNotificationConfigs"
        await first.post(base, json={"id": "gone", "url": receiver.url})
        deleted = await first.delete(f"{base}/gone")
        assert deleted.status == 200
        await start.stop_all()

        second = await start()
        listed = await (await second.get(base)).json()
        assert listed.get("configs", []) == []


def _state(body: Any) -> str | None:
    """The task state a 1.0 notification carries (a task or a status update)."""
    if not isinstance(body, dict):
        return None
    if "task" in body:
        return body["task"]["status"]["state"]
    if "statusUpdate" in body:
        return body["statusUpdate"]["status"]["state"]
    return None
