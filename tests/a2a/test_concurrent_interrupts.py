"""Many callers parked in input-required at once: each resume reaches its own task.

Each caller asks a question of its own; the answers are sent in a seeded
shuffled order, several at once, so resumes finish out of order. Every task
must complete with its own question's answer, never a neighbour's.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from aiohttp.test_utils import TestClient

CALLERS = 60


def _ask(k: int) -> dict[str, Any]:
    return {
        "messageId": f"ask-{k}",
        "role": "ROLE_USER",
        "parts": [{"data": {"op": "ask", "question": {"caller": k}}}],
        "metadata": {"headers": {"tenant": "acme"}},
    }


def _answer(task_id: str, k: int) -> dict[str, Any]:
    return {
        "messageId": f"answer-{k}",
        "role": "ROLE_USER",
        "parts": [{"data": {"from": k}}],
        "taskId": task_id,
    }


async def _send(client: TestClient[Any, Any], message: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/message:send", json={"message": message})
    assert response.status == 200, await response.text()
    task: dict[str, Any] = (await response.json())["task"]
    return task


async def test_concurrent_resumes_each_complete_their_own_task(
    client: TestClient[Any, Any],
) -> None:
    async with asyncio.timeout(60):
        asked = await asyncio.gather(*(_send(client, _ask(k)) for k in range(CALLERS)))
        for k, task in enumerate(asked):
            assert task["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
            assert task["status"]["message"]["parts"][0]["data"] == {"caller": k}
        assert len({task["id"] for task in asked}) == CALLERS
        order = list(range(CALLERS))
        random.Random(1604).shuffle(order)
        done = await asyncio.gather(*(_send(client, _answer(asked[k]["id"], k)) for k in order))
    for k, task in zip(order, done, strict=True):
        assert task["id"] == asked[k]["id"]
        assert task["status"]["state"] == "TASK_STATE_COMPLETED"
        assert task["artifacts"][-1]["parts"] == [{"data": {"answer": {"from": k}}}]


async def test_a_task_id_of_another_parked_caller_resumes_only_that_task(
    client: TestClient[Any, Any],
) -> None:
    async with asyncio.timeout(30):
        first, second = await asyncio.gather(_send(client, _ask(0)), _send(client, _ask(1)))
        done = await _send(client, _answer(second["id"], 1))
        assert done["id"] == second["id"]
        assert done["status"]["state"] == "TASK_STATE_COMPLETED"
        response = await client.get(f"/tasks/{first['id']}")
        assert response.status == 200, await response.text()
        assert (await response.json())["status"]["state"] == "TASK_STATE_INPUT_REQUIRED"
