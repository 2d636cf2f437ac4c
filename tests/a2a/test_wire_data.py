"""Results holding datetimes, UUIDs, decimals or enums are kept on the A2A bindings.

They are encoded as the 2.2.5 routes encode them (FastAPI's conversions: ISO
text, strings, enum values), not refused as "not valid JSON".
"""

from __future__ import annotations

import asyncio
import enum
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from a2a_support import AGENT_URL, make_card, message
from aiohttp.test_utils import TestClient

from penguiflow import Message, Node, NodePolicy, create
from penguiflow_a2a import A2AServerAdapter


class Colour(enum.Enum):
    RED = "red"


MOMENT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
IDENT = uuid.UUID("12345678-1234-5678-1234-567812345678")
EXPECTED = {
    "at": "2026-12-03T12:00:00+00:00",
    "id": "12345678-1234-5678-1234-567812345678",
    "price": 1.5,
    "colour": "red",
}


async def produce(msg: Message, ctx: Any) -> Any:
    return {"at": MOMENT, "id": IDENT, "price": Decimal("1.5"), "colour": Colour.RED}


@pytest.fixture
async def served(make_client: Any) -> Any:
    node = Node(produce, name="produce", policy=NodePolicy(validate="none"))
    adapter = A2AServerAdapter(create(node.to()), agent_card=make_card(), agent_url=AGENT_URL)
    client: TestClient[Any, Any] = await make_client(adapter, sse_heartbeat_s=None)
    yield client
    await adapter.stop()


@pytest.mark.parametrize(
    ("path", "method"),
    [("/", "SendMessage"), ("/", "message/send"), ("/message:send", None)],
    ids=["jsonrpc-1.0", "jsonrpc-0.3", "rest"],
)
async def test_a_result_with_datetimes_uuids_decimals_and_enums_completes_encoded(
    served: TestClient[Any, Any], path: str, method: str | None
) -> None:
    params = {"message": message({"data": {"q": 1}})}
    body = (
        params
        if method is None
        else {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    )
    async with asyncio.timeout(20):
        response = await served.post(path, json=body)
        reply = json.loads(await response.read())
    result = reply.get("result", reply)
    task = result.get("task", result)
    state = task["status"]["state"].lower().removeprefix("task_state_")
    assert state == "completed", task["status"]
    (artifact,) = [a for a in task["artifacts"] if any("data" in p for p in a["parts"])]
    (part,) = [p for p in artifact["parts"] if "data" in p]
    assert part["data"] == EXPECTED
